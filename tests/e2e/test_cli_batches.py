"""``foundry batch show|list|cancel`` through the CLI, on every backend that keeps batches."""

from __future__ import annotations

import json

from foundry.adapters.clock import ManualClock
from foundry.domain import Batch, Callback, Job, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE, BatchQueue
from tests.cli_support import container_for, invoke


def _batch() -> Batch:
    return Batch(
        [Job("resize", id="a"), Job("resize", id="b")],
        {Callback.THEN: Job("publish", id="t")},
        id="b1",
    )


def test_batch_show_and_list_print_the_progress(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    batch_queue.enqueue_batches([_batch()])
    [lease] = batch_queue.claim(ClaimRequest(["default"], lease=LEASE))
    batch_queue.complete(lease)
    box = container_for(batch_queue, clock)

    shown = invoke(box, "batch", "show", "b1")
    listed = invoke(box, "batch", "list", "--queue", "default")

    assert shown.exit_code == 0, shown.output
    assert "queue=default  state=running" in shown.stdout
    assert "members: 2  pending: 1  completed: 1  failed: 0  cancelled: 0" in shown.stdout
    assert "then: job t (not yet)" in shown.stdout
    assert listed.exit_code == 0, listed.output
    assert "b1" in listed.stdout
    assert "running" in listed.stdout


def test_batch_cancel_cancels_the_pending_jobs_and_an_unknown_batch_exits_1(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    batch_queue.enqueue_batches([_batch()])
    box = container_for(batch_queue, clock)

    cancelled = invoke(box, "batch", "cancel", "b1", "--reason", "wrong album")
    again = invoke(box, "batch", "cancel", "b1")
    unknown = invoke(box, "batch", "show", "nope")

    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == "batch b1 is cancelled: 2 job(s) cancelled, 0 still running"
    assert [batch_queue.get(name).state for name in "ab"] == [JobState.CANCELLED] * 2  # type: ignore[union-attr]
    assert again.exit_code == 1
    assert "already ended (cancelled)" in again.output
    assert unknown.exit_code == 1
    assert "no batch 'nope'" in unknown.output


def test_batch_show_and_list_print_json_as_the_dashboard_api_gives_it_and_list_pages(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    batch_queue.enqueue_batches([_batch()])
    clock.advance(LEASE)
    batch_queue.enqueue_batches([Batch([Job("resize", id="c")], id="b2")])
    box = container_for(batch_queue, clock)

    shown = invoke(box, "batch", "show", "b1", "--json")
    listed = invoke(box, "batch", "list", "--json")
    older = invoke(box, "batch", "list", "--offset", "1", "--limit", "1")

    assert shown.exit_code == 0, shown.output
    one = json.loads(shown.stdout)
    assert (one["id"], one["state"], one["total"], one["pending"]) == ("b1", "running", 2, 2)
    assert one["callbacks"] == {"then": "t"}
    assert listed.exit_code == 0, listed.output
    assert [batch["id"] for batch in json.loads(listed.stdout)["batches"]] == ["b2", "b1"]
    assert older.exit_code == 0, older.output
    assert "b1" in older.stdout
    assert "b2" not in older.stdout


def test_batch_show_says_a_callback_of_an_ended_batch_will_never_run(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    batch_queue.enqueue_batches([_batch()])
    batch_queue.cancel_batch("b1")
    box = container_for(batch_queue, clock)

    shown = invoke(box, "batch", "show", "b1")

    assert shown.exit_code == 0, shown.output
    assert "state=cancelled" in shown.stdout
    assert "then: job t (never: the batch ended without it)" in shown.stdout


def test_batch_list_without_a_queue_lists_the_batches_of_every_queue(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    batch_queue.enqueue_batches([Batch([Job("resize", id="a", queue="media")], id="m1")])
    batch_queue.enqueue_batches([_batch()])
    box = container_for(batch_queue, clock)

    listed = invoke(box, "batch", "list")
    media = invoke(box, "batch", "list", "--queue", "media")

    assert listed.exit_code == 0, listed.output
    assert "m1" in listed.stdout
    assert "b1" in listed.stdout
    assert media.exit_code == 0, media.output
    assert "m1" in media.stdout
    assert "b1" not in media.stdout
