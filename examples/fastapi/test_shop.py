"""The FastAPI shop end to end: FastAPI's TestClient, a real Redis, a real
``foundry work --burst`` (``REDIS_URL``, ``QUEUE_PREFIX`` and ``SHOP_DATABASE_URL`` set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from shop import Customer, app
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import foundry

HERE = Path(__file__).resolve().parent


def test_a_committed_signup_sends_one_job_and_a_rolled_back_one_sends_none() -> None:
    with foundry.connect() as fx:
        before = fx.queue.stats("mail").ready

        with TestClient(app) as client:  # the lifespan opens and closes the producer
            ok = client.post("/signup", json={"email": "ann@example.com"})
            refused = client.post("/signup", json={"email": "bob@example.com", "card": "declined"})

        assert (ok.status_code, refused.status_code) == (201, 402)
        assert fx.queue.stats("mail").ready == before + 1
        with Session(create_engine(os.environ["SHOP_DATABASE_URL"])) as session:
            emails = session.scalars(select(Customer.email)).all()
        assert emails == ["ann@example.com"]
        worker = [sys.executable, "-m", "foundry.entrypoints.cli", "work", "--app", "shop:registry"]
        done = subprocess.run(
            [*worker, "--burst", "--concurrency", "1"],
            cwd=HERE,
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        record = fx.queue.get(ok.json()["job"])
        assert record is not None
        assert (record.state.value, record.result) == ("completed", "welcome, ann@example.com")
