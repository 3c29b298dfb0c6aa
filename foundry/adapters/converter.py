"""The codec's cattrs converter and how its errors read: imported when a codec first needs it.

A worker's startup needs none of it (its first claims decode jobs without the converter, its
heartbeat is plain JSON), and cattrs and the converter's hooks cost about as much as a tenth of
that startup.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import cattrs
from cattrs.cols import is_mapping
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.orjson import make_converter as make_orjson_converter
from cattrs.strategies import configure_tagged_union
from cattrs.v import format_exception

from foundry.adapters.micros import EPOCH, aware, epoch_micros, micros
from foundry.domain import InvalidJob, Job
from foundry.domain.limits import Limit
from foundry.domain.retry import Backoff
from foundry.domain.schedule import Schedule


def _to_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, int):
        raise TypeError(f"expected integer microseconds, got {value!r}")
    return EPOCH + timedelta(microseconds=value)


def _to_timedelta(value: Any, _: type) -> timedelta:
    if not isinstance(value, int):
        raise TypeError(f"expected integer microseconds, got {value!r}")
    return timedelta(microseconds=value)


def _limit_hook(converter: cattrs.Converter) -> Callable[[Any, type], Limit]:
    """A job's limit: the common shape (a key and a concurrency) built directly, every job of
    a limited drain has one; any other shape (a rate, a bad value) by cattrs, which names what
    is wrong."""
    general = converter.get_structure_hook(Limit)

    def structure(value: Any, kind: type) -> Limit:
        if type(value) is dict and len(value) == 2:
            key, concurrency = value.get("key"), value.get("concurrency")
            if key is not None and concurrency is not None:
                return Limit(key, concurrency)
        return general(value, kind)  # type: ignore[no-any-return]

    return structure


def _iso(moment: datetime) -> str:
    return aware(moment).isoformat()


def _refuse_bytes(value: bytes) -> Any:
    # cattrs' orjson preset writes bytes as base85 text, which a reader gets back as a str.
    raise TypeError(f"{type(value).__name__} are not JSON data: decode them to a str first")


def _text_key(key: Any, _: Any = None) -> str:  # cattrs types key handlers with 2 args
    # cattrs' orjson preset writes str(key): 1 as "1", None as "None", a (str, Enum) member
    # as "Colour.RED"; a reader would look for keys it cannot find.
    if isinstance(key, str):
        return str.__str__(key)  # a str subclass (a text enum) as its text
    raise TypeError(
        f"the dict key {key!r} ({type(key).__name__}) would read back as text, as every "
        "JSON object key does; convert the keys to str first"
    )


def make_converter() -> cattrs.Converter:
    """A fresh converter with Foundry's hooks; never registers on cattrs' global one."""
    converter = make_orjson_converter(omit_if_default=True)
    converter.register_unstructure_hook(timedelta, micros)
    converter.register_structure_hook(timedelta, _to_timedelta)
    converter.register_unstructure_hook(datetime, epoch_micros)
    converter.register_structure_hook(datetime, _to_datetime)
    converter.register_unstructure_hook(frozenset, sorted)
    converter.register_unstructure_hook(bytes, _refuse_bytes)
    configure_tagged_union(Schedule, converter, tag_name="t")
    configure_tagged_union(Backoff, converter, tag_name="t")
    converter.register_structure_hook(Limit, _limit_hook(converter))
    # A job's id never equals a fresh default one: comparing would only mint a random id per
    # encode, so it is always written (the same bytes).
    converter.register_unstructure_hook(
        Job,
        make_dict_unstructure_fn(
            Job, converter, _cattrs_omit_if_default=True, id=override(omit_if_default=False)
        ),
    )
    return converter


def make_value_converter() -> cattrs.Converter:
    """The converter of cache values and job results, which read back as JSON data: what
    orjson writes (datetimes, dates and times as ISO 8601 text, UUIDs as text, enums as their
    value), every field of an attrs class or dataclass (one at its default too: the reader
    has no class to fill it in), durations as seconds, sets as lists. Bytes and naive
    datetimes are refused, and dict keys that are not text (JSON would write them as text).
    """
    converter = make_orjson_converter()
    converter.register_unstructure_hook(datetime, _iso)
    converter.register_unstructure_hook(timedelta, timedelta.total_seconds)
    converter.register_unstructure_hook(frozenset, sorted)
    converter.register_unstructure_hook(bytes, _refuse_bytes)
    converter.register_unstructure_hook_factory(
        is_mapping, lambda kind: converter.gen_unstructure_mapping(kind, key_handler=_text_key)
    )
    return converter


def job_fields_but_keys(converter: cattrs.Converter) -> Callable[[Job], dict[str, Any]]:
    """The converter's unstructure hook of a job without ``id`` and ``queue`` (a store whose
    keys hold them)."""
    return make_dict_unstructure_fn(
        Job,
        converter,
        _cattrs_omit_if_default=True,
        id=override(omit=True),
        queue=override(omit=True),
    )


def _leaf_message(error: BaseException, expected: type | None) -> str:
    if isinstance(error, InvalidJob):
        return str(error)
    return format_exception(error, expected)


def describe(error: Exception) -> str:
    """What is wrong, one problem after another when cattrs found several."""
    if isinstance(error, cattrs.BaseValidationError):
        messages = cattrs.transform_error(error, format_exception=_leaf_message)
        return "; ".join(messages) or str(error)
    return f"{type(error).__name__}: {error}"
