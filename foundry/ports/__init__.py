"""Ports: the protocols framework code and the worker depend on, and their value types."""

from foundry.ports.async_queue import AsyncBatchPort, AsyncQueuePort
from foundry.ports.batches import BatchPort, BatchRecord
from foundry.ports.cache import (
    CachePort,
    CacheStats,
    CacheStore,
    Effect,
    Lock,
    TaggedCache,
    Ttl,
)
from foundry.ports.clock import Clock
from foundry.ports.queue import QueuePort, WorkerRegistry
from foundry.ports.queue_types import (
    UNSTARTED_LAPSES_MAX,
    ClaimRequest,
    DeadLetter,
    DeadLetterRetention,
    Duplicate,
    Enqueued,
    EnqueueOutcome,
    JobRecord,
    Lease,
    QueueStats,
    WorkerInfo,
)
from foundry.ports.schedules import (
    DueSchedule,
    Fired,
    Firing,
    Poll,
    ScheduleEntry,
    SchedulePort,
    ScheduleState,
)
from foundry.ports.transactions import (
    AsyncTransactionalEnqueue,
    CommitHooks,
    TransactionalEnqueue,
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
