"""``foundry schedules list|run|pause|resume|forget|run-forever``: periodic schedules."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import click
from rich.table import Table

from foundry.application.dispatcher import Dispatcher
from foundry.application.job_maker import job_id_of
from foundry.application.registry import JobRegistry
from foundry.application.schedules.scheduler import Scheduler, overlap_key
from foundry.application.schedules.status import schedule_status
from foundry.domain import Cron, NoTick, Overlap, PeriodicSchedule, QueueBroken
from foundry.entrypoints.apps import load_app
from foundry.entrypoints.cli import common
from foundry.ports import QueuePort, ScheduleState

_APP = click.option(
    "--app",
    envvar="FOUNDRY_APP",
    required=True,
    help="The handlers and schedules, as module:registry (env FOUNDRY_APP).",
)


@click.group("schedules")
def schedules_group() -> None:
    """List, run, pause and resume the app's periodic schedules."""


def _registry(ctx: click.Context, app: str) -> JobRegistry:
    return load_app(app, common.container(ctx))


def _declared(registry: JobRegistry, name: str) -> PeriodicSchedule:
    for schedule in registry.schedules():
        if schedule.name == name:
            return schedule
    known = ", ".join(s.name for s in registry.schedules()) or "none"
    raise click.BadParameter(f"no schedule {name!r} in the app (declared: {known})")


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _next_three(schedule: PeriodicSchedule | None, state: ScheduleState | None) -> str:
    if schedule is None or (state is not None and state.next_at is None):
        return ""
    moment = state.next_at if state is not None and state.next_at is not None else None
    try:
        moment = moment or schedule.first_tick(datetime.now().astimezone())
        times = [moment]
        for _ in range(2):
            times.append(schedule.recurrence.next_after(times[-1]))
    except NoTick:
        pass
    return ", ".join(_when(t) for t in times)


def _expression(schedule: PeriodicSchedule | None, state: ScheduleState | None) -> tuple[str, str]:
    if schedule is not None and isinstance(schedule.recurrence, Cron):
        return schedule.recurrence.expression, str(schedule.recurrence.zone)
    if schedule is not None:
        return schedule.definition, "UTC"
    return (state.definition if state else ""), ""


def _status(state: ScheduleState | None, declared: bool, now: datetime, unread: bool) -> str:
    if unread:
        return "unknown (its queue is broken: see below)"
    if not declared:
        return "orphaned (not in the app)"
    if state is None:
        return "new (no scheduler ran yet)"
    status = schedule_status(state, now)
    if status == "stalled":
        return "stalled (no worker fired its tick: is a scheduler running?)"
    return status


@schedules_group.command("list")
@click.option(
    "--app",
    envvar="FOUNDRY_APP",
    default=None,
    help="The handlers and schedules, as module:registry (env FOUNDRY_APP); without it, "
    "the stored schedules only, as the backend keeps them.",
)
@click.pass_context
def list_schedules(ctx: click.Context, app: str | None) -> None:
    """Every schedule by name and queue: expression, zone, next 3 fire times (UTC), last tick,
    its job's state (without --app: what the backend stores, next tick only)."""
    registry = _registry(ctx, app) if app else None
    if common.private_memory_queue(ctx):
        common.stderr().print(
            "note: QUEUE_DRIVER is memory, so no scheduler's state is stored where this process "
            "can read it; set QUEUE_DRIVER=redis to see the workers' schedules"
        )
    backend = common.schedules(ctx)
    now, listing = backend.poll((), 0).now, backend.schedule_states()
    states = {(state.name, state.queue): state for state in listing.states}
    declared = {(s.name, s.queue): s for s in (registry.schedules() if registry else ())}
    if states or declared:
        unread = {error.queue for error in listing.broken}
        port = common.queue(ctx)
        common.stdout().print(_table(port, registry, states, declared, unread=unread, now=now))
    elif not listing.broken:
        common.stdout().print("no schedules: declare one with @registry.periodic(cron=...)")
    _exit_for_broken(listing.broken)


def _table(
    port: QueuePort,
    registry: JobRegistry | None,
    states: Mapping[tuple[str, str], ScheduleState],
    declared: Mapping[tuple[str, str], PeriodicSchedule],
    *,
    unread: set[str],
    now: datetime,
) -> Table:
    """One row per schedule stored or declared (by name and queue), ``unread`` the queues
    whose stored schedules could not be read."""
    table = Table(title="Schedules")
    upcoming = "next 3 (UTC)" if registry else "next (UTC)"
    columns = ("name", "queue", "expression", "zone", upcoming, "last tick", "last job")
    for column in (*columns, "state"):
        table.add_column(column, overflow="fold")
    for key in sorted({*states, *declared}):
        schedule, state = declared.get(key), states.get(key)
        job = ""
        if state is not None and state.last_job_id:
            record = port.get(state.last_job_id, state.queue)
            job = record.state.value if record is not None else "gone"
        expression, zone = _expression(schedule, state)
        stored_next = _when(state.next_at if state else None)
        ticks = _next_three(schedule, state) if registry else stored_next
        table.add_row(
            common.escape(key[0]),
            common.escape(key[1]),
            common.escape(expression),
            zone,
            ticks,
            _when(state.last_tick if state else None),
            job,
            _status(state, schedule is not None or registry is None, now, key[1] in unread),
        )
    return table


def _exit_for_broken(broken: Sequence[QueueBroken]) -> None:
    """One line per queue whose schedules could not be read, then exit 1 (the listing shown
    lacks their schedules); nothing if there is none."""
    if not broken:
        return
    for error in broken:
        common.stderr().print(
            f"[bold red]error:[/] {common.escape(str(error))}; its schedules are not listed, "
            "and do not fire until it is fixed",
            soft_wrap=True,
        )
    raise SystemExit(int(common.Exit.FAILED))


@schedules_group.command("run")
@_APP
@click.argument("name")
@click.option(
    "--job-id",
    default=None,
    callback=common.optional_job_id,
    help="The run's job id: the same command sent again with it enqueues nothing more "
    "(default: a new id, so each call is a new run).",
)
@click.pass_context
def run_now(ctx: click.Context, app: str, name: str, job_id: str | None) -> None:
    """Enqueue schedule NAME's job once now, outside its tick sequence: each call is a new run
    with a new job id (as Sidekiq-cron's "Enqueue now"), unless --job-id names it. Its ticks
    are left as they are. With overlap='skip', only if no job of it is pending or running."""
    common.require_shared_queue(ctx, "running a schedule")
    registry = _registry(ctx, app)
    schedule = _declared(registry, name)
    port = common.queue(ctx)
    if job_id is not None and (stored := port.get(job_id, schedule.queue)) is not None:
        common.stderr().print(
            f"job {job_id} of queue {schedule.queue} is stored already "
            f"({stored.state.value}); nothing enqueued"
        )
        return
    overrides: dict[str, Any] = {"queue": schedule.queue, "priority": schedule.priority}
    if schedule.overlap is Overlap.SKIP:
        overrides["unique"] = overlap_key(schedule)
    dispatcher = Dispatcher(port, registry, common.container(ctx).clock())
    job = dispatcher.build(schedule.handler, schedule.payload, job_id=job_id, **overrides)
    # Sent now, not after a commit: no transaction is open here to wait for.
    job = attrs.evolve(job, metadata={**job.metadata, "schedule": schedule.name})
    enqueued = job_id_of(port.enqueue(job))
    if enqueued != job.id:  # the pending duplicate's id
        common.stderr().print(_duplicate(registry, schedule, enqueued))
        return
    click.echo(f"enqueued {enqueued} for schedule {name} in queue {schedule.queue}")


def _duplicate(registry: JobRegistry, schedule: PeriodicSchedule, holder: str) -> str:
    name = common.escape(schedule.name)
    if schedule.overlap is Overlap.SKIP:
        return (
            f"schedule {name} skips overlapping runs (overlap='skip'): job {holder} is still "
            "pending or running; nothing enqueued"
        )
    unique = registry.make_job(schedule.handler, schedule.payload).unique
    key = common.escape(repr(unique.key if unique else ""))
    return f"duplicate: job {holder} holds the unique key {key}; nothing enqueued"


@schedules_group.command()
@_APP
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, app: str, name: str) -> None:
    """Stop schedule NAME firing (until resumed)."""
    common.require_shared_queue(ctx, "pausing a schedule")
    schedule = _declared(_registry(ctx, app), name)
    if not common.schedules(ctx).pause_schedule(schedule.queue, name):
        common.abort(f"schedule {name} is not stored yet: start a worker or scheduler first")
    click.echo(f"paused {name}; `foundry schedules resume {name}` undoes it")


@schedules_group.command()
@_APP
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, app: str, name: str) -> None:
    """Let schedule NAME fire again from its next tick (paused ticks are not caught up)."""
    common.require_shared_queue(ctx, "resuming a schedule")
    schedule = _declared(_registry(ctx, app), name)
    port = common.schedules(ctx)
    next_at = schedule.first_tick(port.poll((), 0).now)
    resumed = port.resume_schedule(schedule.queue, name, next_at)
    if resumed is None:
        common.abort(f"schedule {name} is not stored yet: start a worker or scheduler first")
    if resumed:
        click.echo(f"resumed {name}; next tick {_when(next_at)} UTC")
    else:
        click.echo(f"{name} is not paused; nothing changed")


@schedules_group.command()
@click.argument("name")
@click.option("--queue", required=True, help="The queue the schedule enqueued into.")
@click.pass_context
def forget(ctx: click.Context, name: str, queue: str) -> None:
    """Remove the stored state of schedule NAME (an orphan whose code is gone)."""
    common.require_shared_queue(ctx, "forgetting a schedule")
    if not common.schedules(ctx).forget_schedule(queue, name):
        common.abort(f"no schedule {name} is stored for queue {queue}")
    click.echo(f"forgot schedule {name} of queue {queue}")


@schedules_group.command("run-forever")
@_APP
@click.pass_context
def run_forever(ctx: click.Context, app: str) -> None:
    """Only schedule (no workers): fire the app's schedules until SIGTERM or Ctrl-C."""
    common.require_shared_queue(ctx, "a scheduler without workers")
    registry = _registry(ctx, app)
    scheduler = Scheduler(common.schedules(ctx), registry)
    if scheduler.idle:
        common.abort("the app declares no schedule: nothing to run")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    names = [schedule.name for schedule in registry.schedules()]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    common.stderr().print(f"scheduling {shown}; Ctrl-C stops")
    scheduler.run_until(stop)
