"""The JSON API behind the pages (documented in docs/api.md).

Every endpoint answers JSON. Bad input is 400 with ``{"error": "..."}`` naming the problem,
an unknown job 404, an unreachable backend 503; never a traceback. The ports are blocking, so
each handler runs in Starlette's thread pool.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from foundry.entrypoints.dashboard.batch_views import batch_json
from foundry.entrypoints.dashboard.errors import NotFound, error_response
from foundry.entrypoints.dashboard.schedule_views import ScheduleViews, schedule_json
from foundry.entrypoints.dashboard.values import BadInput, bounded, queue_name, seconds
from foundry.entrypoints.dashboard.views import (
    MAX_PAGE,
    Views,
    letter_json,
    record_json,
    stats_json,
    worker_json,
)

Params = Mapping[str, str]
Body = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]


def _get(handler: Callable[[Views, Params, Params], Any]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        views: Views = request.app.state.views
        try:
            data = await run_in_threadpool(
                handler, views, request.query_params, request.path_params
            )
        except Exception as error:
            return error_response(error)
        return JSONResponse(data)

    return endpoint


def _post(handler: Callable[[Views, Body, Params], Any]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        views: Views = request.app.state.views
        try:
            body = _json_object(await request.body())
            data = await run_in_threadpool(handler, views, body, request.path_params)
        except Exception as error:
            return error_response(error)
        return JSONResponse(data)

    return endpoint


def _json_object(raw: bytes) -> Body:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInput('the body must be JSON, like {"queue": "default"}') from None
    if not isinstance(value, dict):
        raise BadInput(f"the body must be a JSON object, got {type(value).__name__}")
    return value


def _text(body: Body, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadInput(f'"{key}" must be a string, like {{"{key}": "default"}}')
    return value


def _ids(body: Body, *, required: bool) -> list[str] | None:
    value = body.get("job_ids")
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadInput('"job_ids" must be a non-empty list of job id strings')
    if len(value) > 10_000:
        raise BadInput(f'"job_ids" holds {len(value)} ids; send at most 10000 per request')
    return value


# -- handlers (run in the thread pool) --------------------------------------------------------


def _queues(views: Views, _: Params, __: Params) -> Any:
    snapshot = views.snapshot()
    rows = zip(snapshot.rows, snapshot.ages, strict=True)
    shown = [stats_json(row, age) for row, age in rows]
    shown += [{"queue": error.queue, "broken": str(error)} for error in snapshot.broken]
    return {"at": snapshot.at.isoformat(), "queues": sorted(shown, key=lambda row: row["queue"])}


def _queue(views: Views, _: Params, path: Params) -> Any:
    row, age = views.queue_row(path["queue"])
    return stats_json(row, age)


def _history(views: Views, _: Params, path: Params) -> Any:
    queues = None if "queue" not in path else [queue_name(path["queue"])]
    points = views.sampler.history.minutes(queues, views.clock.now())
    return {
        "minutes": [
            {
                "start": point.start.isoformat(),
                "completed": point.completed,
                "failed": point.failed,
                "oldest_ready_age_s": point.wait_s,
            }
            for point in points
        ],
        "sample_every_s": seconds(views.sampler.every),
    }


def _pause(views: Views, body: Body, path: Params) -> Any:
    create = body.get("create", False)
    if not isinstance(create, bool):
        raise BadInput('"create" must be true or false')
    views.pause(path["queue"], paused=True, create=create)
    return {"queue": path["queue"], "paused": True}


def _resume(views: Views, _: Body, path: Params) -> Any:
    views.pause(path["queue"], paused=False)
    return {"queue": path["queue"], "paused": False}


def _purge(views: Views, _: Body, path: Params) -> Any:
    return {"queue": path["queue"], "removed": views.purge(path["queue"])}


def _workers(views: Views, _: Params, __: Params) -> Any:
    live = views.workers.workers()
    running = views.running(live)
    return {"workers": [worker_json(info, running[info.id]) for info in live]}


def _jobs(views: Views, query: Params, path: Params) -> Any:
    page = views.jobs(
        path["queue"],
        query.get("state"),
        bounded(query.get("offset"), "offset", 0, 0, 100_000),
        bounded(query.get("limit"), "limit", 50, 1, MAX_PAGE),
    )
    return {
        "queue": page.queue,
        "state": page.state.value,
        "offset": page.offset,
        "limit": page.limit,
        "jobs": [record_json(record) for record in page.records],
    }


def _job(views: Views, query: Params, path: Params) -> Any:
    record = views.job(path["job_id"], query.get("queue"))
    if record is None:
        raise NotFound(f"no job {path['job_id']!r} (completed jobs are kept for a while only)")
    return record_json(record)


def _delete(views: Views, body: Body, path: Params) -> Any:
    deleted = views.delete(_text(body, "queue"), path["job_id"])
    if not deleted:
        raise NotFound(f"no pending or dead job {path['job_id']!r} in that queue to delete")
    return {"deleted": True}


def _cancel(views: Views, body: Body, path: Params) -> Any:
    queue = body.get("queue")
    reason = body.get("reason", "cancelled from the dashboard")
    if queue is not None and not isinstance(queue, str):
        raise BadInput('"queue" must be a string, like {"queue": "default"}, or left out')
    if not isinstance(reason, str):
        raise BadInput('"reason" must be a string')
    state = views.cancel(path["job_id"], queue, reason[:200])
    if state is None:
        raise NotFound(f"no job {path['job_id']!r} to cancel")
    return {"job_id": path["job_id"], "state": state.value}


def _dead(views: Views, query: Params, _: Params) -> Any:
    page = views.dead(
        query.get("queue") or None,
        query.get("error_type"),
        bounded(query.get("offset"), "offset", 0, 0, 1_000_000),
        bounded(query.get("limit"), "limit", 50, 1, MAX_PAGE),
    )
    return {
        "letters": [letter_json(item) for item in page.letters],
        "matched": page.matched,
        "offset": page.offset,
        "limit": page.limit,
        "error_types": list(page.error_types),
        "scanned_all": page.scanned_all,
        "broken": [{"queue": error.queue, "broken": str(error)} for error in page.broken],
    }


def _retry(views: Views, body: Body, _: Params) -> Any:
    every = body.get("all", False)
    if not isinstance(every, bool):
        raise BadInput('"all" must be true or false')
    if not every and body.get("job_ids") is None:
        raise BadInput('give "job_ids": [ids...] or "all": true')
    ids = _ids(body, required=not every)
    if every and ids is not None:
        raise BadInput('give "job_ids" or "all": true, not both')
    return {"requeued": views.retry_dead(_text(body, "queue"), None if every else ids)}


def _forget(views: Views, body: Body, _: Params) -> Any:
    ids = _ids(body, required=True)
    assert ids is not None
    forgotten, missing = views.forget_dead(_text(body, "queue"), ids)
    return {"forgotten": forgotten, "not_dead": missing}


def _purge_dead(views: Views, body: Body, _: Params) -> Any:
    return {"removed": views.purge_dead(_text(body, "queue"))}


def _schedules(views: Views, query: Params, _: Params) -> Any:
    page = views.schedules.page(
        bounded(query.get("offset"), "offset", 0, 0, 1_000_000),
        bounded(query.get("limit"), "limit", 50, 1, MAX_PAGE),
    )
    return {
        "schedules": [schedule_json(state, page.now) for state in page.schedules],
        "total": page.total,
        "offset": page.offset,
        "limit": page.limit,
        "broken": [{"queue": error.queue, "broken": str(error)} for error in page.broken],
    }


ScheduleAct = Callable[[ScheduleViews, object, object], bool]


def _schedule_action(act: ScheduleAct, answer: dict[str, bool]) -> Endpoint:
    def handler(views: Views, body: Body, _: Params) -> Any:
        queue, name = _text(body, "queue"), _text(body, "name")
        if not act(views.schedules, queue, name):
            raise NotFound(f"no schedule {name[:80]!r} is stored for queue {queue[:80]!r}")
        return {"queue": queue, "name": name, **answer}

    return _post(handler)


def _batches(views: Views, query: Params, _: Params) -> Any:
    page = views.batches.page(
        query.get("queue"),
        bounded(query.get("offset"), "offset", 0, 0, 1_000_000),
        bounded(query.get("limit"), "limit", 50, 1, MAX_PAGE),
    )
    return {
        "queue": page.queue,
        "offset": page.offset,
        "limit": page.limit,
        "kept": page.kept,
        "batches": [batch_json(record) for record in page.batches],
    }


def _batch(views: Views, query: Params, path: Params) -> Any:
    record = views.batches.one(path["batch_id"], query.get("queue"))
    if record is None:
        raise NotFound(f"no batch {path['batch_id']!r} (ended batches are kept for a while only)")
    return batch_json(record)


def _cancel_batch(views: Views, body: Body, path: Params) -> Any:
    reason = body.get("reason", "cancelled from the dashboard")
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput('"reason" must be a non-empty string')
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise BadInput('"queue" must be a queue name')
    record = views.batches.cancel(path["batch_id"], queue, reason[:200])
    if record is None:
        raise NotFound(f"no batch {path['batch_id']!r} to cancel")
    return batch_json(record)


async def _csrf(request: Request) -> Response:
    return JSONResponse({"token": request.app.state.csrf})


ROUTES = [
    Route("/api/csrf", _csrf),
    Route("/api/queues", _get(_queues)),
    Route("/api/history", _get(_history)),
    Route("/api/queues/{queue}", _get(_queue)),
    Route("/api/queues/{queue}/history", _get(_history)),
    Route("/api/queues/{queue}/jobs", _get(_jobs)),
    Route("/api/queues/{queue}/pause", _post(_pause), methods=["POST"]),
    Route("/api/queues/{queue}/resume", _post(_resume), methods=["POST"]),
    Route("/api/queues/{queue}/purge", _post(_purge), methods=["POST"]),
    Route("/api/workers", _get(_workers)),
    Route("/api/jobs/{job_id}", _get(_job)),
    Route("/api/jobs/{job_id}/delete", _post(_delete), methods=["POST"]),
    Route("/api/jobs/{job_id}/cancel", _post(_cancel), methods=["POST"]),
    Route("/api/dead", _get(_dead)),
    Route("/api/dead/retry", _post(_retry), methods=["POST"]),
    Route("/api/dead/forget", _post(_forget), methods=["POST"]),
    Route("/api/dead/purge", _post(_purge_dead), methods=["POST"]),
    Route("/api/batches", _get(_batches)),
    Route("/api/batches/{batch_id}", _get(_batch)),
    Route("/api/batches/{batch_id}/cancel", _post(_cancel_batch), methods=["POST"]),
    Route("/api/schedules", _get(_schedules)),
    Route(
        "/api/schedules/pause",
        _schedule_action(ScheduleViews.pause, {"paused": True}),
        methods=["POST"],
    ),
    Route(
        "/api/schedules/resume",
        _schedule_action(ScheduleViews.resume, {"paused": False}),
        methods=["POST"],
    ),
    Route(
        "/api/schedules/forget",
        _schedule_action(ScheduleViews.forget, {"forgotten": True}),
        methods=["POST"],
    ),
]
