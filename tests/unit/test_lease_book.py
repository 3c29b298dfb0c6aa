from datetime import UTC, datetime, timedelta

from foundry.application.pool.leases import LeaseBook
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
