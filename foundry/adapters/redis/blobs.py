"""A job's stored blob: the codec's form without what the keys already say, or a short form.

``id`` and ``queue`` are dropped (the hash field and the key hold them). A job whose fields,
besides those, are only ``name`` and maybe ``created_at`` (what a plain dispatch makes) is stored
as ``=<name>`` or ``=<name>\\x1f<created_at µs, base 36>``: a no-op job's record then fits
jemalloc's 48-byte class (the whole budget is 256 bytes per pending job, see
docs/architecture.md). Anything else is the codec's JSON (it starts with ``{``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

import attrs
import orjson

from foundry.adapters.codec import WIRE_VERSION, Codec
from foundry.adapters.redis.records import split_record
from foundry.domain import InvalidJob, Job, Limit
from foundry.domain.errors import UndecodableJob

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEP = "\x1f"
_MICROSECOND = timedelta(microseconds=1)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


_PAIRS = [high + low for high in _DIGITS for low in _DIGITS]  # two digits per divmod
_FOUR_DIGITS = 36**4


def base36(number: int) -> str:
    """``number`` (>= 0) in base 36."""
    if number < 36:
        return _DIGITS[number]
    pairs = []
    while number:
        number, pair = divmod(number, 1296)
        pairs.append(_PAIRS[pair])
    text = "".join(reversed(pairs))
    return text[1:] if text[0] == "0" else text


#: The fields of a JSON blob built without the converter: a dispatch's name, payload,
#: creation time and concurrency limit (every job of a limited queue has one). Any other field
#: (or a value the fast path does not take) goes through the converter, which names what is
#: wrong; both build the same job.
_PLAIN = frozenset({"v", "name", "payload", "created_at", "limit"})


@lru_cache(maxsize=4096, typed=True)  # typed: 1.0 or True must fail as before
def _concurrency_limit(key: str, concurrency: int) -> Limit:
    """One ``Limit`` per key and concurrency (frozen, so shared): the jobs of one key repeat
    it, and building one runs three validators (most of a limited job's decoding cost)."""
    return Limit(key, concurrency)


def _plain(job_id: str, queue: str, fields: dict[str, Any]) -> Job | None:
    limit, created = fields.get("limit"), fields.get("created_at")
    payload = fields.get("payload", {})
    try:
        if limit is not None:
            if type(limit) is not dict or len(limit) != 2 or "rate" in limit:
                return None
            limit = _concurrency_limit(limit["key"], limit["concurrency"])
        if type(payload) is not dict or not (created is None or type(created) is int):
            return None
        return Job(
            fields["name"],
            payload,
            id=job_id,
            queue=queue,
            created_at=None if created is None else _EPOCH + timedelta(microseconds=created),
            limit=limit,
        )
    except (InvalidJob, KeyError, TypeError, ValueError, OverflowError):
        return None  # the converter's path names the problem


#: Every immutable field of a job but those the short form keeps or the keys hold, and their
#: defaults: a job whose values equal these and whose payload and metadata are empty (a plain
#: dispatch's) needs no unstructuring to be told short.
_REST = tuple(
    field.name
    for field in attrs.fields(Job)
    if field.name not in ("name", "id", "queue", "created_at", "payload", "metadata")
)
_rest_of = operator.attrgetter(*_REST)
_REST_DEFAULTS = _rest_of(Job("default"))


class JobBlobs:
    """Encode and decode stored job blobs around the one ``Codec``."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._stamp: tuple[int, str] = (-1, "")  # the last created_at in base 36: a batch
        # shares one
        self._plain: tuple[Any, ...] = _REST_DEFAULTS
        self._high: tuple[int, str] = (-1, "")  # its digits but the last four: the next
        # dispatches' (they change every 36**4 us, 1.7 s)

    @cached_property
    def _unstructure(self) -> Callable[[Job], dict[str, Any]]:
        """The codec's unstructure hook minus ``id`` and ``queue``: same fields otherwise, and
        no fresh default id minted per job just to compare it with the job's own. Built at the
        first job that needs it (a plain one never does)."""
        from foundry.adapters.converter import job_fields_but_keys  # noqa: PLC0415

        return job_fields_but_keys(self._codec.converter)

    def encode(self, job: Job) -> bytes:
        """The stored blob; raises ``InvalidJob`` as ``Codec.encode_job`` does."""
        rest = _rest_of(job)
        # The last plain job's values first: the same objects (its handler's defaults) compare
        # by identity, where an equal RetryPolicy is compared field by field.
        plain = rest in (self._plain, _REST_DEFAULTS)
        if plain and not job.payload and not job.metadata:
            self._plain = rest
            short = self._short_plain(job.name, job.created_at)
            if short is not None:
                return short
        fields = self._unstructure(job)
        short = self._short(fields)
        if short is not None:
            return short
        blob = orjson.dumps({"v": WIRE_VERSION, **fields})
        if len(blob) > self._codec.max_payload_bytes:
            self._codec.encode_job(job)  # raises InvalidJob when the payload is over the limit
        return blob

    def _short(self, fields: dict[str, object]) -> bytes | None:
        name = fields.get("name")
        if not isinstance(name, str) or name.startswith("{") or _SEP in name:
            return None
        if len(fields) == 1:
            return f"={name}".encode()
        created = fields.get("created_at")
        if len(fields) == 2 and isinstance(created, int) and created >= 0:
            return f"={name}{_SEP}{self._base36(created)}".encode()
        return None

    def _short_plain(self, name: str, created_at: datetime | None) -> bytes | None:
        """``_short`` of a job whose other fields are their defaults."""
        if name.startswith("{") or _SEP in name:
            return None
        if created_at is None:
            return f"={name}".encode()
        # The timedelta's parts, where dividing it by a microsecond converts both to µs first.
        since = created_at - _EPOCH
        created = (since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds
        if created < 0:
            return None
        return f"={name}{_SEP}{self._base36(created)}".encode()

    def _base36(self, number: int) -> str:
        stamp = self._stamp
        if stamp[0] == number:
            return stamp[1]
        high, low = divmod(number, _FOUR_DIGITS)
        if not high:
            text = base36(low)
        else:
            if self._high[0] != high:
                self._high = (high, base36(high))
            text = self._high[1] + _PAIRS[low // 1296] + _PAIRS[low % 1296]
        self._stamp = (number, text)
        return text

    def decode(self, job_id: str, queue: str, value: bytes) -> Job:
        """The job in a stored record; raises ``UndecodableJob``."""
        try:
            blob = split_record(value).blob
        except ValueError as error:
            raise UndecodableJob(job_id, "the stored record header is corrupt") from error
        if blob.startswith(b"="):
            return self._decode_short(job_id, queue, blob[1:])
        if not blob.startswith(b"{"):
            raise UndecodableJob(job_id, "the stored blob is neither JSON nor a short record")
        try:
            fields = orjson.loads(blob)
        except orjson.JSONDecodeError as error:
            raise UndecodableJob(job_id, f"not JSON ({error})") from error
        if type(fields) is dict and fields.keys() <= _PLAIN and fields.get("v") == WIRE_VERSION:
            job = _plain(job_id, queue, fields)
            if job is not None:
                return job
        return self._codec.job_from_fields({"id": job_id, "queue": queue, **fields}, job_id)

    @staticmethod
    def _decode_short(job_id: str, queue: str, blob: bytes) -> Job:
        try:
            name, _, created = blob.decode().partition(_SEP)
            created_at = _EPOCH + timedelta(microseconds=int(created, 36)) if created else None
            return Job(name, id=job_id, queue=queue, created_at=created_at)
        except (UnicodeDecodeError, ValueError, InvalidJob) as error:
            raise UndecodableJob(job_id, f"corrupt short record ({error})") from error
