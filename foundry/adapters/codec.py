"""The one serializer at the edges: a private cattrs converter over orjson, versioned.

Wire format of a job: a JSON object ``{"v": WIRE_VERSION, ...fields}``, fields at their
defaults omitted (compact in Redis), durations and times as integer microseconds (exact).
The converter (``converter.py``) is built when a codec first needs it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import orjson

from foundry.adapters.micros import epoch_micros
from foundry.domain import (
    MAX_PAYLOAD_BYTES,
    MAX_RESULT_BYTES,
    ErrorInfo,
    InvalidCacheValue,
    InvalidJob,
    InvalidResult,
    Job,
    UndecodableJob,
    UndecodableValue,
)
from foundry.ports.queue_types import WorkerInfo

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")

WIRE_VERSION = 1
#: Datetimes go to the value converter, which refuses a naive one (orjson would write it).
_DATETIMES_TO_CONVERTER = orjson.OPT_PASSTHROUGH_DATETIME

_WORKER_FIELDS = attrs.fields(WorkerInfo)
_NON_FINITE = "it holds {}, which JSON cannot represent: it would read back as None"


def _first_non_finite(value: Any, unstructure: Callable[[Any], Any]) -> float | None:
    """A NaN or infinity in ``value``, or ``None``: orjson writes them as null, so they would
    read back as ``None``. Plain JSON data is walked as it is (no call per item); anything
    else is walked as ``unstructure`` makes it."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            extend(item.values())
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is float or isinstance(item, float):
            if not math.isfinite(item):
                return float(item)
        elif not (kind is str or kind is int or kind is bool or item is None):
            made = unstructure(item)
            if made is not item:
                stack.append(made)
    return None


def _describe(error: Exception) -> str:
    if isinstance(error, ExceptionGroup):  # cattrs reports bad data as one
        from foundry.adapters.converter import describe  # noqa: PLC0415 - imported with it

        return describe(error)
    return f"{type(error).__name__}: {error}"


class Codec:
    """Encodes jobs, error histories, results and cache values to bytes, and back.

    ``max_payload_bytes`` is this backend's payload limit (the domain's 512 KiB at most).
    """

    def __init__(self, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.max_payload_bytes = max_payload_bytes

    @cached_property
    def converter(self) -> cattrs.Converter:
        """The cattrs converter, built (and cattrs imported) at first use."""
        from foundry.adapters.converter import make_converter  # noqa: PLC0415 - see its module

        return make_converter()

    @cached_property
    def value_converter(self) -> cattrs.Converter:
        """The converter of cache values and job results (``make_value_converter``)."""
        from foundry.adapters.converter import make_value_converter  # noqa: PLC0415

        return make_value_converter()

    @cached_property
    def _unstructure_value(self) -> Callable[[Any], Any]:
        return self.value_converter.unstructure

    @cached_property
    def _unstructure_job(self) -> Callable[[Job], dict[str, Any]]:
        return self.converter.get_unstructure_hook(Job)

    @cached_property
    def _structure_job(self) -> Callable[[Any, type[Job]], Job]:
        return self.converter.get_structure_hook(Job)

    # -- jobs ---------------------------------------------------------------------------------

    def encode_job(self, job: Job, omit: Collection[str] = ()) -> bytes:
        """The job's wire form, without the fields named in ``omit`` (a store that keeps them
        beside it gives them back to ``decode_job``). Raises ``InvalidJob`` if its payload
        exceeds this limit."""
        fields = self._unstructure_job(job)
        for name in omit:
            fields.pop(name, None)
        try:
            blob = orjson.dumps({"v": WIRE_VERSION, **fields})
        except orjson.JSONEncodeError as error:
            raise InvalidJob("job", f"cannot be encoded ({error}); use valid UTF-8 text") from error
        if len(blob) > self.max_payload_bytes:
            size = len(orjson.dumps(job.payload))
            if size > self.max_payload_bytes:
                raise InvalidJob(
                    "payload",
                    f"is {size} bytes encoded; this queue's limit is {self.max_payload_bytes} "
                    "(store large data elsewhere and pass its key)",
                )
        return blob

    def decode_job(
        self, data: bytes | str, job_id: str = "?", beside: Mapping[str, Any] | None = None
    ) -> Job:
        """A job from its wire form; ``beside`` gives the fields its store kept outside it
        (those the form has win). Raises ``UndecodableJob`` naming ``job_id`` and why."""
        try:
            fields = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise UndecodableJob(job_id, f"not JSON ({error})") from error
        if not isinstance(fields, dict):
            raise UndecodableJob(job_id, f"expected a JSON object, got {type(fields).__name__}")
        if beside:
            fields = {**beside, **fields}
        return self.job_from_fields(fields, job_id)

    def job_from_fields(self, fields: dict[str, Any], job_id: str = "?") -> Job:
        """A job from its wire form already parsed (the dict is consumed). Raises
        ``UndecodableJob`` as ``decode_job`` does."""
        version = fields.pop("v", None)
        if version != WIRE_VERSION:
            raise UndecodableJob(
                job_id,
                f"wire format version {version!r} is not {WIRE_VERSION}; "
                "upgrade the worker or drain old jobs",
            )
        structure = self._structure_job
        try:
            return structure(fields, Job)
        except (ExceptionGroup, InvalidJob, TypeError, ValueError) as error:
            raise UndecodableJob(job_id, _describe(error)) from error

    # -- anything the converter knows: error infos, records, results --------------------------

    def encode(self, value: Any) -> bytes:
        """Any value the converter can unstructure, as JSON bytes."""
        return orjson.dumps(self.converter.unstructure(value))

    def encode_worker(self, info: WorkerInfo) -> bytes:
        """``encode(info)`` without the converter, which a worker's heartbeats (the first comes
        before its first claim) then never build: the fields in order, those at their default
        left out, times as epoch microseconds."""
        fields: dict[str, Any] = {}
        for field in _WORKER_FIELDS:
            value = getattr(info, field.name)
            if value != field.default:
                fields[field.name] = epoch_micros(value) if isinstance(value, datetime) else value
        return orjson.dumps(fields)

    def decode(self, data: bytes | str, kind: type[T]) -> T:
        """A ``kind`` from JSON bytes. Raises ``ValueError`` describing what is wrong."""
        converter = self.converter
        try:
            return converter.structure(orjson.loads(data), kind)
        except (ExceptionGroup, orjson.JSONDecodeError, TypeError) as error:
            raise ValueError(f"cannot decode {kind.__name__}: {_describe(error)}") from error

    def decode_errors(self, data: bytes | str) -> tuple[ErrorInfo, ...]:
        """An error history from JSON bytes."""
        return tuple(self.decode(data, list[ErrorInfo]))

    def encode_result(self, result: Any) -> bytes:
        """A job's result as JSON (as ``encode_value`` makes it). Raises ``InvalidResult``
        naming its type if it is not JSON-compatible (never a silent substitute) or is over
        ``MAX_RESULT_BYTES``."""
        try:
            blob = self._json(result)
        except (TypeError, orjson.JSONEncodeError, RecursionError) as error:
            raise InvalidResult(type(result).__name__, str(error)[:200]) from error
        if len(blob) > MAX_RESULT_BYTES:
            raise InvalidResult(
                type(result).__name__,
                f"it is {len(blob)} bytes as JSON; the limit is {MAX_RESULT_BYTES}",
            )
        return blob

    # -- cache values -------------------------------------------------------------------------

    def encode_value(self, value: Any) -> bytes:
        """A cache value as JSON bytes. Raises ``InvalidCacheValue`` if it cannot be encoded."""
        try:
            return self._json(value)
        except RecursionError:
            raise InvalidCacheValue(
                f"cannot cache a {type(value).__name__}: it refers to itself or nests too deep "
                "to encode; cache a flatter copy of the data"
            ) from None
        except (TypeError, orjson.JSONEncodeError) as error:
            if inspect.isawaitable(value):
                raise InvalidCacheValue(
                    f"cannot cache a {type(value).__name__}: it is an async call's pending "
                    "result; await it and cache what it returns (remember takes a plain "
                    "function)"
                ) from error
            raise InvalidCacheValue(
                f"cannot cache a {type(value).__name__}: {error}; "
                "cache JSON-compatible data or attrs classes"
            ) from error

    def _json(self, value: Any) -> bytes:
        """``value`` as JSON (see ``make_value_converter``); a ``TypeError`` (orjson's, the
        converter's, or for a NaN or infinity, which orjson would write as null) saying why it
        cannot be.

        Fast path: orjson walks the value and hands the value converter only what it does not
        serialize itself (attrs classes, datetimes, durations, sets), so plain JSON data skips the
        converter's dispatch (about 10x faster); anything the fast path refuses goes through
        the converter whole, which writes the same JSON. Only JSON holding ``null`` is walked
        for NaN, so data without it pays nothing more.
        """
        unstructure = self._unstructure_value
        try:
            blob = orjson.dumps(value, default=unstructure, option=_DATETIMES_TO_CONVERTER)
        except (TypeError, orjson.JSONEncodeError):
            blob = orjson.dumps(unstructure(value))
        if b"null" in blob and (number := _first_non_finite(value, unstructure)) is not None:
            raise TypeError(_NON_FINITE.format(number))
        return blob

    def decode_value(self, data: bytes | str, key: str) -> Any:
        """A cache value from JSON bytes. Raises ``UndecodableValue`` naming the key."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise UndecodableValue(key, str(error)) from error

    def decode_values(self, blobs: Sequence[bytes], keys: Sequence[str]) -> list[Any]:
        """``decode_value`` of each blob (a batch, without a call per value on the happy path)."""
        try:
            return [orjson.loads(blob) for blob in blobs]
        except orjson.JSONDecodeError:
            return [self.decode_value(blob, key) for blob, key in zip(blobs, keys, strict=True)]
