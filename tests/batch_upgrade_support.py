"""A batch as the previous release stored it, run to its end on the current code: its members
end, its callbacks fire once and run, and every view of it (``batch_record``, ``foundry batch
show|list``, the dashboard) answers. The backend tests make the old shape; this checks the rest.
"""

from __future__ import annotations

from typing import cast

from starlette.testclient import TestClient

from foundry.adapters.clock import ManualClock
from foundry.application.registry import JobRegistry
from foundry.domain import Batch, Callback, Job, JobState
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.ports import ClaimRequest
from tests.backends import LEASE, BatchQueue
from tests.cli_support import container_for, invoke

registry = JobRegistry()


@registry.job(name="part", queue="album")
def part(n: int) -> int:
    return n


@registry.job(name="assemble", queue="album")
def assemble() -> str:
    return "assembled"


def old_batch() -> Batch:
    """Batch ``old`` of three members (``m0``..``m2``), its ``then`` and ``finally`` callbacks
    ``old.then`` and ``old.finally``."""
    members = [Job("part", id=f"m{n}", queue="album", payload={"n": n}) for n in range(3)]
    callbacks = {
        Callback.THEN: Job("assemble", id="old.then", queue="album"),
        Callback.FINALLY: Job("assemble", id="old.finally", queue="album"),
    }
    return Batch(members, callbacks, id="old")


def run_to_its_end(queue: BatchQueue) -> list[str]:
    """Run every claimable job of ``album`` (members return their ``n``, callbacks a text),
    in claim order; the ids run."""
    ran: list[str] = []
    while leases := queue.claim(ClaimRequest(["album"], lease=LEASE, limit=1)):
        [lease] = leases
        ran.append(lease.job_id)
        queue.complete(lease, lease.job.payload.get("n", "assembled"))
    return ran


def check_it_ended_and_every_view_answers(queue: BatchQueue, clock: ManualClock) -> None:
    """The old batch ran: members, then its callbacks once each; its record, the CLI and the
    dashboard show it succeeded with both callbacks enqueued."""
    assert run_to_its_end(queue) == ["m0", "m1", "m2", "old.then", "old.finally"]
    record = queue.batch("old", "album")
    assert record is not None
    assert (record.state, record.fired) == ("succeeded", {Callback.THEN, Callback.FINALLY})
    then = queue.get("old.then", "album")
    assert then is not None
    assert (then.state, then.result) == (JobState.COMPLETED, "assembled")

    container = container_for(queue, clock)
    shown = invoke(container, "batch", "show", "old")
    listed = invoke(container, "batch", "list", "--queue", "album", "--json")
    assert shown.exit_code == 0, shown.output
    assert "state=succeeded" in shown.output
    assert "then: job old.then (enqueued)" in shown.output
    assert listed.exit_code == 0, listed.output
    assert '"id": "old"' in listed.output

    config = DashboardConfig(GuardConfig(token=None), background=False)
    app = create_app(queue, queue, queue, clock, config, batches=cast(BatchQueue, queue))
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        one = client.get("/api/batches/old")
        page = client.get("/batches?queue=album")
    assert one.status_code == 200, one.text
    assert (one.json()["state"], one.json()["fired"]) == ("succeeded", ["finally", "then"])
    assert page.status_code == 200
    assert 'id="batch-old"' in page.text


def check_a_cancel_ends_it(queue: BatchQueue, clock: ManualClock) -> None:
    """``foundry batch cancel`` of the old batch, one member done: the others are cancelled,
    ``finally`` alone fires, once, and runs."""
    [lease] = queue.claim(ClaimRequest(["album"], lease=LEASE, limit=1))
    queue.complete(lease, 0)

    cancelled = invoke(container_for(queue, clock), "batch", "cancel", "old")

    assert cancelled.exit_code == 0, cancelled.output
    assert "batch old is cancelled: 2 job(s) cancelled, 0 still running" in cancelled.output
    assert run_to_its_end(queue) == ["old.finally"]
    record = queue.batch("old", "album")
    assert record is not None
    assert (record.state, record.fired) == ("cancelled", {Callback.FINALLY})
