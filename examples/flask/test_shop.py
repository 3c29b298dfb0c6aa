"""The Flask shop end to end: Flask's test client, a real Redis, a real
``foundry work --burst`` (``REDIS_URL``, ``QUEUE_PREFIX`` and ``SHOP_DATABASE_URL`` set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shop import Customer, create_app, db_session, jobs
from sqlalchemy import select

HERE = Path(__file__).resolve().parent


def test_a_committed_signup_sends_one_job_and_a_rolled_back_one_sends_none() -> None:
    app = create_app()
    client = app.test_client()
    with app.app_context():
        queue = jobs.connection.queue
        before = queue.stats("mail").ready

        ok = client.post("/signup", data={"email": "ann@example.com"})
        refused = client.post("/signup", data={"email": "bob@example.com", "card": "declined"})

        assert (ok.status_code, refused.status_code) == (201, 402)
        assert queue.stats("mail").ready == before + 1
        assert db_session.scalars(select(Customer.email)).all() == ["ann@example.com"]
        worker = [sys.executable, "-m", "foundry.entrypoints.cli", "work", "--app", "shop:registry"]
        done = subprocess.run(
            [*worker, "--burst", "--concurrency", "1"],
            cwd=HERE,
            # The worker reads the environment, not app.config: give it the app's prefix.
            env={**os.environ, "QUEUE_PREFIX": jobs.connection.settings.queue_prefix},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        record = queue.get(ok.get_json()["job"])
        assert record is not None
        assert (record.state.value, record.result) == ("completed", "welcome, ann@example.com")
