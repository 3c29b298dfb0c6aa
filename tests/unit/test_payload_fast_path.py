"""The payload check's fast path and the batch id source agree with the slow, exact ones."""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.domain import MAX_PAYLOAD_BYTES, InvalidJob, Job
from foundry.domain.job import (
    _bound,
    _check_payload,
    _check_payload_exactly,
    new_job_ids,
    payload_size,
)
from tests.strategies import payloads


class Text(str):
    """A str subclass: valid JSON, but not what the fast path takes on trust."""


anything = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["\ud800", "x\udfff", Text("sub"), (1, 2), {3}, b"bytes", 1j])
)
values: st.SearchStrategy[Any] = st.recursive(
    anything,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.integers() | st.none(), inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=2).map(OrderedDict)
    ),
    max_leaves=8,
)


def _verdict(check: Callable[[object], str | None], value: object) -> str | None:
    try:
        return check(value)
    except InvalidJob as error:
        return str(error)


@given(st.dictionaries(st.text(max_size=6) | st.integers(), values, max_size=4) | values)
def test_the_fast_path_accepts_and_refuses_exactly_what_the_exact_check_does(value: Any) -> None:
    assert _verdict(_check_payload, value) == _verdict(_check_payload_exactly, value)


@given(payloads)
def test_the_fast_path_s_size_is_an_upper_bound_of_the_real_size(payload: dict[str, Any]) -> None:
    assert _bound(payload) >= payload_size(payload)


@pytest.mark.parametrize(
    "text", ["\x00\x01\x1f", '"\\', "\u00e9\u4e2d\U0001f600", "x" * 1000, "\u2028"]
)
def test_the_string_bound_covers_escapes_and_multibyte_characters(text: str) -> None:
    payload = {text: [text, {"k": text}]}

    assert _bound(payload) >= len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"blob": "x" * MAX_PAYLOAD_BYTES}, "bytes as JSON"),
        ({"blob": "x" * (MAX_PAYLOAD_BYTES // 6)}, None),  # bound over, size under: exact says ok
        ({"nested": [[[{"bad": (1,)}]]]}, "payload.nested[0][0][0].bad is a tuple"),
        ({"deep": [{"n": float("nan")}]}, "payload.deep[0].n is nan"),
        ({"key": {1: "x"}}, "payload.key has a non-string key 1"),
    ],
)
def test_payloads_the_fast_path_passes_on_get_the_exact_message(
    payload: dict[str, Any], problem: str | None
) -> None:
    if problem is None:
        assert Job("n", payload=payload).payload == payload
        return

    with pytest.raises(InvalidJob) as refused:
        Job("n", payload=payload)

    assert refused.value.field == "payload"
    assert problem in str(refused.value)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 1000])
def test_batch_ids_are_22_url_safe_characters_all_different(count: int) -> None:
    ids = new_job_ids(count)

    assert len(ids) == count
    assert len(set(ids)) == count
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", job_id) for job_id in ids)
    assert all(Job("n", id=job_id).id == job_id for job_id in ids)
