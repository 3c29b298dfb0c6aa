"""A unit of work: which handler to run, with what, where, when and how persistently."""

from __future__ import annotations

import base64
import enum
import json
import math
import operator
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from foundry.domain.durations import as_duration, shown
from foundry.domain.errors import InvalidJob, InvalidQueueName
from foundry.domain.limits import Limit
from foundry.domain.retry import RetryPolicy
from foundry.domain.schedule import RunAfter, RunAt, RunNow, Schedule

PRIORITY_MIN = -255
PRIORITY_MAX = 255
MAX_PAYLOAD_BYTES = 512 * 1024
#: The largest result a job may store (as JSON): far below what a backend refuses outright
#: (Redis: 512 MB by default), which would fail the completion on every retry.
MAX_RESULT_BYTES = 16 * 1024 * 1024
#: How deep dicts and lists may nest in a payload (every encoder on the way has a limit).
MAX_PAYLOAD_DEPTH = 64
MAX_NAME_LENGTH = 200
MAX_ID_LENGTH = 64
#: The most jobs one job may wait for (``Job.after``).
MAX_DEPENDENCIES = 100
MAX_UNIQUE_KEY_LENGTH = 200
DEFAULT_QUEUE = "default"
DEFAULT_TIMEOUT = timedelta(minutes=5)

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
_JOB_ID = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_ID_LENGTH}}}")
_JSON_SCALARS = (str, bool, type(None))
_INT64 = range(-(2**63), 2**63)
_SCHEDULES = (RunNow, RunAt, RunAfter)
_ZERO = timedelta(0)
#: How ``Job.of_template`` makes an instance without ``__init__``.
_new = object.__new__

Payload = dict[str, Any]
#: Ids minted ahead by ``new_job_id``, a block from one read of the OS's random source; a
#: forked child empties its copy, so parent and child never hand out the same ids.
_MINTED: list[str] = []
_MINTED_BLOCK = 64
os.register_at_fork(after_in_child=_MINTED.clear)


def new_job_id() -> str:
    """A fresh random id (22 URL-safe characters, 132 random bits), as ``new_job_ids`` makes."""
    # One read of os.urandom (a system call) per 64 ids: it was a fifth of minting one each.
    # list.pop is atomic, so threads sharing the block never take the same id.
    minted = _MINTED
    while True:
        try:
            return minted.pop()
        except IndexError:
            minted += new_job_ids(_MINTED_BLOCK)


def new_job_ids(count: int) -> list[str]:
    """``count`` fresh random ids, from one read of the OS's random source: every 33 random
    bytes are 44 base64url characters, two ids of 132 bits. No id begins with ``-``."""
    text = base64.urlsafe_b64encode(os.urandom(33 * ((count + 1) // 2))).decode()
    ids = [text[start : start + 22] for start in range(0, 22 * count, 22)]
    # A leading dash would make a shell command read the id as an option.
    return [f"_{job_id[1:]}" if job_id[0] == "-" else job_id for job_id in ids]


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name, else raise ``InvalidQueueName``."""
    if not isinstance(name, str) or _QUEUE_NAME.fullmatch(name) is None:
        raise InvalidQueueName(str(name))
    return name


def _check_json(value: object, path: str, depth: int = 1) -> None:
    if isinstance(value, list | dict) and depth > MAX_PAYLOAD_DEPTH:
        raise InvalidJob(
            "payload",
            f"{path[:60]}... is nested deeper than {MAX_PAYLOAD_DEPTH} levels; flatten it",
        )
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidJob("payload", f"{path} has a non-string key {key!r}")
            _check_json(item, f"{path}.{key}", depth + 1)
    else:
        _check_json_scalar(value, path)


def _check_json_scalar(value: object, path: str) -> None:
    if isinstance(value, _JSON_SCALARS):
        return
    if isinstance(value, int):
        if value not in _INT64:
            raise InvalidJob("payload", f"{path} is {value}, outside the 64-bit integer range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidJob("payload", f"{path} is {value}, which JSON cannot represent")
        return
    raise InvalidJob(
        "payload",
        f"{path} is a {type(value).__name__}; payloads hold only JSON values "
        "(dict, list, str, int, float, bool, None) - pass ids, not objects",
    )


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once: dumps()
# with options builds a new encoder per call, a third of a small job's validation


def payload_size(payload: Payload) -> int:
    """Bytes of the payload as compact UTF-8 JSON."""
    return len(_COMPACT.encode(payload).encode())


def given_id(value: str, returned_by: str = "dispatch") -> str:
    """``value`` if it is a string, for the calls that look a job or batch up by id; otherwise
    a ``TypeError`` naming what to pass (a list or ``None`` would be looked up as no such
    id, or refused by the backend's client as something else)."""
    if isinstance(value, str):
        return value
    raise TypeError(
        f"expected the id string that {returned_by} returned, got {value!r} "
        f"({type(value).__name__})"
    )


#: The rule a job or batch id follows, as error messages state it.
ID_RULE = f"1-{MAX_ID_LENGTH} letters, digits or '_.:-'"


def is_job_id(value: object) -> bool:
    """Whether ``value`` is an id a job or batch may have (``ID_RULE``)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def _check_id(value: object) -> str | None:
    if is_job_id(value):
        return None
    return f"{value!r} must be {ID_RULE}"


def _check_name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string naming a registered handler"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
    if not value.isprintable():
        return (
            f"{value!r} holds a character that cannot be printed (a newline, a tab, a lone "
            "surrogate): name the handler with printable text, like 'mail.welcome'"
        )
    return None


def _check_queue(value: object) -> str | None:
    if isinstance(value, str) and _QUEUE_NAME.fullmatch(value):
        return None
    return f"{value!r} is not a valid queue name; use 1-100 letters, digits or '_.:-' (no braces)"


#: Longest compact JSON of a JSON scalar this check accepts: a 64-bit int is at most 20
#: characters, a finite float's repr at most 24, ``false`` 5.
_SCALAR_BOUND = 32


def _text_bound(text: str) -> int:
    """Most bytes ``text`` takes as a JSON string (6 per character: ``\\u001f``), or -1 if it
    is not valid UTF-8 (a lone surrogate)."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return -1
    return 6 * len(text) + 2


def _bound(value: object, depth: int = 1) -> int:  # noqa: PLR0911 - one flat type switch
    """An upper bound of ``value``'s size as compact UTF-8 JSON, or -1 when it is not plainly a
    JSON value (exact builtin types, nested at most ``MAX_PAYLOAD_DEPTH`` deep, ``value``
    being at ``depth``): the fast path of ``_check_payload``."""
    kind = type(value)
    if kind is str:
        return _text_bound(value)  # type: ignore[arg-type]
    if kind is int:
        return _SCALAR_BOUND if -(2**63) <= value < 2**63 else -1  # type: ignore[operator]
    if kind is float:
        return _SCALAR_BOUND if math.isfinite(value) else -1  # type: ignore[arg-type]
    if value is None or kind is bool:
        return _SCALAR_BOUND
    if kind is dict:
        return _dict_bound(value, depth)  # type: ignore[arg-type]
    if kind is list:
        if depth > MAX_PAYLOAD_DEPTH:
            return -1
        total = 2
        for item in value:  # type: ignore[attr-defined]
            size = _bound(item, depth + 1)
            if size < 0:
                return -1
            total += size + 1
        return total
    return -1


def _dict_bound(value: dict[Any, Any], depth: int) -> int:
    if depth > MAX_PAYLOAD_DEPTH:
        return -1
    total = 2
    for key, item in value.items():
        if type(key) is not str:
            return -1
        key_size, size = _text_bound(key), _bound(item, depth + 1)
        if key_size < 0 or size < 0:
            return -1
        total += key_size + size + 2
    return total


def _check_payload(value: object) -> str | None:
    """The fast path proves plain, small payloads valid in one pass; anything else (a subclass,
    a bad value, a size near the limit) takes the exact check, which names the problem."""
    if type(value) is dict:
        bound = _dict_bound(value, 1)
        if 0 <= bound <= MAX_PAYLOAD_BYTES:
            return None
    return _check_payload_exactly(value)


def _check_payload_exactly(value: object) -> str | None:
    if not isinstance(value, dict):
        return f"must be a dict of keyword arguments, got {type(value).__name__}"
    _check_json(value, "payload")
    try:
        size = payload_size(value)
    except UnicodeEncodeError as error:
        return f"holds a string that is not valid UTF-8 ({error.reason}); clean the text first"
    if size > MAX_PAYLOAD_BYTES:
        return f"is {size} bytes as JSON; the limit is {MAX_PAYLOAD_BYTES} (store blobs elsewhere)"
    return None


def _check_priority(value: object) -> str | None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and PRIORITY_MIN <= value <= PRIORITY_MAX:  # type: ignore[operator]
        return None
    return f"{value!r} must be an int from {PRIORITY_MIN} to {PRIORITY_MAX} (higher runs first)"


def _check_schedule(value: object) -> str | None:
    if isinstance(value, _SCHEDULES):
        return None
    return f"{value!r} must be RunNow(), RunAt(aware datetime) or RunAfter(timedelta >= 0)"


def _check_positive_duration(value: object) -> str | None:
    if isinstance(value, timedelta) and value > _ZERO:
        return None
    return f"{shown(value)} must be a positive duration (seconds or a timedelta)"


def _check_created_at(value: object) -> str | None:
    if value is None or (isinstance(value, datetime) and value.utcoffset() is not None):
        return None
    return f"{value!r} must be a timezone-aware datetime or None"


def _check_metadata(value: object) -> str | None:
    if (type(value) is dict and not value) or (
        isinstance(value, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return None
    return "must be a dict of str to str"


class UniqueUntil(enum.StrEnum):
    """How long a unique key blocks duplicates."""

    STARTED = "started"
    FINISHED = "finished"


@attrs.frozen
class UniqueSpec:
    """While a job holding ``key`` is pending (or running, with ``until=FINISHED``), and for at
    most ``ttl``, enqueueing another job with the same key in the same queue is a duplicate."""

    key: str = attrs.field()
    ttl: timedelta = attrs.field(default=timedelta(hours=1), converter=as_duration)
    until: UniqueUntil = attrs.field(default=UniqueUntil.FINISHED, converter=UniqueUntil)

    @key.validator
    def _key(self, _: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_UNIQUE_KEY_LENGTH:
            raise InvalidJob("unique", f"key must be 1-{MAX_UNIQUE_KEY_LENGTH} characters")

    @ttl.validator
    def _ttl(self, _: attrs.Attribute[timedelta], value: object) -> None:
        if not isinstance(value, timedelta) or value <= timedelta(0):
            raise InvalidJob(
                "unique", f"ttl {shown(value)} must be a positive duration (seconds or a timedelta)"
            )


def _check_unique(value: object) -> str | None:
    if value is None or isinstance(value, UniqueSpec):
        return None
    return f"{value!r:.80} must be a UniqueSpec or None, like UniqueSpec('report-{{account}}')"


def _id_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidJob("after", f"give a list of job ids, not the string {value!r}")
    return tuple(value)


class AfterFailure(enum.StrEnum):
    """What a job does when a job it waits for (``Job.after``) goes dead, is cancelled or is
    deleted: it goes dead too, or is cancelled (a chain's later steps), both with reason
    ``dependency failed``; or it runs anyway."""

    DEAD = "dead"
    CANCEL = "cancel"
    RUN = "run"


def _after_failure(value: Any) -> AfterFailure:
    if type(value) is AfterFailure:
        return value
    try:
        return AfterFailure(value)
    except ValueError:
        choices = ", ".join(repr(choice.value) for choice in AfterFailure)
        raise InvalidJob("after_failure", f"{value!r} must be one of {choices}") from None


def _check_limit(value: object) -> str | None:
    if value is None or isinstance(value, Limit):
        return None
    return f"{value!r} must be a Limit or None"


def _check_retry(value: object) -> str | None:
    return None if isinstance(value, RetryPolicy) else f"{value!r} must be a RetryPolicy"


def _check_soft_timeout(job: Job) -> str | None:
    value = job.soft_timeout
    if value is None:
        return None
    if _check_positive_duration(value) is not None:
        return f"{shown(value)} must be a positive duration (seconds or a timedelta) or None"
    assert isinstance(value, timedelta)
    if value >= job.timeout:
        return f"{shown(value)} must be shorter than the hard timeout {shown(job.timeout)}"
    return None


def _check_after(job: Job) -> str | None:
    value = job.after
    if not value:
        return None
    if len(value) > MAX_DEPENDENCIES:
        return f"at most {MAX_DEPENDENCIES} jobs, got {len(value)}"
    for job_id in value:
        if _check_id(job_id) is not None:
            return f"{job_id!r} is not a job id"
    if len(set(value)) != len(value) or job.id in value:
        return "name each job once, and never the job itself"
    return None


#: Each field's rule, in field order: a check of its value, or (``soft_timeout``, ``after``)
#: of the job, as they depend on other fields; and whether the value is immutable, so that a
#: value that passed (the same object: a handler's defaults are shared by its jobs) passes.
_RULES: tuple[tuple[str, Callable[[Any], str | None], bool], ...] = (
    ("name", _check_name, True),
    ("payload", _check_payload, False),
    ("queue", _check_queue, True),
    ("id", _check_id, True),
    ("priority", _check_priority, True),
    ("schedule", _check_schedule, True),
    ("retry", _check_retry, True),
    ("timeout", _check_positive_duration, True),
    ("soft_timeout", _check_soft_timeout, False),
    ("unique", _check_unique, True),
    ("created_at", _check_created_at, True),
    ("metadata", _check_metadata, False),
    ("after", _check_after, False),
    ("limit", _check_limit, True),
)
_OF_JOB = frozenset({"soft_timeout", "after"})
_values_of = operator.attrgetter(*(name for name, _, _ in _RULES))
_NOTHING = object()
#: The last value of each immutable field that passed its check (kept alive here, so an
#: object of the same identity is that one).
_passed: list[object] = [_NOTHING] * len(_RULES)


def _validate(job: Job) -> None:
    """Every field's rule, in field order, in one pass (an attrs validator per field made two
    calls each, a third of building a job); raises ``InvalidJob`` naming the first bad one."""
    passed = _passed
    for index, value in enumerate(_values_of(job)):
        if value is passed[index]:
            continue
        name, check, immutable = _RULES[index]
        problem = check(job if name in _OF_JOB else value)
        if problem is not None:
            raise InvalidJob(name, problem)
        if immutable:
            passed[index] = value


def _validate_fresh(job: Job, *, minted: bool) -> None:
    """``_validate`` of the fields a job made from a valid template does not share with it
    (the fields it sets and ``after``, which names other ids), in field order; a ``minted``
    id (``new_job_id``'s) is valid as made."""
    payload = job.payload
    # An empty dict (a dispatch without arguments), like empty metadata and no ``after``
    # below, is valid as it is: three calls fewer per such job.
    problem = None if type(payload) is dict and not payload else _check_payload(payload)
    if problem is not None:
        raise InvalidJob("payload", problem)
    problem = None if minted else _check_id(job.id)
    if problem is not None:
        raise InvalidJob("id", problem)
    created_at = job.created_at
    if type(created_at) is not datetime or created_at.tzinfo is not UTC:  # a clock's is UTC
        problem = _check_created_at(created_at)
        if problem is not None:
            raise InvalidJob("created_at", problem)
    metadata = job.metadata
    problem = None if type(metadata) is dict and not metadata else _check_metadata(metadata)
    if problem is not None:
        raise InvalidJob("metadata", problem)
    problem = _check_after(job) if job.after else None
    if problem is not None:
        raise InvalidJob("after", problem)


@attrs.frozen
class Job:
    """What to run (``name`` with ``payload`` as keyword arguments), where and how.

    Every field is validated at construction: a bad value raises ``InvalidJob`` naming it.
    The id is minted by the client, so re-sending an enqueue is idempotent. ``after`` names
    jobs of the same queue, enqueued before it, that must complete before it runs; if one of
    them goes dead, is cancelled or deleted, ``after_failure`` says what the job does.
    """

    name: str
    payload: Payload = attrs.field(factory=dict)
    queue: str = DEFAULT_QUEUE
    id: str = attrs.field(factory=new_job_id)
    priority: int = 0
    schedule: Schedule = attrs.field(default=RunNow())
    retry: RetryPolicy = attrs.field(default=RetryPolicy())
    timeout: timedelta = attrs.field(default=DEFAULT_TIMEOUT, converter=as_duration)
    soft_timeout: timedelta | None = attrs.field(default=None, converter=as_duration)
    unique: UniqueSpec | None = None
    created_at: datetime | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)
    after: tuple[str, ...] = attrs.field(default=(), converter=_id_tuple)
    after_failure: AfterFailure = attrs.field(default=AfterFailure.DEAD, converter=_after_failure)
    limit: Limit | None = None

    def __attrs_post_init__(self) -> None:
        _validate(self)

    @classmethod
    def of_template(
        cls,
        template: Job,
        job_id: str | None,
        payload: Payload,
        created_at: datetime,
        metadata: dict[str, str],
    ) -> Job:
        """A job with ``template``'s fields but these four, refused as ``Job(...)`` would be;
        ``job_id=None`` mints a fresh id (``new_job_id``), which needs no check.

        The dispatch path's constructor: ``template`` (a handler's) holds converted values
        that passed its own validation, so they are copied as they are and only the four new
        values, and ``after`` against the new id, are checked (``__init__``'s keyword
        arguments, converters and factories and the check of every field were most of
        building a job).
        """
        # Filled as a _Draft, then made the class asked for: see _Draft.
        job: Any = _new(_Draft)
        job.name = template.name
        job.payload = payload
        job.queue = template.queue
        job.id = new_job_id() if job_id is None else job_id
        job.priority = template.priority
        job.schedule = template.schedule
        job.retry = template.retry
        job.timeout = template.timeout
        job.soft_timeout = template.soft_timeout
        job.unique = template.unique
        job.created_at = created_at
        job.metadata = metadata
        job.after = template.after
        job.after_failure = template.after_failure
        job.limit = template.limit
        job.__class__ = cls
        made: Job = job
        _validate_fresh(made, minted=job_id is None)
        return made

    @property
    def max_attempts(self) -> int:
        """How many starts this job gets."""
        return self.retry.max_attempts

    def run_at(self, now: datetime) -> datetime:
        """The first moment the job may be claimed, if enqueued at ``now``."""
        return self.schedule.run_at(now)


class _Draft(Job):
    """A ``Job`` whose slots may be set: ``Job.of_template`` fills one, then makes it a
    ``Job`` (``__class__``; the layout is the same). The interpreter stores a slot of a class
    with the plain ``__setattr__`` in a few instructions, where ``object.__setattr__`` called
    per field around the frozen one was two thirds of building a job. Both plain methods are
    needed: a Python ``__delattr__`` also sends every store through a slower path."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__
