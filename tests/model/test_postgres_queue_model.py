"""The queue state machine against ``PostgresQueue`` on the session's throwaway database."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from foundry.adapters.clock import ManualClock
from tests.backends import FixtureLookup, Queue, postgres_queue
from tests.model.test_queue_model import QueueMachine


@pytest.mark.postgres
def test_postgres_queue_matches_the_model(request: pytest.FixtureRequest) -> None:
    fixture: FixtureLookup = request.getfixturevalue

    class PostgresQueueMachine(QueueMachine):
        """The model against ``PostgresQueue``, a fresh schema per example."""

        def make_queue(self, clock: ManualClock) -> Queue:
            return postgres_queue(fixture, clock)

        def teardown(self) -> None:
            assert self.queue is not None
            self.queue.close()  # type: ignore[attr-defined]

    run_state_machine_as_test(
        PostgresQueueMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
