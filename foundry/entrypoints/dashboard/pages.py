"""The HTML pages: server-rendered Jinja2 templates (autoescaped), plain forms for actions.

A page polls itself for its live part (``?partial=1``) at the sampler's pace, only while it is
visible; actions are POST forms carrying the CSRF token and answer with a redirect (303) back
to the page, with a note of what was done.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from foundry.domain import JobState
from foundry.entrypoints.dashboard import charts
from foundry.entrypoints.dashboard.errors import Changed, NotFound, status_and_message
from foundry.entrypoints.dashboard.history import MinutePoint
from foundry.entrypoints.dashboard.schedule_views import ScheduleViews
from foundry.entrypoints.dashboard.values import LISTED, BadInput, bounded
from foundry.entrypoints.dashboard.values import job_id as checked_id
from foundry.entrypoints.dashboard.values import queue_name as checked_queue
from foundry.entrypoints.dashboard.views import MAX_PAGE, Views
from foundry.ports import QueueStats

Endpoint = Callable[[Request], Awaitable[Response]]
Form = dict[str, list[str]]
PAGE = 50


def _views(request: Request) -> Views:
    views: Views = request.app.state.views
    return views


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    partial = request.query_params.get("partial") == "1"
    base = {
        "request": request,
        "csrf": request.app.state.csrf,
        "refresh_s": int(_views(request).sampler.every.total_seconds()),
        "partial": partial,
        "note": request.query_params.get("note", "")[:200],
        "now": _views(request).clock.now(),
        "backend": request.app.state.backend,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)


def error_page(request: Request, message: str, status: int) -> Response:
    """The error page saying ``message``, with ``status``."""
    return _render(request, "error.html", {"message": message}, status)


def _page(build: Callable[[Views, Request], tuple[str, dict[str, Any]]]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            name, context = await run_in_threadpool(build, _views(request), request)
        except Exception as error:
            status, message = status_and_message(error)
            return _render(request, "error.html", {"message": message}, status)
        return _render(request, name, context)

    return endpoint


def _action(act: Callable[[Views, Request, Form], str]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            note = await run_in_threadpool(act, _views(request), request, form)
        except Exception as error:
            status, message = status_and_message(error)
            return _render(request, "error.html", {"message": message}, status)
        back = _field(form, "back") or "/queues"
        if not back.startswith("/") or back.startswith("//"):
            back = "/queues"  # only pages of this dashboard
        separator = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{separator}{urlencode({'note': note})}", 303)

    return endpoint


def _field(form: Form, name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


# -- pages ------------------------------------------------------------------------------------


def _queues_page(views: Views, _: Request) -> tuple[str, dict[str, Any]]:
    snapshot = views.snapshot()
    history = views.sampler.history
    now = views.clock.now()
    sparks = history.derived(
        ("sparks", snapshot.at, now.replace(second=0, microsecond=0)),
        lambda: {row.queue: _spark(history.minutes([row.queue], now)) for row in snapshot.rows},
    )
    minutes = history.minutes(None, now)
    return "queues.html", {
        "rows": list(zip(snapshot.rows, snapshot.ages, strict=True)),
        "broken": snapshot.broken,
        "sparks": sparks,
        "sampled_at": snapshot.at,
        "throughput": _throughput_chart(minutes),
        "waits": _wait_chart(minutes),
    }


def _spark(minutes: list[MinutePoint]) -> str:
    values = [point.completed for point in minutes]
    peak = max((value or 0 for value in values), default=0)
    return charts.path(values, 120, 24, float(peak or 1))


def _throughput_chart(minutes: list[MinutePoint]) -> charts.Chart:
    return charts.chart(
        "Jobs per minute",
        [
            ("completed", "completed", [p.completed for p in minutes]),
            ("failed", "failed attempts", [p.failed for p in minutes]),
        ],
        "jobs/min",
    )


def _wait_chart(minutes: list[MinutePoint]) -> charts.Chart:
    return charts.chart(
        "Oldest ready job's wait",
        [("wait", "longest wait", [p.wait_s for p in minutes])],
        "s",
    )


def _queue_page(views: Views, request: Request) -> tuple[str, dict[str, Any]]:
    row, age = views.queue_row(request.path_params["queue"])
    minutes = views.sampler.history.minutes([row.queue], views.clock.now())
    query = request.query_params
    listing = views.jobs(
        row.queue,
        query.get("state"),
        bounded(query.get("offset"), "offset", 0, 0, 100_000),
        PAGE,
    )
    return "queue.html", {
        "row": row,
        # Only a queue showing nothing at all may be a typo: one more read then.
        "unknown": views.unknown(row.queue) if row == QueueStats(row.queue) else None,
        "age": age,
        "throughput": _throughput_chart(minutes),
        "waits": _wait_chart(minutes),
        "listing": listing,
        "states": LISTED,
    }


def _workers_page(views: Views, _: Request) -> tuple[str, dict[str, Any]]:
    live = views.workers.workers()
    return "workers.html", {"workers": live, "running": views.running(live)}


def _job_page(views: Views, request: Request) -> tuple[str, dict[str, Any]]:
    job_id = request.path_params["job_id"]
    record = views.job(job_id, request.query_params.get("queue") or None)
    if record is None:
        raise NotFound(f"no job {job_id!r} (completed jobs are kept for a while only)")
    return "job.html", {"record": record, "payload": _pretty(record.job.payload)}


def _dead_page(views: Views, request: Request) -> tuple[str, dict[str, Any]]:
    query = request.query_params
    page = views.dead(
        query.get("queue") or None,
        query.get("error_type"),
        bounded(query.get("offset"), "offset", 0, 0, 1_000_000),
        bounded(query.get("limit"), "limit", PAGE, 1, MAX_PAGE),
    )
    return "dead.html", {
        "page": page,
        "queue": query.get("queue") or "",
        "error_type": query.get("error_type") or "",
        "queues": views.queue.queues(),
    }


def _schedules_page(views: Views, request: Request) -> tuple[str, dict[str, Any]]:
    offset = bounded(request.query_params.get("offset"), "offset", 0, 0, 1_000_000)
    page = views.schedules.page(offset, PAGE)
    return "schedules.html", {"page": page, "status": page.status}


def _batches_page(views: Views, request: Request) -> tuple[str, dict[str, Any]]:
    query = request.query_params
    offset = bounded(query.get("offset"), "offset", 0, 0, 1_000_000)
    return "batches.html", {"page": views.batches.page(query.get("queue"), offset, PAGE)}


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


async def _lookup(request: Request) -> Response:
    job_id = request.query_params.get("id", "").strip()
    if not job_id:
        return RedirectResponse("/queues", 303)
    return RedirectResponse(f"/jobs/{_quote(job_id)}", 303)


def _quote(text: str) -> str:
    return quote(text, safe="")


# -- actions ----------------------------------------------------------------------------------


def _pause(views: Views, request: Request, _: Form) -> str:
    views.pause(request.path_params["queue"], paused=True)
    return f"paused {request.path_params['queue']}"


def _resume(views: Views, request: Request, _: Form) -> str:
    views.pause(request.path_params["queue"], paused=False)
    return f"resumed {request.path_params['queue']}"


def _purge(views: Views, request: Request, _: Form) -> str:
    removed = views.purge(request.path_params["queue"])
    return f"removed {removed} pending job(s) from {request.path_params['queue']}"


def _selected(form: Form) -> dict[str, list[str]]:
    """``queue/id`` values of the checked boxes, by queue, every one checked before any is
    acted on."""
    chosen: dict[str, list[str]] = {}
    for value in form.get("pick", []):
        queue, slash, raw_id = value.partition("/")
        if not slash:
            raise BadInput(f"{value[:80]!r} is not a queue/job-id pair")
        chosen.setdefault(checked_queue(queue), []).append(checked_id(raw_id))
    if not chosen:
        raise BadInput("select at least one dead letter first")
    return chosen


def _retry(views: Views, _: Request, form: Form) -> str:
    if _field(form, "all") == "1":
        queue = _field(form, "queue")
        return f"requeued {views.retry_dead(queue, None)} dead letter(s) of {queue}"
    count = sum(views.retry_dead(queue, ids) for queue, ids in _selected(form).items())
    return f"requeued {count} dead letter(s)"


def _forget(views: Views, _: Request, form: Form) -> str:
    count = sum(views.forget_dead(queue, ids)[0] for queue, ids in _selected(form).items())
    return f"forgot {count} dead letter(s)"


def _purge_dead(views: Views, _: Request, form: Form) -> str:
    queue = _field(form, "queue")
    return f"purged {views.purge_dead(queue)} dead letter(s) of {queue}"


def _delete(views: Views, request: Request, form: Form) -> str:
    job_id = request.path_params["job_id"]
    if not views.delete_pending(_field(form, "queue"), job_id):
        raise NotFound(f"no pending or dead job {job_id!r} to delete (running jobs cannot be)")
    return f"deleted job {job_id}"


def _cancel(views: Views, request: Request, form: Form) -> str:
    job_id = request.path_params["job_id"]
    state = views.cancel(job_id, _field(form, "queue") or None, "cancelled from the dashboard")
    if state is None:
        raise NotFound(f"no job {job_id!r} to cancel")
    if state is JobState.ACTIVE:
        return f"job {job_id} is running; its worker was asked to stop it"
    if state is not JobState.CANCELLED:
        raise Changed(f"job {job_id} has already ended ({state.value}); nothing to cancel")
    return f"job {job_id} is cancelled"


def _cancel_batch(views: Views, request: Request, form: Form) -> str:
    batch_id = request.path_params["batch_id"]
    record = views.batches.cancel(
        batch_id, _field(form, "queue") or None, "cancelled from the dashboard"
    )
    if record is None:
        raise NotFound(f"no batch {batch_id!r} to cancel")
    return f"batch {batch_id} is {record.state}"


def _schedule_act(act: Callable[[ScheduleViews, object, object], bool], done: str) -> Endpoint:
    def run(views: Views, _: Request, form: Form) -> str:
        queue, name = _field(form, "queue"), _field(form, "name")
        if not act(views.schedules, queue, name):
            raise NotFound(f"no schedule {name[:80]!r} is stored for queue {queue[:80]!r}")
        return f"{done} schedule {name} of {queue}"

    return _action(run)


async def _home(_: Request) -> Response:
    return RedirectResponse("/queues", 303)


ROUTES = [
    Route("/", _home),
    Route("/queues", _page(_queues_page)),
    Route("/queues/{queue}", _page(_queue_page)),
    Route("/queues/{queue}/pause", _action(_pause), methods=["POST"]),
    Route("/queues/{queue}/resume", _action(_resume), methods=["POST"]),
    Route("/queues/{queue}/purge", _action(_purge), methods=["POST"]),
    Route("/workers", _page(_workers_page)),
    Route("/jobs", _lookup),
    Route("/jobs/{job_id}", _page(_job_page)),
    Route("/jobs/{job_id}/delete", _action(_delete), methods=["POST"]),
    Route("/jobs/{job_id}/cancel", _action(_cancel), methods=["POST"]),
    Route("/dead", _page(_dead_page)),
    Route("/dead/retry", _action(_retry), methods=["POST"]),
    Route("/dead/forget", _action(_forget), methods=["POST"]),
    Route("/dead/purge", _action(_purge_dead), methods=["POST"]),
    Route("/batches", _page(_batches_page)),
    Route("/batches/{batch_id}/cancel", _action(_cancel_batch), methods=["POST"]),
    Route("/schedules", _page(_schedules_page)),
    Route("/schedules/pause", _schedule_act(ScheduleViews.pause, "paused"), methods=["POST"]),
    Route("/schedules/resume", _schedule_act(ScheduleViews.resume, "resumed"), methods=["POST"]),
    Route("/schedules/forget", _schedule_act(ScheduleViews.forget, "forgot"), methods=["POST"]),
]
