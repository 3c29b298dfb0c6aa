"""The exceptions Foundry raises: one root, a few meaningful branches.

Every message names the thing and the fix. Error histories store these classes' qualified
names (``foundry.domain.errors.StaleLease``), so the module keeps its path; what a failed
attempt records is ``ErrorInfo``, in ``error_info.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class FoundryError(Exception):
    """Root of every error Foundry raises on purpose."""


class InvalidJob(FoundryError, ValueError):
    """A job field holds a value Foundry cannot accept."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid job field {field!r}: {reason}")


class InvalidResult(FoundryError, ValueError):
    """A handler returned a value that cannot be stored as its job's result."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(
            f"the handler returned a value of type {kind}, which cannot be stored as the job's "
            f"result ({reason}); return JSON data (dict with str keys, list, str, int, float, "
            "bool, None) or an attrs instance, or store the value elsewhere and return a reference"
        )


class InvalidQueueName(InvalidJob):
    """A queue name that cannot be stored (braces would break Redis Cluster hash tags)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            "queue",
            f"{name!r} is not a valid queue name; use 1-100 letters, digits or '_.:-' (no braces)",
        )


class InvalidSchedule(FoundryError, ValueError):
    """A periodic schedule that cannot be declared; the message names it and the fix."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"schedule {name!r}: {reason}")


class UndecodableJob(FoundryError):
    """A stored job cannot be decoded (corrupt data, or written by an incompatible version)."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id!r} cannot be decoded: {reason}")


class StaleLease(FoundryError):
    """A lease token no longer holds its job: the lease expired, or the job moved on."""

    def __init__(self, job_id: str, token: str) -> None:
        self.job_id = job_id
        self.token = token
        super().__init__(
            f"lease {token!r} on job {job_id!r} is stale: it lapsed (the job went back to its "
            "queue or on to another worker), or the job ended, was cancelled, deleted or lost "
            "by the store since; this result is dropped"
        )


class JobNotFound(FoundryError, LookupError):
    """No job with that id exists in that queue."""

    def __init__(self, job_id: str, queue: str | None = None) -> None:
        self.job_id = job_id
        self.queue = queue
        where = f" in queue {queue!r}" if queue else ""
        super().__init__(f"no job {job_id!r}{where}; check the id with `foundry stats`")


class QueueUnavailable(FoundryError):
    """The queue backend cannot be reached; a write may be retried with the same job id."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message)


class QueueBroken(QueueUnavailable):
    """The backend answers but refuses to work on one queue's data (a key of the wrong type
    written by something else, a script error, out of memory): not an outage, and no retry
    fixes it. The message names the queue, the key where known, and the error."""

    def __init__(self, queue: str, reason: str) -> None:
        self.queue = queue
        self.reason = reason
        super().__init__(
            f"queue {queue!r} is broken: {reason}; fix or delete the key named (foundry stats "
            "shows the queue's state), the other queues are not affected"
        )


class QueuesBroken(QueueBroken):
    """A call over several queues served those that answered, but ``broken`` queues refused
    it (one ``QueueBroken`` each, in the order met); ``done`` is what the call did for the
    others (e.g. the leases ``reap`` recovered). ``queue`` is the first broken queue's."""

    def __init__(self, broken: Sequence[QueueBroken], done: int = 0) -> None:
        if not broken:
            raise ValueError("QueuesBroken needs at least one queue's QueueBroken")
        self.broken = tuple(broken)
        self.done = done
        first = self.broken[0]
        super().__init__(first.queue, first.reason)
        if len(self.broken) > 1:
            self.args = ("; ".join(str(error) for error in self.broken),)


class QueuesUnlisted(QueueUnavailable):
    """The list of queues could not be read (its part of the backend is down), but the parts
    that answered were searched for queues: ``found`` holds those, sorted; the queues whose
    data lives only on the parts that did not answer are missing from it. The message names
    what could not be reached."""

    def __init__(self, message: str, found: Iterable[str]) -> None:
        self.found = tuple(sorted(found))
        super().__init__(message)


class WriteNotReplicated(QueueUnavailable):
    """The master took a write but too few replicas acknowledged it in time
    (``REDIS_WAIT_REPLICAS``): not an outage, and the write may stand; it may be retried with the
    same job id (writes are idempotent)."""


class CacheError(FoundryError):
    """The cache could not do what was asked."""


class InvalidCacheKey(CacheError, ValueError):
    """A cache key that cannot be stored."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"invalid cache key {key[:80]!r}: {reason}")


class InvalidCacheValue(CacheError, ValueError):
    """A cache value that cannot be serialized, or a TTL that makes no sense."""


class UndecodableValue(CacheError):
    """A stored cache value cannot be decoded."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"cached value at {key!r} cannot be decoded ({reason}); delete the key")


class CacheUnavailable(CacheError):
    """The cache backend cannot be reached."""


class StaleEffect(CacheError):
    """An effect record is held by a newer attempt of its job: this attempt must not act."""

    def __init__(self, key: str, fence: int) -> None:
        self.key = key
        self.fence = fence
        super().__init__(
            f"effect {key!r} is held by an attempt newer than fence {fence}; this attempt's "
            "lease was lost and the job runs elsewhere, so stop without acting"
        )


class LockNotOwned(CacheError):
    """A lock was released or extended by someone who does not hold it."""


class ConfigurationError(FoundryError):
    """A setting is missing or malformed; the message names the variable."""


class PermanentFailure(FoundryError):
    """Raise from a handler to send the job to the dead letters at once, without retries."""


class UnknownHandler(FoundryError, LookupError):
    """No handler is registered under a job's name; given the names that are (``known``),
    the message suggests the likely one."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        super().__init__(
            f"no handler is registered as {name!r}{_likely(name, sorted(known))}; register it "
            "with @registry.job or start the worker with the right --app"
        )


def _likely(name: str, known: list[str]) -> str:
    """`` (did you mean ...?)`` naming the registered names ``name`` likely meant: the ones it
    ends (a handler registered without ``name=`` is ``module.function``), else close ones."""
    import difflib  # noqa: PLC0415 - only a refused name pays for it, not every worker's start

    likely = [each for each in known if each.endswith(f".{name}")]
    likely = likely or difflib.get_close_matches(name, known, n=3)
    if not likely:
        return ""
    return f" (did you mean {' or '.join(repr(each) for each in likely[:3])}?)"
