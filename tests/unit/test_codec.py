"""The codec: exact round trips, a versioned wire format, clear errors for bad data."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, datetime, timedelta

import attrs
import orjson
import pytest
from cattrs.gen import make_dict_unstructure_fn
from hypothesis import given
from hypothesis import strategies as st

from foundry.adapters.codec import WIRE_VERSION, Codec
from foundry.domain import (
    ErrorInfo,
    InvalidCacheValue,
    InvalidJob,
    InvalidResult,
    Job,
    UndecodableJob,
    UndecodableValue,
)
from foundry.ports import WorkerInfo
from tests.strategies import jobs

codec = Codec()


@given(jobs())
def test_any_valid_job_round_trips_exactly(job: Job) -> None:
    assert codec.decode_job(codec.encode_job(job), job.id) == job


@given(jobs())
def test_the_job_hook_gives_the_fields_of_cattrs_own_omit_if_default_hook(job: Job) -> None:
    plain = make_dict_unstructure_fn(Job, codec.converter, _cattrs_omit_if_default=True)

    assert codec.converter.unstructure(job) == plain(job)


def test_a_default_job_encodes_compactly_with_its_version() -> None:
    blob = codec.encode_job(Job("noop", id="a" * 22))

    assert orjson.loads(blob) == {"v": WIRE_VERSION, "name": "noop", "id": "a" * 22}
    assert len(blob) < 64


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"v": 99, "name": "x"}', "version 99"),
        (b'{"name": "x"}', "version None"),
        (b'{"v": 1, "name": ""}', "name"),
        (b'{"v": 1, "name": "x", "priority": 9999}', "priority"),
        (b'{"v": 1, "name": "x", "timeout": "soon"}', "timeout"),
        (b'{"v": 1}', "name"),
    ],
)
def test_undecodable_jobs_raise_an_error_naming_the_job_and_the_problem(
    blob: bytes, reason: str
) -> None:
    with pytest.raises(UndecodableJob) as refused:
        codec.decode_job(blob, "job-7")

    assert refused.value.job_id == "job-7"
    assert reason in str(refused.value)


def test_a_payload_over_the_backend_limit_is_refused_before_storage() -> None:
    small = Codec(max_payload_bytes=1024)

    with pytest.raises(InvalidJob) as refused:
        small.encode_job(Job("n", {"blob": "x" * 2000}))

    assert refused.value.field == "payload"
    assert "1024" in str(refused.value)


def test_error_histories_round_trip() -> None:
    history = (
        ErrorInfo(type="ValueError", message="a", attempt=1, signal=9, mro=("Exception",)),
        ErrorInfo(
            type="x.Y", traceback="tb", attempt=2, at=datetime(2030, 1, 1, tzinfo=UTC), exit_code=3
        ),
    )

    assert codec.decode_errors(codec.encode(list(history))) == history


#: Any text, lone surrogates often (``st.text()`` leaves them out).
any_text = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))


@given(any_text.filter(bool), any_text, any_text, st.lists(any_text))
def test_any_exception_text_is_kept_as_the_codec_can_store_and_read_it(
    kind: str, message: str, traceback: str, mro: list[str]
) -> None:
    error = ErrorInfo(kind, message, traceback=traceback, mro=mro)

    assert codec.decode_errors(codec.encode([error])) == (error,)
    assert attrs.evolve(error) == error  # constructing it again keeps it as it is


def test_a_result_that_is_not_json_is_refused_naming_its_type() -> None:
    with pytest.raises(InvalidResult, match="of type object"):
        codec.encode_result(object())

    assert orjson.loads(codec.encode_result({"n": 1})) == {"n": 1}


def test_a_result_with_a_dict_key_that_is_not_text_is_refused_not_rewritten() -> None:
    with pytest.raises(InvalidResult, match="dict key 7"):
        codec.encode_result({"by_user": {7: "Ada"}})


def test_durations_are_exact_integer_microseconds() -> None:
    delta = timedelta(days=3, seconds=7, microseconds=11)

    assert codec.decode(codec.encode(delta), timedelta) == delta


def test_cache_values_that_cannot_be_encoded_or_decoded_are_clear_errors() -> None:
    with pytest.raises(InvalidCacheValue, match="cannot cache a object"):
        codec.encode_value(object())
    with pytest.raises(UndecodableValue, match="'user:1'"):
        codec.decode_value(b"\xff{", "user:1")


class _Colour(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass
class _Row:
    at: datetime
    tags: tuple[str, ...]


_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.binary(max_size=2),
    st.text(max_size=5),
    st.datetimes(timezones=st.just(UTC)),
    st.timedeltas(),
    st.uuids(),
    st.sampled_from([_Colour.RED, _Level.HIGH]),
    st.builds(ErrorInfo, st.text(min_size=1, max_size=5), st.text(max_size=5)),
    st.builds(_Row, st.datetimes(timezones=st.just(UTC)), st.tuples(st.text(max_size=3))),
)
cache_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=3),
        st.frozensets(st.integers(0, 9), max_size=3),
    ),
    max_leaves=8,
)


@given(cache_values)
def test_values_and_results_are_the_value_converter_s_bytes_or_refused_if_json_would_change_them(
    value: object,
) -> None:
    try:
        data = codec.value_converter.unstructure(value)
        expected = orjson.dumps(data)
        json.dumps(data, allow_nan=False, default=str)  # NaN and infinities: orjson's null
    except (TypeError, ValueError):  # bytes, NaN
        with pytest.raises(InvalidCacheValue):
            codec.encode_value(value)
        with pytest.raises(InvalidResult):
            codec.encode_result(value)
        return

    assert codec.encode_value(value) == expected
    assert codec.encode_result(value) == expected


def test_decode_values_decodes_a_batch_and_names_the_key_of_a_bad_one() -> None:
    good = codec.decode_values([b"1", b'{"a": [2]}'], ["x", "y"])

    assert good == [1, {"a": [2]}]
    with pytest.raises(UndecodableValue, match="'bad'"):
        codec.decode_values([b"1", b"{nope"], ["fine", "bad"])


workers = st.builds(
    WorkerInfo,
    id=st.text(max_size=8),
    host=st.text(max_size=8),
    pid=st.integers(0, 2**22),
    queues=st.lists(st.text(max_size=4), max_size=3).map(tuple),
    concurrency=st.integers(1, 64),
    started_at=st.datetimes(timezones=st.just(UTC)),
    seen_at=st.datetimes(timezones=st.just(UTC)),
    processed=st.integers(0, 3),
    failed=st.integers(0, 3),
    retried=st.integers(0, 3),
    dead=st.integers(0, 3),
    mean_runtime_ms=st.sampled_from([0.0, 0.5, 12.25]),
)


@given(workers)
def test_a_heartbeat_s_worker_info_encodes_as_the_converter_does(info: WorkerInfo) -> None:
    assert codec.encode_worker(info) == codec.encode(info)
    assert codec.decode(codec.encode_worker(info), WorkerInfo) == info


def test_a_heartbeat_builds_no_converter() -> None:
    fresh = Codec()
    moment = datetime(2026, 1, 2, tzinfo=UTC)
    fresh.encode_worker(WorkerInfo("w", "h", 1, ("q",), 2, moment, moment))

    assert "converter" not in vars(fresh)
