"""What the domain's errors say."""

from foundry.domain import StaleLease


def test_a_stale_lease_names_every_way_a_lease_goes_stale_and_claims_none_of_them() -> None:
    message = str(StaleLease("j1", "tok.1.3"))

    assert message.startswith("lease 'tok.1.3' on job 'j1' is stale: it lapsed")
    assert "ended, was cancelled, deleted or lost" in message
    assert "was returned to the queue" not in message  # untrue for a lost or ended job
