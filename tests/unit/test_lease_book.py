from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from foundry.application.pool.leases import LeaseBook, marked
from foundry.domain import Job
from foundry.ports import Lease

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def lease(job_id: str, token: str = "t") -> Lease:
    return Lease(Job("task", id=job_id), token, 1, T0 + timedelta(seconds=30))


def test_an_empty_book_never_renews_and_never_wakes() -> None:
    book = LeaseBook(30.0)

    assert not book.renew_due(1000.0)
    assert book.next_wake() == float("inf")


def test_held_leases_are_renewed_every_third_of_the_lease() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a"), lease("b")], sent_at=100.0)

    due_early = book.renew_due(109.9)
    due_on_time = book.renew_due(110.0)
    batch = book.to_renew()

    assert (due_early, due_on_time) == (False, True)
    assert [held.job_id for held in batch] == ["a", "b"]


def test_a_successful_renew_moves_the_next_renew_and_the_local_deadline() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=100.0)
    sent = book.to_renew()

    lost = book.renewed(sent, [lease("a")], sent_at=110.0)

    assert lost == []
    assert not book.renew_due(119.9)
    assert book.fenced(134.9) == []
    assert [held.job_id for held in book.fenced(135.0)] == ["a"]


def test_a_lease_the_server_no_longer_holds_is_reported_lost() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a"), lease("b")], sent_at=0.0)
    sent = book.to_renew()

    lost = book.renewed(sent, [None, lease("b")], sent_at=10.0)

    assert [held.job_id for held in lost] == ["a"]


def test_leases_are_fenced_a_sixth_of_the_lease_before_their_local_deadline() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=100.0)

    assert book.fenced(124.9) == []
    assert [held.job_id for held in book.fenced(125.0)] == ["a"]


def test_after_a_failed_renew_the_next_try_comes_soon() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=0.0)

    book.renew_failed(10.0)

    assert book.renew_due(10.5)
    assert book.next_wake() == 10.5


def test_a_dropped_lease_is_neither_renewed_nor_fenced() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=0.0)

    book.drop("a")

    assert book.to_renew() == []
    assert book.fenced(1000.0) == []


def test_a_renew_answer_for_a_lease_dropped_while_it_was_in_flight_changes_nothing() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=0.0)
    sent = book.to_renew()
    book.drop("a")

    lost = book.renewed(sent, [None], sent_at=10.0)

    assert lost == []
    assert "a" not in book
    assert book.fenced(1000.0) == []


def test_a_renew_answer_for_the_previous_lease_of_a_job_held_again_leaves_the_new_one() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a", token="old")], sent_at=0.0)
    sent = book.to_renew()
    book.drop("a")
    book.hold([lease("a", token="new")], sent_at=5.0)

    lost = book.renewed(sent, [None], sent_at=10.0)
    book.renewed(sent, [lease("a", token="old")], sent_at=20.0)

    assert lost == []
    assert book.latest(lease("a", token="new")).token == "new"
    assert book.fenced(29.9) == []  # still the new lease's deadline (5 + 30 - 5), not 20's
    assert [held.token for held in book.fenced(30.0)] == ["new"]


def test_the_book_says_which_jobs_it_holds_and_their_latest_lease() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=0.0)
    renewed = Lease(Job("task", id="a"), "t", 1, T0 + timedelta(seconds=60))

    book.renewed(book.to_renew(), [renewed], sent_at=10.0)

    assert ("a" in book, "b" in book, len(book)) == (True, False, 1)
    assert book.latest(lease("a")) == renewed
    book.drop("a")
    assert ("a" in book, len(book)) == (False, 0)


def test_an_earlier_lease_of_a_job_held_again_neither_reads_nor_lets_go_the_later() -> None:
    book = LeaseBook(30.0)
    old, new = lease("a", token="old"), lease("a", token="new")
    book.hold([new], sent_at=0.0)

    book.let_go(old)

    assert book.latest(old) is old  # never the later lease of its job
    assert book.holds(new)
    book.let_go(new)
    assert "a" not in book


def test_the_next_wake_is_the_earliest_of_the_renew_and_every_leases_fence_time() -> None:
    book = LeaseBook(30.0, margin_s=22.0)  # fence times 30 - 22 = 8 and 34 - 22 = 12
    book.hold([lease("a")], sent_at=0.0)  # renew due at 10
    book.hold([lease("b")], sent_at=4.0)

    assert book.next_wake() == 8.0
    book.drop("a")
    assert book.next_wake() == 10.0


def test_a_childs_own_deadline_is_half_the_margin_after_the_parent_would_fence_it() -> None:
    book = LeaseBook(30.0)  # margin 5: the parent fences at 25, the child kills itself at 27.5
    book.hold([lease("a")], sent_at=0.0)

    assert book.child_deadline("a") == 27.5


def test_a_dropped_lease_in_a_renew_answer_does_not_stop_the_others_from_being_renewed() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a"), lease("b")], sent_at=0.0)
    sent = book.to_renew()
    book.drop("a")

    book.renewed(sent, [lease("a"), lease("b")], sent_at=10.0)

    assert book.fenced(34.9) == []  # b's local deadline moved to 10 + 30
    assert [held.job_id for held in book.fenced(35.0)] == ["b"]


def test_a_renew_answer_of_another_length_than_the_request_is_refused() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a"), lease("b")], sent_at=0.0)

    with pytest.raises(ValueError, match="zip"):
        book.renewed(book.to_renew(), [lease("a")], sent_at=10.0)


def test_dropping_a_job_the_book_does_not_hold_changes_nothing() -> None:
    book = LeaseBook(30.0)
    book.hold([lease("a")], sent_at=0.0)

    book.drop("never-held")

    assert len(book) == 1


_steps = st.lists(
    st.tuples(
        st.sampled_from(["hold", "renew", "drop", "fence"]),
        st.sampled_from("abcd"),
        st.integers(min_value=0, max_value=60).map(float),  # a few lease lengths: they meet
    ),
    max_size=30,
)


@given(_steps)
@example([("hold", "a", 40.0), ("renew", "a", 10.0), ("fence", "a", 35.0)])  # an earlier send
def test_fencing_names_exactly_the_leases_within_the_margin_of_their_deadline(
    steps: list[tuple[str, str, float]],
) -> None:
    # The book skips the scan while no deadline can be that close; it must never skip one.
    book = LeaseBook(30.0)
    deadlines: dict[str, float] = {}

    for action, job_id, at in steps:
        if action == "hold":
            book.hold([lease(job_id)], sent_at=at)
            deadlines[job_id] = at + 30.0
        elif action == "renew":
            sent = book.to_renew()
            book.renewed(sent, sent, sent_at=at)
            deadlines = dict.fromkeys(deadlines, at + 30.0)
        elif action == "drop":
            book.drop(job_id)
            deadlines.pop(job_id, None)
        else:
            fenced = {held.job_id for held in book.fenced(at)}
            assert fenced == {job for job, deadline in deadlines.items() if deadline - 5.0 <= at}


@pytest.mark.parametrize("ahead", [True, False])
def test_marking_a_lease_keeps_every_other_field(ahead: bool) -> None:
    full = Lease(
        Job("task", id="j1"),
        "token",
        3,
        T0,
        fence=7,
        stop="asked",
        progress=None,
        ahead=not ahead,
        lapses=2,
    )

    assert marked(full, ahead=ahead) == attrs.evolve(full, ahead=ahead)
    assert len(attrs.fields(Lease)) == 9  # a new field must be copied by marked() too
