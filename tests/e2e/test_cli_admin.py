"""The admin commands (enqueue, stats, failed, queue) through the CLI, on every backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import attrs
import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, Job, JobState, Progress, RunAfter
from foundry.entrypoints.container import Container
from foundry.ports import ClaimRequest, WorkerInfo
from tests.backends import LEASE, Queue
from tests.cli_support import container_for, invoke


@pytest.fixture
def box(queue: Queue, clock: ManualClock) -> Container:
    return container_for(queue, clock)


def bury(queue: Queue, name: str = "task", queue_name: str = "default") -> str:
    """Enqueue a job and fail it for good; returns its id."""
    job = Job(name, {"n": 1}, queue=queue_name)
    queue.enqueue(job)
    [lease] = queue.claim(ClaimRequest([queue_name], lease=LEASE))
    error = ErrorInfo(type="ValueError", message="bad input", traceback="Traceback: boom")
    queue.fail(lease, error, Dead("permanent error ValueError: bad input"))
    return job.id


def test_enqueue_prints_the_id_of_a_stored_job(box: Container, queue: Queue) -> None:
    result = invoke(box, "enqueue", "shop.send_mail", "--payload", '{"to": "a@b.c"}')

    assert result.exit_code == 0, result.output
    record = queue.get(result.stdout.strip(), "default")
    assert record is not None
    assert (record.job.name, record.job.payload) == ("shop.send_mail", {"to": "a@b.c"})
    assert record.state is JobState.READY


def test_enqueue_with_a_delay_priority_and_queue(box: Container, queue: Queue) -> None:
    args = ("--queue", "mail", "--delay", "5", "--priority", "7", "--id", "job-1")

    result = invoke(box, "enqueue", "shop.send_mail", *args)

    assert result.exit_code == 0, result.output
    record = queue.get("job-1", "mail")
    assert record is not None
    assert (record.state, record.job.priority) == (JobState.DELAYED, 7)


@pytest.mark.parametrize("delay", ["nan", "inf", "1e300", str(200 * 365 * 86_400)])
def test_enqueue_refuses_a_delay_no_store_can_hold_naming_the_limit(
    box: Container, queue: Queue, delay: str
) -> None:
    result = invoke(box, "enqueue", "shop.send_mail", "--delay", delay)

    assert result.exit_code == 2, result.output
    assert "--delay" in result.stderr
    assert "Traceback" not in result.output
    assert queue.stats("default").pending == 0


def test_enqueue_refuses_a_payload_nested_too_deep_naming_the_limit(
    box: Container, queue: Queue
) -> None:
    payload = '{"a": ' * 100 + "1" + "}" * 100

    result = invoke(box, "enqueue", "shop.send_mail", "--payload", payload)

    assert result.exit_code == 2, result.output
    assert "nested deeper than 64 levels" in result.stderr
    assert queue.stats("default").pending == 0


@pytest.mark.parametrize("payload", ["[1, 2]", "null"])
def test_enqueue_refuses_a_payload_that_is_not_a_json_object(box: Container, payload: str) -> None:
    result = invoke(box, "enqueue", "x", "--payload", payload)

    assert result.exit_code == 2
    assert "--payload" in result.stderr
    assert "JSON object" in result.stderr


def test_enqueue_refuses_a_bad_queue_name_with_exit_code_2(box: Container) -> None:
    result = invoke(box, "enqueue", "x", "--queue", "{bad}")

    assert result.exit_code == 2
    assert "queue" in result.stderr


def test_stats_shows_each_queue_and_says_when_no_worker_runs(box: Container, queue: Queue) -> None:
    queue.enqueue(Job("a", queue="mail"))
    queue.enqueue(Job("b", queue="mail", schedule=RunAfter(timedelta(minutes=1))))
    bury(queue)

    result = invoke(box, "stats")

    assert result.exit_code == 0, result.output
    assert "mail" in result.stdout
    assert "default" in result.stdout
    assert "no live workers" in result.stdout


def test_stats_shows_the_progress_of_running_jobs(box: Container, queue: Queue) -> None:
    queue.enqueue_many([Job("resize", id="j1", queue="media"), Job("quiet", id="j2")])
    [lease] = queue.claim(ClaimRequest(["media"], lease=timedelta(seconds=30), worker="w1"))
    queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
    queue.renew(
        [attrs.evolve(lease, progress=Progress(0.4, "page 4 of 10"))], timedelta(seconds=30)
    )

    result = invoke(box, "stats")

    assert result.exit_code == 0, result.output
    assert "Running, with progress" in result.stdout
    assert "page 4 of 10" in result.stdout
    assert "j2" not in result.stdout


def test_failed_list_shows_the_reason_and_show_the_history(box: Container, queue: Queue) -> None:
    job_id = bury(queue)

    listed = invoke(box, "failed", "list")
    shown = invoke(box, "failed", "show", "--", job_id)

    assert listed.exit_code == 0, listed.output
    assert job_id in listed.stdout
    assert "permanent error ValueError" in listed.stdout
    assert shown.exit_code == 0, shown.output
    assert "Traceback: boom" in shown.stdout
    assert '{"n":1}' in shown.stdout


def test_failed_list_and_show_print_json_as_the_dashboard_api_gives_it(
    box: Container, queue: Queue
) -> None:
    job_id = bury(queue)

    listed = invoke(box, "failed", "list", "--json")
    shown = invoke(box, "failed", "show", "--json", "--", job_id)

    assert listed.exit_code == 0, listed.output
    [letter] = json.loads(listed.stdout)["letters"]
    assert (letter["job"]["id"], letter["error_type"]) == (job_id, "ValueError")
    assert letter["reason"] == "permanent error ValueError: bad input"
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.stdout)
    assert (record["state"], record["errors"][0]["traceback"]) == ("dead", "Traceback: boom")


def test_failed_show_of_an_unknown_id_exits_1_and_says_what_to_do(box: Container) -> None:
    result = invoke(box, "failed", "show", "nope")

    assert result.exit_code == 1
    assert "foundry failed list" in result.stderr


def test_failed_retry_requeues_the_named_job(box: Container, queue: Queue) -> None:
    job_id = bury(queue)

    result = invoke(box, "failed", "retry", "--", job_id)

    assert result.exit_code == 0, result.output
    record = queue.get(job_id, "default")
    assert record is not None
    assert record.state is JobState.READY
    assert queue.stats("default").dead == 0


def test_failed_retry_needs_ids_or_all(box: Container) -> None:
    result = invoke(box, "failed", "retry")

    assert result.exit_code == 2
    assert "--all" in result.stderr


@pytest.mark.parametrize("command", [("failed", "retry", "--all"), ("failed", "purge")])
def test_acting_on_every_queue_s_dead_letters_says_when_there_are_none(
    box: Container, queue: Queue, command: tuple[str, ...]
) -> None:
    queue.enqueue(Job("alive"))

    result = invoke(box, *command)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no dead letters in any queue"
    assert queue.stats("default").ready == 1


def test_failed_retry_all_requeues_every_letter(box: Container, queue: Queue) -> None:
    bury(queue)
    bury(queue)

    result = invoke(box, "failed", "retry", "--all", "--queue", "default")

    assert result.exit_code == 0, result.output
    assert queue.stats("default").ready == 2


def test_failed_commands_find_each_jobs_queue_by_id(box: Container, queue: Queue) -> None:
    first, second, third = (
        bury(queue, queue_name="mail"),
        bury(queue, queue_name="mail"),
        bury(queue),
    )

    retried = invoke(box, "failed", "retry", "--", first, third)
    forgot = invoke(box, "failed", "forget", "--", second)

    assert retried.exit_code == 0, retried.output
    assert "requeued 1 job(s) in mail" in retried.stdout
    assert "requeued 1 job(s) in default" in retried.stdout
    assert forgot.exit_code == 0, forgot.output
    assert "forgot 1 dead letter(s) in mail" in forgot.stdout
    assert (queue.stats("mail").ready, queue.stats("mail").dead, queue.stats("default").ready) == (
        1,
        0,
        1,
    )


@pytest.mark.parametrize("command", ["retry", "purge"])
def test_failed_all_without_a_queue_asks_naming_every_queue_it_would_touch(
    box: Container, queue: Queue, command: str
) -> None:
    bury(queue, queue_name="mail")
    bury(queue, queue_name="mail")
    args = ["failed", command, "--all"] if command == "retry" else ["failed", command]

    refused = invoke(box, *args, stdin="n\n")
    kept = queue.stats("mail").dead
    done = invoke(box, *args, stdin="y\n")

    assert refused.exit_code == 1
    assert "mail (2)" in refused.output
    assert kept == 2
    assert done.exit_code == 0, done.output
    assert "in default" not in done.stdout
    assert queue.stats("mail").dead == 0


def test_failed_forget_deletes_only_dead_letters(box: Container, queue: Queue) -> None:
    dead_id = bury(queue)
    pending = Job("pending")
    queue.enqueue(pending)

    result = invoke(box, "failed", "forget", "--", dead_id, pending.id)

    assert result.exit_code == 1
    assert pending.id in result.stderr
    assert queue.get(dead_id, "default") is None
    assert queue.get(pending.id, "default") is not None


def test_failed_purge_empties_the_dead_letters(box: Container, queue: Queue) -> None:
    bury(queue)
    bury(queue)

    result = invoke(box, "failed", "purge", "--yes")

    assert result.exit_code == 0, result.output
    assert "purged 2" in result.stdout
    assert queue.dead("default") == []


def test_failed_purge_asks_first_and_a_no_keeps_everything(box: Container, queue: Queue) -> None:
    bury(queue)

    result = invoke(box, "failed", "purge", stdin="n\n")

    assert result.exit_code == 1
    assert len(queue.dead("default")) == 1


def test_queue_pause_stops_claims_and_resume_restores_them(box: Container, queue: Queue) -> None:
    queue.enqueue(Job("a"))

    paused = invoke(box, "queue", "pause", "default")
    claimed_while_paused = queue.claim(ClaimRequest(["default"], lease=LEASE))
    resumed = invoke(box, "queue", "resume", "default")

    assert (paused.exit_code, resumed.exit_code) == (0, 0)
    assert claimed_while_paused == []
    assert len(queue.claim(ClaimRequest(["default"], lease=LEASE))) == 1


def test_pausing_a_queue_never_seen_is_refused_unless_created_ahead_of_time(
    box: Container, queue: Queue
) -> None:
    queue.enqueue(Job("a", queue="mail"))

    typo = invoke(box, "queue", "pause", "mial")
    ahead = invoke(box, "queue", "pause", "reports", "--create")

    assert typo.exit_code == 1
    assert "never held a job" in typo.stderr
    assert "mail" in typo.stderr
    assert "--create" in typo.stderr
    assert not queue.stats("mial").paused
    assert ahead.exit_code == 0, ahead.output
    assert queue.stats("reports").paused


def test_queue_purge_removes_pending_jobs(box: Container, queue: Queue) -> None:
    queue.enqueue(Job("a"))
    queue.enqueue(Job("b", schedule=RunAfter(timedelta(minutes=1))))

    result = invoke(box, "queue", "purge", "default", "--yes")

    assert result.exit_code == 0, result.output
    assert "purged 2" in result.stdout
    assert queue.stats("default").pending == 0


def test_stats_lists_live_workers_with_their_counters(
    box: Container, queue: Queue, clock: ManualClock
) -> None:
    now = clock.now()
    info = WorkerInfo(
        id="host-1:4242:abc",
        host="host-1",
        pid=4242,
        queues=("mail", "default"),
        concurrency=4,
        started_at=now,
        seen_at=now,
        processed=1234,
        retried=5,
    )
    queue.heartbeat(info, timedelta(seconds=30))

    result = invoke(box, "stats")

    assert result.exit_code == 0, result.output
    assert "host-1:4242:abc" in result.stdout
    assert "mail,default" in result.stdout
    assert "1234" in result.stdout


def test_stats_as_json_gives_each_queue_its_oldest_wait_and_the_live_workers(
    box: Container, queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(Job("a", queue="mail"))
    queue.enqueue(Job("b", queue="mail", schedule=RunAfter(timedelta(minutes=1))))
    bury(queue)
    clock.advance(timedelta(seconds=7))
    now = clock.now()
    queue.heartbeat(
        WorkerInfo(
            id="w-1", host="h", pid=1, queues=("mail",), concurrency=2, started_at=now, seen_at=now
        ),
        timedelta(seconds=30),
    )

    result = invoke(box, "stats", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    queues = {row["queue"]: row for row in shown["queues"]}
    assert (queues["mail"]["ready"], queues["mail"]["delayed"]) == (1, 1)
    assert queues["mail"]["oldest_ready_age_s"] == pytest.approx(7, abs=0.01)
    assert (queues["default"]["dead"], queues["default"]["oldest_ready_age_s"]) == (1, None)
    assert [(w["id"], w["queues"]) for w in shown["workers"]] == [("w-1", ["mail"])]
    assert datetime.fromisoformat(shown["at"]) == now


def test_enqueue_with_the_app_applies_the_handler_defaults(box: Container, queue: Queue) -> None:
    result = invoke(
        box,
        "enqueue",
        "demo.flaky",
        "--app",
        "foundry.entrypoints.demo.app:registry",
        "--id",
        "f-1",
        "--payload",
        '{"ledger": "/tmp", "key": "k", "failures": 1}',
    )

    assert result.exit_code == 0, result.output
    record = queue.get("f-1", "demo")
    assert record is not None
    assert record.job.max_attempts == 4


def test_enqueue_with_the_app_refuses_an_unknown_handler(box: Container) -> None:
    result = invoke(box, "enqueue", "demo.typo", "--app", "foundry.entrypoints.demo.app:registry")

    assert result.exit_code == 2
    assert "demo.typo" in result.stderr


def test_demo_refuses_to_run_on_a_paused_demo_queue(box: Container, queue: Queue) -> None:
    queue.pause("demo")

    result = invoke(box, "demo", "--jobs", "4")

    assert result.exit_code == 1
    assert "foundry queue resume demo" in result.stderr
    assert queue.stats("demo").pending == 0


def test_failed_list_and_show_without_a_queue_look_in_every_queue(
    box: Container, queue: Queue
) -> None:
    mail_id = bury(queue, queue_name="mail")
    default_id = bury(queue)

    listed = invoke(box, "failed", "list")
    shown = invoke(box, "failed", "show", "--", mail_id)

    assert listed.exit_code == 0, listed.output
    assert mail_id in listed.stdout
    assert default_id in listed.stdout
    assert shown.exit_code == 0, shown.output
    assert "queue=mail" in shown.stdout
