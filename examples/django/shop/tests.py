"""The shop end to end: Django's test runner, a real Redis, a real ``foundry work --burst``."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from django.db import connection
from django.test import TransactionTestCase

import foundry
from foundry.contrib.django import connection as foundry_connection
from shop.jobs import registry, send_welcome
from shop.models import Customer

MANAGE = Path(__file__).resolve().parent.parent / "manage.py"


def work_burst() -> subprocess.CompletedProcess[str]:
    """``manage.py foundry_work --burst`` on the test database, run from another directory."""
    env = {**os.environ, "SHOP_DATABASE": str(connection.settings_dict["NAME"])}
    return subprocess.run(
        [sys.executable, str(MANAGE), "foundry_work", "--burst", "--concurrency", "1"],
        cwd=MANAGE.parent.parent,  # not the project's directory: manage.py finds it
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class SignupTests(TransactionTestCase):
    """Transactions really commit here (``TestCase`` would roll every test back)."""

    def test_a_committed_signup_sends_one_job_and_a_rolled_back_one_sends_none(self) -> None:
        queue = foundry_connection().queue
        before = queue.stats("mail").ready

        ok = self.client.post("/signup", {"email": "ann@example.com"})
        refused = self.client.post("/signup", {"email": "bob@example.com", "card": "declined"})

        self.assertEqual(ok.status_code, 201)
        self.assertEqual(refused.status_code, 402)
        self.assertEqual(queue.stats("mail").ready, before + 1)
        self.assertFalse(Customer.objects.filter(email="bob@example.com").exists())
        done = work_burst()
        self.assertEqual(done.returncode, 0, done.stderr)
        record = queue.get(ok.json()["job"])
        assert record is not None
        self.assertEqual(record.state.value, "completed")
        self.assertEqual(record.result, "welcome, ann@example.com")
        self.assertEqual(queue.stats("mail").ready, 0)


class AsyncViewTests(TransactionTestCase):
    def test_an_async_view_dispatches_with_the_async_dispatcher_request_after_request(
        self,
    ) -> None:
        queue = foundry_connection().queue
        customer = Customer.objects.create(email="cy@example.com")
        before = queue.stats("mail").ready

        # Each request of the sync test client runs the async view in an event loop of its own.
        replies = [self.client.post(f"/customers/{customer.pk}/welcome") for _ in range(2)]

        self.assertEqual([reply.status_code for reply in replies], [202, 202])
        self.assertEqual(queue.stats("mail").ready, before + 2)
        for reply in replies:
            self.assertIsNotNone(queue.get(reply.json()["job"]))


class LoggingTests(TransactionTestCase):
    def test_foundrys_records_reach_the_projects_logging_configuration(self) -> None:
        [recent] = [h for h in logging.getLogger("foundry").handlers if h.get_name() == "recent"]
        in_memory = foundry.connect(foundry.Settings(queue_driver="memory"))

        job_id = in_memory.dispatcher(registry).dispatch(
            send_welcome, {"customer_id": 1}, after_commit=False
        )

        messages = [record.getMessage() for record in recent.buffer]
        self.assertTrue(any(job_id in message and "in-memory" in message for message in messages))
