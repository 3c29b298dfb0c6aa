"""A claim whose reply is lost is re-sent with its token: the job is not leased twice (Q8)."""

import os
from datetime import timedelta
from typing import Any

from foundry.application.pool.claims import ClaimTokens
from foundry.application.pool.config import PoolConfig
from foundry.domain import QueueUnavailable
from foundry.ports import ClaimRequest, Lease
from tests.pool_support import FlakyQueue, Harness

FAST = timedelta(milliseconds=1)


class LostReplyQueue(FlakyQueue):
    """Applies each claim, but loses the reply of the next ``lose`` of them."""

    lose = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens: list[str | None] = []

    def claim(self, request: ClaimRequest) -> list[Lease]:
        self.tokens.append(request.claim_token)
        leases = super().claim(request)
        if self.lose:
            self.lose -= 1
            raise QueueUnavailable("the claim was applied but its reply was lost (test)")
        return leases


def test_a_claim_whose_reply_was_lost_gets_its_lease_back_with_the_attempt_unspent() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST), queue=LostReplyQueue)
    queue = pool.queue
    assert isinstance(queue, LostReplyQueue)
    (job_id,) = pool.enqueue(1)
    queue.lose = 1

    pool.start()
    nothing_sent = list(pool.workforce.tasks)
    pool.advance(0.01)

    assert nothing_sent == []
    assert pool.running(0) == job_id
    assert queue.tokens[0] is not None
    assert queue.tokens[1] == queue.tokens[0]
    record = queue.get(job_id)
    assert record is not None
    assert record.attempts == 1


def test_a_claim_after_an_answered_one_sends_a_new_token() -> None:
    tokens = ClaimTokens(lease_s=30)

    first, _ = tokens.next(0.0)
    tokens.answered()
    second, _ = tokens.next(1.0)

    assert first != second


def test_an_unanswered_token_is_resent_with_its_first_send_time_until_the_lease_passes() -> None:
    tokens = ClaimTokens(lease_s=30)
    token, sent_at = tokens.next(5.0)
    tokens.unanswered(token, sent_at)

    again = tokens.next(20.0)
    too_late = tokens.next(35.0)

    assert again == (token, 5.0)
    assert too_late[0] != token
    assert too_late[1] == 35.0


def test_new_tokens_differ_between_pools_and_after_a_fork() -> None:
    one, other = ClaimTokens(lease_s=30), ClaimTokens(lease_s=30)
    first = one.next(0.0)[0]
    reader, writer = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: its copy of ``one`` numbers its claims under a prefix of its own
        os.write(writer, one.next(0.0)[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    forked = os.read(reader, 100).decode()
    os.close(reader)
    os.close(writer)
    made = [first] + [one.next(float(n))[0] for n in range(3)] + [other.next(0.0)[0], forked]

    assert len(set(made)) == len(made)
    assert all(
        ClaimRequest(("q",), lease=timedelta(seconds=30), claim_token=token) for token in made
    )
