"""The memory queue's dead letters: burying a job, and the retention policy that trims them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from foundry.adapters.memory.store import Entry, QueueState, UniqueKeys, age_limit
from foundry.domain import JobState
from foundry.ports import DeadLetterRetention

log = logging.getLogger(__name__)


class DeadLetters:
    """Moves jobs to the dead letters and keeps each queue's within ``retention``."""

    def __init__(
        self,
        retention: DeadLetterRetention,
        unique: UniqueKeys,
        settled: threading.Condition,
        on_end: Callable[[QueueState, Entry, bool, datetime], None],
    ) -> None:
        self.retention = retention
        self._unique = unique
        self._settled = settled
        self._on_end = on_end

    def bury(self, state: QueueState, entry: Entry, reason: str, now: datetime) -> None:
        """Move the entry to the dead letters, then apply the retention policy."""
        state.move(entry, JobState.DEAD)
        entry.reason = reason
        entry.stop = None
        entry.finished_at = now
        entry.unstarted_lapses = 0  # a requeued letter starts its count afresh
        self._unique.release(entry)
        self._settled.notify_all()
        self._on_end(state, entry, True, now)
        log.warning(
            "job is dead after %s attempt(s): %s",
            entry.attempts,
            reason,
            extra={"job_id": entry.job_id, "queue": entry.queue},
        )
        self._trim(state, now)

    def _trim(self, state: QueueState, now: datetime) -> None:
        oldest_kept = age_limit(now, self.retention.max_age)
        max_count = self.retention.max_count
        trimmed = 0
        while state.dead:
            oldest = state.oldest_dead()
            too_many = max_count is not None and len(state.dead) > max_count
            too_old = oldest_kept is not None and (oldest.finished_at or now) < oldest_kept
            if not (too_many or too_old):
                break
            state.remove(oldest)
            trimmed += 1
        if trimmed:
            state.dead_trimmed += trimmed
            log.info("trimmed %s dead letter(s) of queue %s by retention", trimmed, state.name)
