"""Foundry: a job queue and cache for Python web frameworks.

Every name a user needs is importable from here; each is loaded on first use, so that a
worker pays only for what it touches::

    import foundry

    registry = foundry.JobRegistry()

    with foundry.connect() as fx:
        fx.dispatcher(registry).dispatch(send_welcome, {"user_id": 7})
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from foundry.adapters.django.commit import DjangoCommitHooks as DjangoCommitHooks
    from foundry.adapters.postgres.errors import MissingPrivileges as MissingPrivileges
    from foundry.adapters.postgres.errors import SchemaOutdated as SchemaOutdated
    from foundry.adapters.sqlalchemy.commit import (
        SqlAlchemyCommitHooks as SqlAlchemyCommitHooks,
    )
    from foundry.application.async_dispatcher import AsyncDispatcher as AsyncDispatcher
    from foundry.application.context import JobContext as JobContext
    from foundry.application.context import current_job as current_job
    from foundry.application.dispatcher import Dispatcher as Dispatcher
    from foundry.application.effects import idempotent as idempotent
    from foundry.application.errors import (
        SoftTimeLimitExceeded as SoftTimeLimitExceeded,
    )
    from foundry.application.errors import (
        TimeLimitExceeded as TimeLimitExceeded,
    )
    from foundry.application.errors import (
        WorkerLost as WorkerLost,
    )
    from foundry.application.middleware import JobOutcome as JobOutcome
    from foundry.application.middleware import Middleware as Middleware
    from foundry.application.outcome import Outcome as Outcome
    from foundry.application.outcome import OutcomeKind as OutcomeKind
    from foundry.application.outcome import PoolObserver as PoolObserver
    from foundry.application.registry import JobRegistry as JobRegistry
    from foundry.contrib.capture import ErrorCapture as ErrorCapture
    from foundry.contrib.timing import TimingMiddleware as TimingMiddleware
    from foundry.contrib.tracing import TracePropagation as TracePropagation
    from foundry.domain import (
        AfterFailure as AfterFailure,
    )
    from foundry.domain import (
        Batch as Batch,
    )
    from foundry.domain import (
        BatchNotFound as BatchNotFound,
    )
    from foundry.domain import (
        BatchProgress as BatchProgress,
    )
    from foundry.domain import (
        BatchTimeout as BatchTimeout,
    )
    from foundry.domain import (
        CacheError as CacheError,
    )
    from foundry.domain import (
        CacheUnavailable as CacheUnavailable,
    )
    from foundry.domain import (
        Callback as Callback,
    )
    from foundry.domain import (
        CatchUp as CatchUp,
    )
    from foundry.domain import (
        ConfigurationError as ConfigurationError,
    )
    from foundry.domain import (
        Delays as Delays,
    )
    from foundry.domain import (
        ErrorInfo as ErrorInfo,
    )
    from foundry.domain import (
        Exponential as Exponential,
    )
    from foundry.domain import (
        Fixed as Fixed,
    )
    from foundry.domain import (
        FoundryError as FoundryError,
    )
    from foundry.domain import (
        InvalidCacheKey as InvalidCacheKey,
    )
    from foundry.domain import (
        InvalidCacheValue as InvalidCacheValue,
    )
    from foundry.domain import (
        InvalidJob as InvalidJob,
    )
    from foundry.domain import (
        InvalidResult as InvalidResult,
    )
    from foundry.domain import (
        InvalidSchedule as InvalidSchedule,
    )
    from foundry.domain import (
        Job as Job,
    )
    from foundry.domain import (
        JobCancelled as JobCancelled,
    )
    from foundry.domain import (
        JobFailed as JobFailed,
    )
    from foundry.domain import (
        JobNotFound as JobNotFound,
    )
    from foundry.domain import (
        JobState as JobState,
    )
    from foundry.domain import (
        Limit as Limit,
    )
    from foundry.domain import (
        Linear as Linear,
    )
    from foundry.domain import (
        LockNotOwned as LockNotOwned,
    )
    from foundry.domain import (
        PeriodicSchedule as PeriodicSchedule,
    )
    from foundry.domain import (
        PermanentFailure as PermanentFailure,
    )
    from foundry.domain import (
        Progress as Progress,
    )
    from foundry.domain import (
        QueueBroken as QueueBroken,
    )
    from foundry.domain import (
        QueuesBroken as QueuesBroken,
    )
    from foundry.domain import (
        QueuesUnlisted as QueuesUnlisted,
    )
    from foundry.domain import (
        QueueUnavailable as QueueUnavailable,
    )
    from foundry.domain import (
        Rate as Rate,
    )
    from foundry.domain import (
        ResultTimeout as ResultTimeout,
    )
    from foundry.domain import (
        RetryPolicy as RetryPolicy,
    )
    from foundry.domain import (
        StaleEffect as StaleEffect,
    )
    from foundry.domain import (
        StaleLease as StaleLease,
    )
    from foundry.domain import (
        UndecodableJob as UndecodableJob,
    )
    from foundry.domain import (
        UndecodableValue as UndecodableValue,
    )
    from foundry.domain import (
        UniqueSpec as UniqueSpec,
    )
    from foundry.domain import (
        UniqueUntil as UniqueUntil,
    )
    from foundry.domain import (
        UnknownHandler as UnknownHandler,
    )
    from foundry.domain import (
        WriteNotReplicated as WriteNotReplicated,
    )
    from foundry.entrypoints.connect import Connection as Connection
    from foundry.entrypoints.connect import connect as connect
    from foundry.entrypoints.settings import Driver as Driver
    from foundry.entrypoints.settings import Settings as Settings
    from foundry.ports import (
        AsyncQueuePort as AsyncQueuePort,
    )
    from foundry.ports import (
        BatchRecord as BatchRecord,
    )
    from foundry.ports import (
        CachePort as CachePort,
    )
    from foundry.ports import (
        ClaimRequest as ClaimRequest,
    )
    from foundry.ports import (
        Clock as Clock,
    )
    from foundry.ports import (
        CommitHooks as CommitHooks,
    )
    from foundry.ports import (
        Effect as Effect,
    )
    from foundry.ports import (
        JobRecord as JobRecord,
    )
    from foundry.ports import (
        Lease as Lease,
    )
    from foundry.ports import (
        Lock as Lock,
    )
    from foundry.ports import (
        QueuePort as QueuePort,
    )
    from foundry.ports import (
        QueueStats as QueueStats,
    )
    from foundry.ports import (
        TransactionalEnqueue as TransactionalEnqueue,
    )

__all__ = [
    "AfterFailure",
    "AsyncDispatcher",
    "AsyncQueuePort",
    "Batch",
    "BatchNotFound",
    "BatchTimeout",
    "BatchProgress",
    "BatchRecord",
    "CacheError",
    "CachePort",
    "CacheUnavailable",
    "Callback",
    "CatchUp",
    "ClaimRequest",
    "Clock",
    "CommitHooks",
    "TransactionalEnqueue",
    "SchemaOutdated",
    "MissingPrivileges",
    "ConfigurationError",
    "Connection",
    "Delays",
    "Dispatcher",
    "DjangoCommitHooks",
    "Driver",
    "Effect",
    "ErrorCapture",
    "ErrorInfo",
    "Exponential",
    "Fixed",
    "FoundryError",
    "InvalidCacheKey",
    "InvalidCacheValue",
    "InvalidJob",
    "InvalidResult",
    "InvalidSchedule",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobNotFound",
    "JobOutcome",
    "JobRecord",
    "JobRegistry",
    "JobState",
    "Lease",
    "Linear",
    "Limit",
    "Lock",
    "LockNotOwned",
    "Middleware",
    "Outcome",
    "OutcomeKind",
    "PeriodicSchedule",
    "PermanentFailure",
    "Progress",
    "PoolObserver",
    "QueuePort",
    "QueueStats",
    "QueueBroken",
    "QueuesBroken",
    "QueuesUnlisted",
    "QueueUnavailable",
    "WriteNotReplicated",
    "ResultTimeout",
    "Rate",
    "RetryPolicy",
    "Settings",
    "SoftTimeLimitExceeded",
    "SqlAlchemyCommitHooks",
    "StaleEffect",
    "StaleLease",
    "TimeLimitExceeded",
    "TimingMiddleware",
    "TracePropagation",
    "UndecodableJob",
    "UndecodableValue",
    "UniqueSpec",
    "UniqueUntil",
    "UnknownHandler",
    "WorkerLost",
    "connect",
    "current_job",
    "idempotent",
]

# A library's records go where the host application sends them; without a configuration, nowhere.
logging.getLogger("foundry").addHandler(logging.NullHandler())

#: Each public name and the module that defines it.
_HOMES = {
    "AfterFailure": "foundry.domain",
    "Connection": "foundry.entrypoints.connect",
    "connect": "foundry.entrypoints.connect",
    "Driver": "foundry.entrypoints.settings",
    "Settings": "foundry.entrypoints.settings",
    "JobRegistry": "foundry.application.registry",
    "Dispatcher": "foundry.application.dispatcher",
    "AsyncDispatcher": "foundry.application.async_dispatcher",
    "JobContext": "foundry.application.context",
    "current_job": "foundry.application.context",
    "Middleware": "foundry.application.middleware",
    "JobOutcome": "foundry.application.middleware",
    "Outcome": "foundry.application.outcome",
    "OutcomeKind": "foundry.application.outcome",
    "PoolObserver": "foundry.application.outcome",
    "Lease": "foundry.ports",
    "Effect": "foundry.ports",
    "Lock": "foundry.ports",
    "idempotent": "foundry.application.effects",
    "StaleEffect": "foundry.domain",
    "ErrorCapture": "foundry.contrib.capture",
    "TimingMiddleware": "foundry.contrib.timing",
    "TracePropagation": "foundry.contrib.tracing",
    "SoftTimeLimitExceeded": "foundry.application.errors",
    "TimeLimitExceeded": "foundry.application.errors",
    "WorkerLost": "foundry.application.errors",
    "AsyncQueuePort": "foundry.ports",
    "CachePort": "foundry.ports",
    "ClaimRequest": "foundry.ports",
    "Clock": "foundry.ports",
    "CommitHooks": "foundry.ports",
    "TransactionalEnqueue": "foundry.ports",
    "SchemaOutdated": "foundry.adapters.postgres.errors",
    "MissingPrivileges": "foundry.adapters.postgres.errors",
    "DjangoCommitHooks": "foundry.adapters.django.commit",
    "SqlAlchemyCommitHooks": "foundry.adapters.sqlalchemy.commit",
    "JobRecord": "foundry.ports",
    "QueuePort": "foundry.ports",
    "QueueStats": "foundry.ports",
    "CacheError": "foundry.domain",
    "CacheUnavailable": "foundry.domain",
    "ConfigurationError": "foundry.domain",
    "Delays": "foundry.domain",
    "ErrorInfo": "foundry.domain",
    "Exponential": "foundry.domain",
    "Fixed": "foundry.domain",
    "FoundryError": "foundry.domain",
    "InvalidCacheKey": "foundry.domain",
    "InvalidCacheValue": "foundry.domain",
    "InvalidJob": "foundry.domain",
    "InvalidResult": "foundry.domain",
    "CatchUp": "foundry.domain",
    "InvalidSchedule": "foundry.domain",
    "PeriodicSchedule": "foundry.domain",
    "Job": "foundry.domain",
    "JobCancelled": "foundry.domain",
    "JobFailed": "foundry.domain",
    "JobNotFound": "foundry.domain",
    "JobState": "foundry.domain",
    "Linear": "foundry.domain",
    "LockNotOwned": "foundry.domain",
    "PermanentFailure": "foundry.domain",
    "Progress": "foundry.domain",
    "QueueBroken": "foundry.domain",
    "QueuesBroken": "foundry.domain",
    "QueuesUnlisted": "foundry.domain",
    "QueueUnavailable": "foundry.domain",
    "WriteNotReplicated": "foundry.domain",
    "ResultTimeout": "foundry.domain",
    "RetryPolicy": "foundry.domain",
    "Limit": "foundry.domain",
    "Rate": "foundry.domain",
    "StaleLease": "foundry.domain",
    "UndecodableJob": "foundry.domain",
    "UndecodableValue": "foundry.domain",
    "UniqueSpec": "foundry.domain",
    "UniqueUntil": "foundry.domain",
    "UnknownHandler": "foundry.domain",
    "Batch": "foundry.domain",
    "BatchNotFound": "foundry.domain",
    "BatchTimeout": "foundry.domain",
    "BatchProgress": "foundry.domain",
    "Callback": "foundry.domain",
    "BatchRecord": "foundry.ports",
}


# foundry.domain.exports does this for the layers; the façade keeps its own lines so that
# `import foundry` loads no other module.
def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'foundry' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
