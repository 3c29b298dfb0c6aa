"""Stored job blobs: the codec's fields without id and queue, or the short form; exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.adapters.codec import WIRE_VERSION, Codec
from foundry.adapters.redis.blobs import JobBlobs, base36
from foundry.domain import Job, Limit, Rate, UndecodableJob
from tests.strategies import handler_names, jobs, moments, payloads

codec = Codec()
blobs = JobBlobs(codec)


def _record(blob: bytes) -> bytes:
    return b"0 0 1 0 " + blob


def _reference(job: Job) -> bytes:
    """The blob as first specified: the codec's unstructured job minus id and queue."""
    fields = codec.converter.unstructure(job)
    del fields["id"]
    fields.pop("queue", None)
    name, created = fields.get("name"), fields.get("created_at")
    if not name.startswith("{") and "\x1f" not in name:
        if len(fields) == 1:
            return f"={name}".encode()
        if len(fields) == 2 and isinstance(created, int) and created >= 0:
            return f"={name}\x1f{base36(created)}".encode()
    return orjson.dumps({"v": WIRE_VERSION, **fields})


def test_plain_jobs_are_stored_and_read_without_building_the_converter() -> None:
    fresh_codec = Codec()
    fresh = JobBlobs(fresh_codec)
    job = Job("noop", created_at=datetime(2026, 1, 2, tzinfo=UTC))

    assert fresh.decode(job.id, job.queue, _record(fresh.encode(job))) == job
    assert "converter" not in vars(fresh_codec)


@given(jobs())
def test_a_blob_is_the_reference_form_and_decodes_to_the_same_job(job: Job) -> None:
    blob = blobs.encode(job)

    assert blob == _reference(job)
    assert blobs.decode(job.id, job.queue, _record(blob)) == job


@given(
    handler_names,
    st.none() | moments,
    st.sampled_from([{}, {"n": 1}]),
)
def test_a_plain_dispatch_s_blob_is_the_reference_form(
    name: str, created_at: datetime | None, payload: dict[str, Any]
) -> None:
    job = Job(name, payload, created_at=created_at)

    blob = blobs.encode(job)

    assert blob == _reference(job)
    assert blobs.decode(job.id, job.queue, _record(blob)) == job


def test_jobs_sharing_a_creation_time_and_then_not_each_get_their_own_stamp() -> None:
    first = Job("noop", created_at=datetime(2030, 1, 1, tzinfo=UTC))
    second = Job("noop", created_at=datetime(2031, 1, 1, tzinfo=UTC))

    encoded = [blobs.encode(job) for job in (first, first, second, first)]

    assert encoded == [_reference(job) for job in (first, first, second, first)]
    assert encoded[0] != encoded[2]


def test_jobs_created_a_microsecond_apart_across_a_digit_carry_get_their_own_stamps() -> None:
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=36**4 * 1000 - 2)
    made = [Job("noop", created_at=start + timedelta(microseconds=n)) for n in range(4)]
    early = [Job("noop", created_at=datetime(1970, 1, 1, tzinfo=UTC) + _ms(n)) for n in (0, 9)]

    encoded = [blobs.encode(job) for job in [*made, *early, made[0]]]

    assert encoded == [_reference(job) for job in [*made, *early, made[0]]]


@given(st.integers(min_value=0, max_value=2**70))
def test_base36_is_python_s_own_reading_back(number: int) -> None:
    text = base36(number)

    assert int(text, 36) == number
    assert text == "0" or not text.startswith("0")


def _ms(count: int) -> timedelta:
    return timedelta(milliseconds=count)


_limits = (
    st.none()
    | st.builds(Limit, st.text(min_size=1, max_size=20), concurrency=st.integers(1, 100))
    | st.builds(
        Limit,
        st.text(min_size=1, max_size=20),
        concurrency=st.none() | st.integers(1, 100),
        rate=st.builds(Rate, st.integers(1, 100), st.integers(1, 10**6).map(_ms)),
    )
)


@given(
    name=handler_names,
    payload=payloads,
    created=st.none() | moments,
    limit=_limits,
)
def test_a_dispatched_job_decodes_to_what_the_converter_makes_of_its_blob(
    name: str, payload: dict[str, Any], created: datetime | None, limit: Limit | None
) -> None:
    job = Job(name, payload, queue="q", created_at=created, limit=limit)
    blob = blobs.encode(job)

    assert blobs.decode(job.id, job.queue, _record(blob)) == job
    if blob.startswith(b"{"):
        fields = {"id": job.id, "queue": job.queue, **orjson.loads(blob)}
        assert codec.job_from_fields(fields, job.id) == job


@pytest.mark.parametrize(
    ("blob", "named"),
    [
        (b'{"v":1,"name":"n","limit":{"key":"","concurrency":5}}', "'limit_key'"),
        (b'{"v":1,"name":"n","limit":{"key":"k","concurrency":0}}', "'concurrency'"),
        (b'{"v":1,"name":"n","limit":{"key":"k","concurrency":"5"}}', "'concurrency'"),
        (b'{"v":1,"name":"n","payload":[1]}', "payload"),
        (b'{"v":1,"name":"n","created_at":"x"}', "created_at"),
        (b'{"v":1,"limit":{"key":"k","concurrency":5}}', "name"),
        (b'{"v":2,"name":"n"}', "version 2"),
    ],
)
def test_a_bad_plain_blob_is_refused_naming_its_field(blob: bytes, named: str) -> None:
    with pytest.raises(UndecodableJob, match=named):
        blobs.decode("abc", "q", _record(blob))
