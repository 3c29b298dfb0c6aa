"""Effects that happen once: ``idempotent`` keys an effect record by the running job."""

from __future__ import annotations

from foundry.application.context import current_job
from foundry.domain import ConfigurationError
from foundry.ports import CachePort, Effect
from foundry.ports.cache import Ttl


def idempotent(cache: CachePort, key: str, ttl: Ttl, *, per_job: bool = True) -> Effect:
    """The record of effect ``key`` of the job this handler runs, fenced by its lease::

        with foundry.idempotent(fx.cache, "charge", timedelta(days=1)) as effect:
            if not effect.done:
                gateway.charge(order_id)

    The record's key is ``<job id>:<key>`` and its fence the attempt's (see
    ``CachePort.idempotent``). ``per_job=False`` uses ``key`` as it is, shared by every job
    and caller that names it (then unfenced: fences of different jobs do not compare).
    Raises ``ConfigurationError`` outside a job unless ``per_job=False``.
    """
    if not per_job:
        return cache.idempotent(key, ttl)
    job = current_job()
    if job is None:
        raise ConfigurationError(
            f"idempotent({key!r}) keys its record by the running job, and no job is running "
            "in this process; pass per_job=False and a key that names the effect fully"
        )
    return cache.idempotent(f"{job.job_id}:{key}", ttl, fence=job.fence)
