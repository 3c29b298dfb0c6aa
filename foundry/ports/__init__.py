"""Ports: the protocols framework code and the worker depend on, and their value types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundry.domain.exports import lazy_exports

if TYPE_CHECKING:
    from foundry.ports.async_queue import (
        AsyncBatchPort as AsyncBatchPort,
    )
    from foundry.ports.async_queue import (
        AsyncQueuePort as AsyncQueuePort,
    )
    from foundry.ports.batch_types import (
        BatchRecord as BatchRecord,
    )
    from foundry.ports.batches import (
        BatchPort as BatchPort,
    )
    from foundry.ports.cache import (
        CachePort as CachePort,
    )
    from foundry.ports.cache import (
        CacheStore as CacheStore,
    )
    from foundry.ports.cache import (
        Effect as Effect,
    )
    from foundry.ports.cache import (
        Lock as Lock,
    )
    from foundry.ports.cache import (
        TaggedCache as TaggedCache,
    )
    from foundry.ports.cache import (
        Ttl as Ttl,
    )
    from foundry.ports.cache_types import (
        CacheStats as CacheStats,
    )
    from foundry.ports.clock import (
        Clock as Clock,
    )
    from foundry.ports.inspection import (
        DeadLetter as DeadLetter,
    )
    from foundry.ports.inspection import (
        JobRecord as JobRecord,
    )
    from foundry.ports.inspection import (
        QueueStats as QueueStats,
    )
    from foundry.ports.queue import (
        QueuePort as QueuePort,
    )
    from foundry.ports.queue import (
        WorkerRegistry as WorkerRegistry,
    )
    from foundry.ports.queue_types import (
        UNSTARTED_LAPSES_MAX as UNSTARTED_LAPSES_MAX,
    )
    from foundry.ports.queue_types import (
        ClaimRequest as ClaimRequest,
    )
    from foundry.ports.queue_types import (
        DeadLetterRetention as DeadLetterRetention,
    )
    from foundry.ports.queue_types import (
        Duplicate as Duplicate,
    )
    from foundry.ports.queue_types import (
        Enqueued as Enqueued,
    )
    from foundry.ports.queue_types import (
        EnqueueOutcome as EnqueueOutcome,
    )
    from foundry.ports.queue_types import (
        Lease as Lease,
    )
    from foundry.ports.queue_types import (
        WorkerInfo as WorkerInfo,
    )
    from foundry.ports.schedule_types import (
        DueSchedule as DueSchedule,
    )
    from foundry.ports.schedule_types import (
        Fired as Fired,
    )
    from foundry.ports.schedule_types import (
        Firing as Firing,
    )
    from foundry.ports.schedule_types import (
        Poll as Poll,
    )
    from foundry.ports.schedule_types import (
        ScheduleEntry as ScheduleEntry,
    )
    from foundry.ports.schedule_types import (
        ScheduleListing as ScheduleListing,
    )
    from foundry.ports.schedule_types import (
        ScheduleState as ScheduleState,
    )
    from foundry.ports.schedules import (
        SchedulePort as SchedulePort,
    )
    from foundry.ports.transactions import (
        AsyncTransactionalEnqueue as AsyncTransactionalEnqueue,
    )
    from foundry.ports.transactions import (
        CommitHooks as CommitHooks,
    )
    from foundry.ports.transactions import (
        TransactionalEnqueue as TransactionalEnqueue,
    )

__all__ = [
    "UNSTARTED_LAPSES_MAX",
    "AsyncBatchPort",
    "AsyncQueuePort",
    "AsyncTransactionalEnqueue",
    "BatchPort",
    "BatchRecord",
    "DueSchedule",
    "Fired",
    "Firing",
    "Poll",
    "ScheduleEntry",
    "ScheduleListing",
    "SchedulePort",
    "ScheduleState",
    "CachePort",
    "CommitHooks",
    "CacheStats",
    "CacheStore",
    "ClaimRequest",
    "Clock",
    "DeadLetter",
    "DeadLetterRetention",
    "Duplicate",
    "EnqueueOutcome",
    "Enqueued",
    "JobRecord",
    "Lease",
    "Effect",
    "Lock",
    "QueuePort",
    "QueueStats",
    "TaggedCache",
    "TransactionalEnqueue",
    "Ttl",
    "WorkerInfo",
    "WorkerRegistry",
]

#: Each name and the module that defines it.
_HOMES = {
    "AsyncBatchPort": "foundry.ports.async_queue",
    "AsyncQueuePort": "foundry.ports.async_queue",
    "BatchPort": "foundry.ports.batches",
    "BatchRecord": "foundry.ports.batch_types",
    "CachePort": "foundry.ports.cache",
    "CacheStats": "foundry.ports.cache_types",
    "CacheStore": "foundry.ports.cache",
    "Effect": "foundry.ports.cache",
    "Lock": "foundry.ports.cache",
    "TaggedCache": "foundry.ports.cache",
    "Ttl": "foundry.ports.cache",
    "Clock": "foundry.ports.clock",
    "QueuePort": "foundry.ports.queue",
    "WorkerRegistry": "foundry.ports.queue",
    "UNSTARTED_LAPSES_MAX": "foundry.ports.queue_types",
    "ClaimRequest": "foundry.ports.queue_types",
    "DeadLetter": "foundry.ports.inspection",
    "DeadLetterRetention": "foundry.ports.queue_types",
    "Duplicate": "foundry.ports.queue_types",
    "Enqueued": "foundry.ports.queue_types",
    "EnqueueOutcome": "foundry.ports.queue_types",
    "JobRecord": "foundry.ports.inspection",
    "Lease": "foundry.ports.queue_types",
    "QueueStats": "foundry.ports.inspection",
    "WorkerInfo": "foundry.ports.queue_types",
    "DueSchedule": "foundry.ports.schedule_types",
    "Fired": "foundry.ports.schedule_types",
    "Firing": "foundry.ports.schedule_types",
    "Poll": "foundry.ports.schedule_types",
    "ScheduleEntry": "foundry.ports.schedule_types",
    "ScheduleListing": "foundry.ports.schedule_types",
    "SchedulePort": "foundry.ports.schedules",
    "ScheduleState": "foundry.ports.schedule_types",
    "AsyncTransactionalEnqueue": "foundry.ports.transactions",
    "CommitHooks": "foundry.ports.transactions",
    "TransactionalEnqueue": "foundry.ports.transactions",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
