"""How a pool runs: which queues, how many children, leases, limits and shutdown grace."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from foundry.domain import ConfigurationError, validate_queue_name

#: The highest nice increment a child may get (Linux nice values end at 19).
MAX_NICE = 19


def _positive(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, timedelta) and value > timedelta(0):
        return
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return
    if value is None and attribute.default is None:
        return
    raise ConfigurationError(f"pool setting {attribute.name} must be positive, got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _positive(_, attribute, value)


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return
    if isinstance(value, timedelta) and value >= timedelta(0):
        return
    raise ConfigurationError(f"pool setting {attribute.name} must be >= 0, got {value!r}")


def _nice(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NICE:
        raise ConfigurationError(
            f"pool setting {attribute.name} must be an int from 0 to {MAX_NICE}, got {value!r}"
        )


def _queues(value: Any) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise ConfigurationError("pool setting queues must name at least one queue")
    try:
        return tuple(validate_queue_name(name) for name in names)
    except ValueError as error:
        raise ConfigurationError(f"pool setting queues: {error}") from error


@attrs.frozen
class PoolConfig:
    """Settings of one prefork pool. Invalid values raise ``ConfigurationError`` naming them.

    * ``queues``: claimed in this order (the first until empty, then the next).
    * ``concurrency``: child processes. ``prefetch``: extra jobs claimed ahead, held by the
      parent (their leases are renewed; they are released at shutdown). ``prefetch_window``
      (20 ms by default, 0 turns it off) raises it for short jobs: as many as the children
      finish in that window at the mean run time so far, to the nearest (at most 64, in the
      parent's buffer; each busy child holds one more queued), so short jobs are claimed in
      batches and a child finds its next job waiting, while long ones (over the window per
      child) are claimed only for idle children. A job held ahead spends its attempt only
      once it starts (``ClaimRequest.ahead``): the start goes to the queue with the next claim
      or renew, and a worker that dies, or loses the queue for longer than a lease, gives back
      the attempts of the held jobs it had not started (or had started without reporting it
      yet: at most ``UNSTARTED_LAPSES_MAX`` times per job).
    * ``lease``: how long a claim holds a job; renewed every third of it while running.
    * ``cancel_check``: while it holds leases the pool renews them at least this often,
      which is how it learns that a cancel asked one of its jobs to stop (``None``: only every
      third of the lease). The job's child is then interrupted (``JobCancelled`` raised in
      the handler) and killed ``term_grace`` later if it is still running.
    * ``max_tasks_per_child`` / ``max_memory_per_child_mb``: recycle a child after that many
      jobs, or when its RSS after a job exceeds that many MiB.
    * ``grace``: on a warm stop, how long running jobs may finish before they are killed and
      released. ``term_grace``: between SIGTERM and SIGKILL when a hard time limit passes.
    * ``burst``: exit 0 once no job is ready or delayed in the queues and none is running.
    * ``idle_wait``: how long an idle pool blocks in one ``claim``.
    * ``unknown_handler_grace``: a job naming no registered handler is retried until it is
      this old (rolling deploys), then dead.
    * ``heartbeat_every``: how often the pool publishes its ``WorkerInfo``.
    * ``child_nice``: added to the children's nice value (0-19; 0, the default: the parent's
      priority). A higher value lets the parent, which hands out work, renews leases and
      fences children, take a core from them at once, but the children then also yield to
      the machine's other processes: on a shared machine CPU-bound jobs run slower.
    """

    queues: tuple[str, ...] = attrs.field(default=("default",), converter=_queues)
    concurrency: int = attrs.field(default=2, validator=_positive)
    lease: timedelta = attrs.field(default=timedelta(seconds=30), validator=_positive)
    max_tasks_per_child: int | None = attrs.field(default=None, validator=_positive)
    max_memory_per_child_mb: int | None = attrs.field(default=None, validator=_positive)
    grace: timedelta = attrs.field(default=timedelta(seconds=30), validator=_not_negative)
    burst: bool = False
    prefetch: int = attrs.field(default=0, validator=_not_negative)
    prefetch_window: timedelta = attrs.field(
        default=timedelta(milliseconds=20), validator=_not_negative
    )
    idle_wait: timedelta = attrs.field(default=timedelta(seconds=1), validator=_positive)
    unknown_handler_grace: timedelta = attrs.field(
        default=timedelta(seconds=30), validator=_not_negative
    )
    heartbeat_every: timedelta = attrs.field(default=timedelta(seconds=5), validator=_positive)
    child_nice: int = attrs.field(default=0, validator=_nice)
    term_grace: timedelta = attrs.field(default=timedelta(seconds=2), validator=_not_negative)
    cancel_check: timedelta | None = attrs.field(
        default=timedelta(seconds=1), validator=_positive_or_none
    )

    @property
    def max_rss_bytes(self) -> int | None:
        """The per-child memory limit in bytes, if any."""
        mb = self.max_memory_per_child_mb
        return None if mb is None else mb * 1024 * 1024

    def recycle_reason(self, tasks: int, rss: int) -> str | None:
        """Why a child that has run ``tasks`` jobs, and reported ``rss`` bytes after the last,
        must be replaced; ``None`` while it is within both limits."""
        if self.max_tasks_per_child is not None and tasks >= self.max_tasks_per_child:
            return "max tasks"
        max_rss = self.max_rss_bytes
        if max_rss is not None and rss > max_rss:
            return f"RSS {rss >> 20} MiB"
        return None
