"""The limits state machine against ``PostgresQueue`` on the session's throwaway database."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from foundry.adapters.clock import ManualClock
from tests.backends import FixtureLookup, Queue, postgres_queue
from tests.model.test_limits_model import LimitsMachine


@pytest.mark.postgres
def test_postgres_limits_match_the_model(request: pytest.FixtureRequest) -> None:
    fixture: FixtureLookup = request.getfixturevalue

    class PostgresLimitsMachine(LimitsMachine):
        """The limits model against ``PostgresQueue``, a fresh schema per example."""

        def make_queue(self, clock: ManualClock) -> Queue:
            return postgres_queue(fixture, clock)

        def teardown(self) -> None:
            self.queue.close()  # type: ignore[attr-defined]

    run_state_machine_as_test(
        PostgresLimitsMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
