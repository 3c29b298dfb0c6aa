"""Foundry's domain: jobs, schedules, retry policies, states and errors. Pure, no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foundry.domain.exports import lazy_exports

if TYPE_CHECKING:
    from foundry.domain.batch import (
        Batch as Batch,
    )
    from foundry.domain.batch import (
        BatchNotFound as BatchNotFound,
    )
    from foundry.domain.batch import (
        BatchProgress as BatchProgress,
    )
    from foundry.domain.batch import (
        Callback as Callback,
    )
    from foundry.domain.batch import (
        MemberEnd as MemberEnd,
    )
    from foundry.domain.error_info import (
        ErrorInfo as ErrorInfo,
    )
    from foundry.domain.errors import (
        CacheError as CacheError,
    )
    from foundry.domain.errors import (
        CacheUnavailable as CacheUnavailable,
    )
    from foundry.domain.errors import (
        ConfigurationError as ConfigurationError,
    )
    from foundry.domain.errors import (
        FoundryError as FoundryError,
    )
    from foundry.domain.errors import (
        InvalidCacheKey as InvalidCacheKey,
    )
    from foundry.domain.errors import (
        InvalidCacheValue as InvalidCacheValue,
    )
    from foundry.domain.errors import (
        InvalidJob as InvalidJob,
    )
    from foundry.domain.errors import (
        InvalidQueueName as InvalidQueueName,
    )
    from foundry.domain.errors import (
        InvalidResult as InvalidResult,
    )
    from foundry.domain.errors import (
        InvalidSchedule as InvalidSchedule,
    )
    from foundry.domain.errors import (
        JobNotFound as JobNotFound,
    )
    from foundry.domain.errors import (
        LockNotOwned as LockNotOwned,
    )
    from foundry.domain.errors import (
        PermanentFailure as PermanentFailure,
    )
    from foundry.domain.errors import (
        QueueBroken as QueueBroken,
    )
    from foundry.domain.errors import (
        QueuesBroken as QueuesBroken,
    )
    from foundry.domain.errors import (
        QueuesUnlisted as QueuesUnlisted,
    )
    from foundry.domain.errors import (
        QueueUnavailable as QueueUnavailable,
    )
    from foundry.domain.errors import (
        StaleEffect as StaleEffect,
    )
    from foundry.domain.errors import (
        StaleLease as StaleLease,
    )
    from foundry.domain.errors import (
        UndecodableJob as UndecodableJob,
    )
    from foundry.domain.errors import (
        UndecodableValue as UndecodableValue,
    )
    from foundry.domain.errors import (
        UnknownHandler as UnknownHandler,
    )
    from foundry.domain.errors import (
        WriteNotReplicated as WriteNotReplicated,
    )
    from foundry.domain.job import (
        DEFAULT_QUEUE as DEFAULT_QUEUE,
    )
    from foundry.domain.job import (
        MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES,
    )
    from foundry.domain.job import (
        MAX_PAYLOAD_DEPTH as MAX_PAYLOAD_DEPTH,
    )
    from foundry.domain.job import (
        MAX_RESULT_BYTES as MAX_RESULT_BYTES,
    )
    from foundry.domain.job import (
        PRIORITY_MAX as PRIORITY_MAX,
    )
    from foundry.domain.job import (
        PRIORITY_MIN as PRIORITY_MIN,
    )
    from foundry.domain.job import (
        AfterFailure as AfterFailure,
    )
    from foundry.domain.job import (
        Job as Job,
    )
    from foundry.domain.job import (
        Payload as Payload,
    )
    from foundry.domain.job import (
        UniqueSpec as UniqueSpec,
    )
    from foundry.domain.job import (
        UniqueUntil as UniqueUntil,
    )
    from foundry.domain.job import (
        new_job_id as new_job_id,
    )
    from foundry.domain.job import (
        validate_queue_name as validate_queue_name,
    )
    from foundry.domain.lease import (
        LeaseTiming as LeaseTiming,
    )
    from foundry.domain.limits import (
        Limit as Limit,
    )
    from foundry.domain.limits import (
        Rate as Rate,
    )
    from foundry.domain.limits import (
        rate_turn as rate_turn,
    )
    from foundry.domain.outcome_errors import (
        BatchTimeout as BatchTimeout,
    )
    from foundry.domain.outcome_errors import (
        JobCancelled as JobCancelled,
    )
    from foundry.domain.outcome_errors import (
        JobFailed as JobFailed,
    )
    from foundry.domain.outcome_errors import (
        ResultTimeout as ResultTimeout,
    )
    from foundry.domain.periodic import (
        CatchUp as CatchUp,
    )
    from foundry.domain.periodic import (
        CatchUpMode as CatchUpMode,
    )
    from foundry.domain.periodic import (
        Overlap as Overlap,
    )
    from foundry.domain.periodic import (
        PeriodicSchedule as PeriodicSchedule,
    )
    from foundry.domain.periodic import (
        Plan as Plan,
    )
    from foundry.domain.progress import (
        Progress as Progress,
    )
    from foundry.domain.recurring import (
        Cron as Cron,
    )
    from foundry.domain.recurring import (
        CronRules as CronRules,
    )
    from foundry.domain.recurring import (
        Every as Every,
    )
    from foundry.domain.recurring import (
        NoTick as NoTick,
    )
    from foundry.domain.recurring import (
        Recurrence as Recurrence,
    )
    from foundry.domain.retry import (
        Cancel as Cancel,
    )
    from foundry.domain.retry import (
        Dead as Dead,
    )
    from foundry.domain.retry import (
        Decision as Decision,
    )
    from foundry.domain.retry import (
        Delays as Delays,
    )
    from foundry.domain.retry import (
        Exponential as Exponential,
    )
    from foundry.domain.retry import (
        Fixed as Fixed,
    )
    from foundry.domain.retry import (
        Linear as Linear,
    )
    from foundry.domain.retry import (
        Retry as Retry,
    )
    from foundry.domain.retry import (
        RetryPolicy as RetryPolicy,
    )
    from foundry.domain.schedule import (
        LATEST_RUN_AT as LATEST_RUN_AT,
    )
    from foundry.domain.schedule import (
        MAX_DELAY as MAX_DELAY,
    )
    from foundry.domain.schedule import (
        RunAfter as RunAfter,
    )
    from foundry.domain.schedule import (
        RunAt as RunAt,
    )
    from foundry.domain.schedule import (
        RunNow as RunNow,
    )
    from foundry.domain.schedule import (
        Schedule as Schedule,
    )
    from foundry.domain.state import (
        JobState as JobState,
    )

__all__ = [
    "AfterFailure",
    "Batch",
    "BatchNotFound",
    "BatchTimeout",
    "BatchProgress",
    "Callback",
    "MemberEnd",
    "CatchUp",
    "CatchUpMode",
    "Cron",
    "CronRules",
    "Every",
    "InvalidSchedule",
    "NoTick",
    "Overlap",
    "PeriodicSchedule",
    "Plan",
    "Recurrence",
    "DEFAULT_QUEUE",
    "LATEST_RUN_AT",
    "MAX_DELAY",
    "MAX_PAYLOAD_BYTES",
    "MAX_PAYLOAD_DEPTH",
    "MAX_RESULT_BYTES",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "CacheError",
    "Cancel",
    "CacheUnavailable",
    "ConfigurationError",
    "Dead",
    "Decision",
    "Delays",
    "ErrorInfo",
    "Exponential",
    "Fixed",
    "FoundryError",
    "InvalidCacheKey",
    "InvalidCacheValue",
    "InvalidJob",
    "InvalidQueueName",
    "InvalidResult",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "JobState",
    "LeaseTiming",
    "Limit",
    "Linear",
    "LockNotOwned",
    "StaleEffect",
    "Payload",
    "PermanentFailure",
    "Progress",
    "QueueBroken",
    "QueuesBroken",
    "QueuesUnlisted",
    "QueueUnavailable",
    "WriteNotReplicated",
    "ResultTimeout",
    "Retry",
    "Rate",
    "RetryPolicy",
    "RunAfter",
    "RunAt",
    "RunNow",
    "Schedule",
    "StaleLease",
    "UndecodableJob",
    "UndecodableValue",
    "UniqueSpec",
    "UniqueUntil",
    "UnknownHandler",
    "new_job_id",
    "rate_turn",
    "validate_queue_name",
]

#: Each name and the module that defines it.
_HOMES = {
    "Batch": "foundry.domain.batch",
    "BatchNotFound": "foundry.domain.batch",
    "BatchProgress": "foundry.domain.batch",
    "Callback": "foundry.domain.batch",
    "MemberEnd": "foundry.domain.batch",
    "ErrorInfo": "foundry.domain.error_info",
    "CacheError": "foundry.domain.errors",
    "CacheUnavailable": "foundry.domain.errors",
    "ConfigurationError": "foundry.domain.errors",
    "FoundryError": "foundry.domain.errors",
    "InvalidCacheKey": "foundry.domain.errors",
    "InvalidCacheValue": "foundry.domain.errors",
    "InvalidJob": "foundry.domain.errors",
    "InvalidQueueName": "foundry.domain.errors",
    "InvalidResult": "foundry.domain.errors",
    "InvalidSchedule": "foundry.domain.errors",
    "JobNotFound": "foundry.domain.errors",
    "LockNotOwned": "foundry.domain.errors",
    "PermanentFailure": "foundry.domain.errors",
    "QueueBroken": "foundry.domain.errors",
    "QueuesBroken": "foundry.domain.errors",
    "QueuesUnlisted": "foundry.domain.errors",
    "QueueUnavailable": "foundry.domain.errors",
    "WriteNotReplicated": "foundry.domain.errors",
    "StaleEffect": "foundry.domain.errors",
    "StaleLease": "foundry.domain.errors",
    "UndecodableJob": "foundry.domain.errors",
    "UndecodableValue": "foundry.domain.errors",
    "UnknownHandler": "foundry.domain.errors",
    "DEFAULT_QUEUE": "foundry.domain.job",
    "MAX_PAYLOAD_BYTES": "foundry.domain.job",
    "MAX_PAYLOAD_DEPTH": "foundry.domain.job",
    "MAX_RESULT_BYTES": "foundry.domain.job",
    "PRIORITY_MAX": "foundry.domain.job",
    "PRIORITY_MIN": "foundry.domain.job",
    "AfterFailure": "foundry.domain.job",
    "Job": "foundry.domain.job",
    "Payload": "foundry.domain.job",
    "UniqueSpec": "foundry.domain.job",
    "UniqueUntil": "foundry.domain.job",
    "new_job_id": "foundry.domain.job",
    "validate_queue_name": "foundry.domain.job",
    "LeaseTiming": "foundry.domain.lease",
    "Limit": "foundry.domain.limits",
    "Rate": "foundry.domain.limits",
    "rate_turn": "foundry.domain.limits",
    "BatchTimeout": "foundry.domain.outcome_errors",
    "JobCancelled": "foundry.domain.outcome_errors",
    "JobFailed": "foundry.domain.outcome_errors",
    "ResultTimeout": "foundry.domain.outcome_errors",
    "CatchUp": "foundry.domain.periodic",
    "CatchUpMode": "foundry.domain.periodic",
    "Overlap": "foundry.domain.periodic",
    "PeriodicSchedule": "foundry.domain.periodic",
    "Plan": "foundry.domain.periodic",
    "Progress": "foundry.domain.progress",
    "Cron": "foundry.domain.recurring",
    "CronRules": "foundry.domain.recurring",
    "Every": "foundry.domain.recurring",
    "NoTick": "foundry.domain.recurring",
    "Recurrence": "foundry.domain.recurring",
    "Cancel": "foundry.domain.retry",
    "Dead": "foundry.domain.retry",
    "Decision": "foundry.domain.retry",
    "Delays": "foundry.domain.retry",
    "Exponential": "foundry.domain.retry",
    "Fixed": "foundry.domain.retry",
    "Linear": "foundry.domain.retry",
    "Retry": "foundry.domain.retry",
    "RetryPolicy": "foundry.domain.retry",
    "LATEST_RUN_AT": "foundry.domain.schedule",
    "MAX_DELAY": "foundry.domain.schedule",
    "RunAfter": "foundry.domain.schedule",
    "RunAt": "foundry.domain.schedule",
    "RunNow": "foundry.domain.schedule",
    "Schedule": "foundry.domain.schedule",
    "JobState": "foundry.domain.state",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
