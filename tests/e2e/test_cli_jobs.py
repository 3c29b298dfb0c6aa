"""``foundry job show|cancel`` through the CLI, on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from foundry.adapters.clock import ManualClock
from foundry.domain import Job, JobState, Limit, Rate
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue
from tests.cli_support import container_for, invoke


def test_job_show_prints_a_completed_jobs_payload_and_result(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(Job("shop.total", {"cart": 7}, id="j1"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease, {"total": 42})

    result = invoke(container_for(queue, clock), "job", "show", "j1")

    assert result.exit_code == 0, result.output
    assert "state=completed" in result.stdout
    assert 'payload: {"cart":7}' in result.stdout
    assert 'result: {"total":42}' in result.stdout


def test_job_show_as_json_gives_the_record_in_the_api_s_shape(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(Job("shop.total", {"cart": 7}, id="j1"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease, {"total": 42})

    result = invoke(container_for(queue, clock), "job", "show", "j1", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["state"], shown["attempts"], shown["result"]) == ("completed", 1, {"total": 42})
    assert (shown["job"]["id"], shown["job"]["payload"]) == ("j1", {"cart": 7})
    assert datetime.fromisoformat(shown["finished_at"]) == clock.now()


def test_job_cancel_cancels_a_pending_job_and_show_says_so(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(Job("shop.total", id="j1", queue="mail"))
    box = container_for(queue, clock)

    cancelled = invoke(box, "job", "cancel", "j1", "--reason", "customer left")
    shown = invoke(box, "job", "show", "j1", "--queue", "mail")

    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == "job j1 is cancelled"
    assert "state=cancelled" in shown.stdout
    assert "reason: customer left" in shown.stdout
    record = queue.get("j1")
    assert record is not None
    assert record.state is JobState.CANCELLED


def test_job_cancel_of_a_running_job_asks_its_worker_and_of_an_unknown_one_exits_1(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(Job("shop.total", id="j1"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    box = container_for(queue, clock)

    running = invoke(box, "job", "cancel", "j1")
    unknown = invoke(box, "job", "show", "nope")

    assert running.exit_code == 0, running.output
    assert running.stdout.strip() == "job j1 is running; its worker was asked to stop it"
    [renewed] = queue.renew([lease], LEASE)
    assert renewed is not None
    assert renewed.stop == "cancelled by an operator"
    assert unknown.exit_code == 1
    assert "no job 'nope' in any queue" in unknown.stderr


def test_job_show_says_when_a_delayed_job_runs_and_what_a_limited_one_waits_for(
    queue: Queue, clock: ManualClock
) -> None:
    rate = Rate(1, timedelta(hours=1))
    queue.enqueue_many([Job("sync", id=f"j{n}", limit=Limit("api", rate=rate)) for n in range(3)])
    queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3))  # j1 holds the turn, j2 waits
    box = container_for(queue, clock)

    holder = invoke(box, "job", "show", "j1")
    in_line = invoke(box, "job", "show", "j2")

    runs = (clock.now() + timedelta(hours=1)).astimezone(UTC)
    assert f"runs at {runs:%Y-%m-%d %H:%M:%S} UTC" in holder.stdout
    assert "limit: key 'api', 1 per 3600 s" in holder.stdout
    assert "runs when its limit key frees a slot or hands it its rate turn" in in_line.stdout
