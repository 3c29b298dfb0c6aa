"""The dashboard's ASGI app: pages, JSON API and static files behind the guard.

Starlette + Jinja2, served by uvicorn: a small async toolkit with a test client, templates
that escape by default, no ORM, forms or admin framework to carry (the ports are the model).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from foundry.entrypoints.dashboard import api, pages
from foundry.entrypoints.dashboard.batch_views import BatchViews
from foundry.entrypoints.dashboard.history import Sampler
from foundry.entrypoints.dashboard.schedule_views import ScheduleViews
from foundry.entrypoints.dashboard.security import ASGIApp, Guard, GuardConfig
from foundry.entrypoints.dashboard.views import Views
from foundry.ports import BatchPort, Clock, QueuePort, SchedulePort, WorkerRegistry

HERE = Path(__file__).parent


@attrs.frozen
class DashboardConfig:
    """How the dashboard runs: the guard's settings, the sampling pace, what to call the
    backend in the footer (never its URL), and whether to sample in the background."""

    guard: GuardConfig
    every: timedelta = timedelta(seconds=5)
    backend: str = "redis"
    background: bool = True


def ago(moment: datetime | None, now: datetime) -> str:
    """``moment`` relative to ``now``: ``just now``, ``12s ago``, ``3m05s from now``."""
    if moment is None:
        return ""
    seconds = int((now - moment).total_seconds())
    if seconds == 0:
        return "just now"
    word = "ago" if seconds > 0 else "from now"
    return f"{duration(abs(seconds))} {word}"


def duration(seconds: float | None) -> str:
    """``seconds`` as ``850ms``, ``42s``, ``7m05s``, ``3h12m``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def when(moment: datetime | None) -> str:
    """``moment`` as ``2030-01-01 12:00:00`` (its own zone; the backend's is UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: payloads are user data
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["ago"] = ago
    environment.filters["duration"] = duration
    environment.filters["when"] = lambda moment: (
        moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
    )
    return Jinja2Templates(env=environment)


def _unrouted_message(request: Request, error: HTTPException) -> str:
    """What to tell a client whose request no route takes: the path, or the methods it takes."""
    path = request.url.path[:200]
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "POST")
        return f"{request.method} is not served at {path}; use {allowed}"
    if error.status_code == 404:
        return f"nothing is served at {path}; the pages are linked from /queues"
    return str(error.detail)


async def _unrouted(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = _unrouted_message(request, error)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, error.status_code, headers=error.headers)
    return pages.error_page(request, message, error.status_code)


def create_app(
    queue: QueuePort,
    workers: WorkerRegistry,
    schedules: SchedulePort,
    clock: Clock,
    config: DashboardConfig,
    *,
    sampler: Sampler | None = None,
    batches: BatchPort | None = None,
) -> ASGIApp:
    """The dashboard over these ports (``sampler``: a test's own, to drive the history;
    ``batches``: the batch port, when the backend keeps batches)."""
    sampler = sampler or Sampler(queue, clock, config.every)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=sampler.run, args=(stop,), daemon=True)
        if config.background:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(timeout=5)

    app = Starlette(
        routes=[
            *pages.ROUTES,
            *api.ROUTES,
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: _unrouted},
    )
    app.state.views = Views(
        queue,
        workers,
        clock,
        sampler,
        ScheduleViews(schedules),
        batches=BatchViews(batches, queue.queues),
    )
    app.state.templates = _templates()
    app.state.csrf = config.guard.csrf
    app.state.backend = config.backend
    return Guard(app, config.guard)
