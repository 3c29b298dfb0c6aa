"""``foundry work --burst`` on PostgreSQL, as a separate process, drains dispatched jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backends import FixtureLookup, postgres_queue
from tests.e2e.burst_drain import drains_exactly_once

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize("prefetch", ["0", "8"])
def test_work_burst_drains_dispatched_jobs_exactly_once(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path, prefetch: str
) -> None:
    fixture: FixtureLookup = request.getfixturevalue
    queue = postgres_queue(fixture, None)
    env = {
        "QUEUE_DRIVER": "postgres",
        "DATABASE_URL": postgres_url,
        "DATABASE_SCHEMA": queue.schema,
    }

    drains_exactly_once(queue, env, tmp_path, prefetch)
