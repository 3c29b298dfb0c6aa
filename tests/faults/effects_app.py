"""An app whose handler has an effect (a counter in Redis) and then kills its own process on
its first attempt, before the job can complete: the job runs again, and the test counts how
often the effect happened. ``foundry work --app tests.faults.effects_app:build``."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from typing import Any

from foundry import Fixed, JobRegistry, RetryPolicy, current_job, idempotent

QUEUE = "effects"


def build(container: Any) -> JobRegistry:
    """The registry; the handler reaches Redis through the child's own cache client."""
    registry = JobRegistry()

    @registry.job(
        name="effects.charge",
        queue=QUEUE,
        retry=RetryPolicy(max_attempts=5, backoff=Fixed(timedelta(milliseconds=10))),
    )
    def charge(order: int, guarded: bool) -> None:
        cache = container.cache()
        if guarded:
            with idempotent(cache, "charge", timedelta(hours=1)) as effect:
                if not effect.done:
                    cache.increment(f"charged:{order}")
        else:
            cache.increment(f"charged:{order}")
        job = current_job()
        if job is not None and job.attempt == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # after the effect, before the completion

    return registry
