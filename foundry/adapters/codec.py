"""The one serializer at the edges: a private cattrs converter over orjson, versioned.

Wire format of a job: a JSON object ``{"v": WIRE_VERSION, ...fields}``, fields at their
defaults omitted (compact in Redis), durations and times as integer microseconds (exact).
The converter (``converter.py``) is built when a codec first needs it.
"""

from __future__ import annotations

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
#: orjson options that route every type orjson would encode differently from the converter
#: (datetimes, dataclasses, subclasses of builtins) to the converter instead.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


_WORKER_FIELDS = attrs.fields(WorkerInfo)
_NON_FINITE = "it holds {}, which JSON cannot represent: it would read back as None"


def _first_non_finite(value: Any) -> float | None:
    """The first NaN or infinity in JSON data, or ``None``: orjson writes them as null, so
    they would read back as ``None``."""
    if isinstance(value, float):
        return None if math.isfinite(value) else value
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return None
    for item in value:
        if (found := _first_non_finite(item)) is not None:
            return found
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
    def _unstructure_job(self) -> Callable[[Job], dict[str, Any]]:
        return self.converter.get_unstructure_hook(Job)

    @cached_property
    def _structure_job(self) -> Callable[[Any, type[Job]], Job]:
        return self.converter.get_structure_hook(Job)

    @cached_property
    def _unstructure(self) -> Callable[[Any], Any]:
        return self.converter.unstructure

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
        """A job's result as JSON. Raises ``InvalidResult`` naming its type if it is not
        JSON-compatible (never a silent substitute) or is over ``MAX_RESULT_BYTES``."""
        try:
            data = self.converter.unstructure(result)
            blob = orjson.dumps(data)
        except (TypeError, orjson.JSONEncodeError, RecursionError) as error:
            raise InvalidResult(type(result).__name__, str(error)[:200]) from error
        if b"null" in blob and (number := _first_non_finite(data)) is not None:
            raise InvalidResult(type(result).__name__, _NON_FINITE.format(number))
        if len(blob) > MAX_RESULT_BYTES:
            raise InvalidResult(
                type(result).__name__,
                f"it is {len(blob)} bytes as JSON; the limit is {MAX_RESULT_BYTES}",
            )
        return blob

    # -- cache values -------------------------------------------------------------------------

    def encode_value(self, value: Any) -> bytes:
        """A cache value as JSON bytes. Raises ``InvalidCacheValue`` if it cannot be encoded.

        Fast path: orjson walks the value and hands the converter only what it does not
        serialize the same way itself (attrs classes, datetimes, dataclasses, subclasses), so
        plain JSON data skips the converter's dispatch (about 10x faster); anything the fast
        path refuses goes through the converter whole, so the result is always the same.
        """
        try:
            blob = orjson.dumps(value, default=self._unstructure, option=_PASSTHROUGH)
        except (TypeError, orjson.JSONEncodeError):
            blob = self._encode_converted(value)
        if b"null" in blob and (number := _first_non_finite(self._unstructure(value))) is not None:
            raise InvalidCacheValue(
                f"cannot cache a {type(value).__name__}: {_NON_FINITE.format(number)}; "
                "cache it as a string, or None"
            )
        return blob

    def _encode_converted(self, value: Any) -> bytes:
        try:
            return orjson.dumps(self.converter.unstructure(value))
        except (TypeError, orjson.JSONEncodeError) as error:
            raise InvalidCacheValue(
                f"cannot cache a {type(value).__name__}: {error}; "
                "cache JSON-compatible data or attrs classes"
            ) from error

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
