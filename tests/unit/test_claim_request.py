"""``ClaimRequest``: a claim's arguments, checked once when it is made."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.domain import InvalidJob, InvalidQueueName
from foundry.ports import ClaimRequest

LEASE = timedelta(seconds=30)


def test_queues_become_a_tuple_in_the_order_given() -> None:
    request = ClaimRequest(["high", "default"], lease=LEASE)

    assert request.queues == ("high", "default")
    assert (request.limit, request.wait, request.claim_token, request.worker) == (
        1,
        timedelta(0),
        None,
        "",
    )


def test_a_bare_string_of_queues_is_a_type_error_naming_the_fix() -> None:
    with pytest.raises(TypeError, match="list of queue names"):
        ClaimRequest("default", lease=LEASE)  # type: ignore[arg-type]


def test_a_claim_needs_at_least_one_queue() -> None:
    with pytest.raises(ValueError, match="at least one queue"):
        ClaimRequest([], lease=LEASE)


def test_a_bad_queue_name_is_refused_naming_the_rule() -> None:
    with pytest.raises(InvalidQueueName, match="no braces"):
        ClaimRequest(["a{b}"], lease=LEASE)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lease": timedelta(0)}, "lease must be a positive duration"),
        ({"lease": "30"}, r"lease must be a positive duration \(seconds or a timedelta\)"),
        ({"lease": LEASE, "limit": 0}, "limit must be at least 1"),
        ({"lease": LEASE, "wait": -timedelta(seconds=1)}, "wait must be a duration of 0 or more"),
    ],
)
def test_lease_limit_and_wait_are_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClaimRequest(["default"], **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", ["", "has space", "x" * 65, "dot.ted"])
def test_a_claim_token_outside_the_alphabet_is_invalid(token: str) -> None:
    with pytest.raises(InvalidJob, match="claim_token"):
        ClaimRequest(["default"], lease=LEASE, claim_token=token)


def test_lease_and_wait_take_seconds_as_every_duration_foundry_takes() -> None:
    request = ClaimRequest(["default"], lease=30, wait=0.5)

    assert (request.lease, request.wait) == (timedelta(seconds=30), timedelta(milliseconds=500))
