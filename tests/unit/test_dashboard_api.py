"""The dashboard's JSON API through an HTTP client: every endpoint, bad ids and bad bodies.

The memory queue stands in for the backend (the API reads and writes only through the ports);
the browser test drives the same app against Redis.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from starlette.testclient import TestClient

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.registry import JobRegistry
from foundry.application.schedules.scheduler import Scheduler
from foundry.domain import Batch, Callback, Dead, ErrorInfo, Job, JobState, Progress
from foundry.entrypoints.dashboard.app import DashboardConfig, create_app
from foundry.entrypoints.dashboard.history import Sampler
from foundry.entrypoints.dashboard.security import GuardConfig
from foundry.ports import ClaimRequest, JobRecord, ScheduleEntry, WorkerInfo
from tests.backends import RequeuedOnRead, state_of

BASE = "http://127.0.0.1:8080"
S = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


class Dash:
    """A dashboard over a memory queue, with its client, clock and CSRF token."""

    def __init__(
        self,
        guard: GuardConfig | None = None,
        make_queue: Callable[[ManualClock], MemoryQueue] = MemoryQueue,
    ) -> None:
        self.clock = ManualClock()
        self.queue = make_queue(self.clock)
        self.sampler = Sampler(self.queue, self.clock, timedelta(seconds=5))
        config = DashboardConfig(guard or GuardConfig(token=None), background=False)
        app = create_app(
            self.queue,
            self.queue,
            self.queue,
            self.clock,
            config,
            sampler=self.sampler,
            batches=self.queue,
        )
        self.client = TestClient(app, base_url=BASE)
        self.csrf = config.guard.csrf

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kwargs)

    def kill(self, job_id: str, queue: str = "default", error: str = "builtins.ValueError") -> None:
        """Run ``job_id`` once and bury it with ``error``."""
        [lease] = self.queue.claim(ClaimRequest([queue], lease=30 * S))
        assert lease.job_id == job_id
        self.queue.fail(lease, ErrorInfo(error, "it broke", "Traceback: ..."), Dead("gave up"))


@pytest.fixture
def dash() -> Iterator[Dash]:
    made = Dash()
    yield made
    made.client.close()


def test_csrf_gives_the_token_every_post_needs(dash: Dash) -> None:
    answer = dash.client.get("/api/csrf")

    assert answer.status_code == 200
    assert answer.json() == {"token": dash.csrf}


def test_queues_lists_every_queue_with_sizes_totals_and_oldest_wait(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", queue="one"))
    dash.queue.enqueue(Job("b", queue="two"))
    dash.clock.advance(4 * S)

    rows = dash.client.get("/api/queues").json()["queues"]

    assert [(r["queue"], r["ready"], r["oldest_ready_age_s"]) for r in rows] == [
        ("one", 1, 4.0),
        ("two", 1, 4.0),
    ]
    assert set(rows[0]) >= {"delayed", "active", "dead", "paused", "completed", "failed"}


def test_one_queue_and_a_bad_queue_name(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", queue="one"))

    good = dash.client.get("/api/queues/one")
    bad = dash.client.get("/api/queues/bad%7Bname%7D")

    assert (good.status_code, good.json()["ready"]) == (200, 1)
    assert bad.status_code == 400
    assert "not a valid queue name" in bad.json()["error"]


def test_history_counts_completions_per_minute_from_the_samples(dash: Dash) -> None:
    dash.queue.enqueue_many([Job("a", id=f"j{n}") for n in range(3)])
    dash.sampler.sample()
    dash.clock.advance(30 * S)
    for lease in dash.queue.claim(ClaimRequest(["default"], lease=30 * S, limit=3)):
        dash.queue.complete(lease)
    dash.sampler.sample()

    one = dash.client.get("/api/queues/default/history").json()
    every = dash.client.get("/api/history").json()

    assert len(one["minutes"]) == 60
    assert one["minutes"][-1]["completed"] == 6.0  # 3 in 30 s
    assert one["minutes"][0]["completed"] is None  # not sampling then
    assert every["minutes"][-1] == one["minutes"][-1]
    assert one["sample_every_s"] == 5.0


def test_pause_resume_and_purge_change_the_queue(dash: Dash) -> None:
    dash.queue.enqueue_many([Job("a", queue="q"), Job("b", queue="q")])

    paused = dash.post("/api/queues/q/pause")
    was_paused = dash.queue.stats("q").paused
    resumed = dash.post("/api/queues/q/resume")
    purged = dash.post("/api/queues/q/purge")

    assert paused.json() == {"queue": "q", "paused": True}
    assert was_paused
    assert resumed.json() == {"queue": "q", "paused": False}
    assert not dash.queue.stats("q").paused
    assert purged.json() == {"queue": "q", "removed": 2}


def test_pausing_a_queue_that_never_held_a_job_is_refused_unless_asked_to_create_it(
    dash: Dash,
) -> None:
    dash.queue.enqueue(Job("a", queue="email"))

    typo = dash.post("/api/queues/emial/pause")
    form = dash.client.post("/queues/emial/pause", data={"csrf_token": dash.csrf})
    ahead = dash.post("/api/queues/later/pause", {"create": True})

    assert typo.status_code == 404
    assert "queue 'emial' has never held a job (known: email)" in typo.json()["error"]
    assert form.status_code == 404
    assert not dash.queue.stats("emial").paused
    assert ahead.json() == {"queue": "later", "paused": True}
    assert dash.queue.stats("later").paused


def test_workers_lists_the_live_workers_and_the_jobs_they_hold(dash: Dash) -> None:
    now = dash.clock.now()
    info = WorkerInfo("h:1:ab", "h", 1, ("q",), 4, now, now, processed=9)
    dash.queue.heartbeat(info, 30 * S)
    dash.queue.enqueue_many([Job("a", id="mine", queue="q"), Job("b", id="other", queue="q")])
    dash.queue.claim(ClaimRequest(["q"], lease=30 * S, worker="h:1:ab"))
    dash.queue.claim(ClaimRequest(["q"], lease=30 * S, worker="gone:2:cd"))

    [worker] = dash.client.get("/api/workers").json()["workers"]

    assert (worker["id"], worker["queues"], worker["concurrency"]) == ("h:1:ab", ["q"], 4)
    assert worker["processed"] == 9
    assert worker["seen_at"] == now.isoformat()
    assert worker["running"] == [{"id": "mine", "name": "a", "queue": "q"}]


def test_jobs_lists_a_queues_jobs_by_state_and_refuses_a_bad_state(dash: Dash) -> None:
    dash.queue.enqueue_many([Job("a", id=f"j{n}", queue="q") for n in range(3)])
    dash.queue.claim(ClaimRequest(["q"], lease=30 * S, worker="w"))

    ready = dash.client.get("/api/queues/q/jobs").json()
    active = dash.client.get("/api/queues/q/jobs?state=active").json()
    paged = dash.client.get("/api/queues/q/jobs?state=ready&offset=1&limit=1").json()
    bad = dash.client.get("/api/queues/q/jobs?state=cancelled")

    assert [job["job"]["id"] for job in ready["jobs"]] == ["j1", "j2"]
    assert (ready["state"], ready["limit"]) == ("ready", 50)
    assert [(job["job"]["id"], job["worker"]) for job in active["jobs"]] == [("j0", "w")]
    assert [job["job"]["id"] for job in paged["jobs"]] == ["j2"]
    assert bad.status_code == 400
    assert (
        "state must be one of ready, delayed, waiting, active, completed, dead"
        in (bad.json()["error"])
    )


def test_jobs_waiting_for_others_are_listed_and_can_be_deleted(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", id="first", queue="q"))
    dash.queue.enqueue_many([Job("b", id=f"then{n}", queue="q", after=("first",)) for n in (1, 2)])

    listed = dash.client.get("/api/queues/q/jobs?state=waiting")
    tabs = dash.client.get("/queues/q").text
    page = dash.client.get("/queues/q?state=waiting")
    job_page = dash.client.get("/jobs/then1")
    deleted = dash.post("/api/jobs/then2/delete", {"queue": "q"})

    assert listed.status_code == 200, listed.text
    assert [job["job"]["id"] for job in listed.json()["jobs"]] == ["then1", "then2"]
    assert 'href="/queues/q?state=waiting"' in tabs
    assert page.status_code == 200
    assert "then1" in page.text
    assert 'action="/jobs/then1/delete"' in job_page.text
    assert 'href="/jobs/first?queue=q"' in job_page.text  # what it waits for
    assert listed.json()["jobs"][0]["job"]["after"] == ["first"]
    assert deleted.json() == {"deleted": True}


def test_a_job_its_record_errors_and_unknown_or_bad_ids(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", id="j1", payload={"html": "<script>alert(1)</script>"}))
    dash.kill("j1")

    record = dash.client.get("/api/jobs/j1").json()
    in_queue = dash.client.get("/api/jobs/j1?queue=default")
    unknown = dash.client.get("/api/jobs/nope")
    bad_id = dash.client.get("/api/jobs/%3Cscript%3E")
    bad_queue = dash.client.get("/api/jobs/j1?queue=a%7Bb%7D")

    assert record["state"] == "dead"
    assert record["job"]["payload"] == {"html": "<script>alert(1)</script>"}
    assert [e["type"] for e in record["errors"]] == ["builtins.ValueError"]
    assert record["errors"][0]["traceback"] == "Traceback: ..."
    assert in_queue.status_code == 200
    assert (unknown.status_code, bad_id.status_code, bad_queue.status_code) == (404, 400, 400)
    assert "is not a job id" in bad_id.json()["error"]


def test_a_running_jobs_progress_is_on_its_page_and_in_its_record(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", id="j1"))
    [lease] = dash.queue.claim(ClaimRequest(["default"], lease=30 * S))
    before = dash.client.get("/api/jobs/j1").json()
    dash.queue.renew([attrs.evolve(lease, progress=Progress(0.25, "<b>1 of 4</b>"))], 30 * S)

    record = dash.client.get("/api/jobs/j1").json()
    page = dash.client.get("/jobs/j1").text

    assert before["progress"] is None
    assert record["progress"] == {"fraction": 0.25, "note": "<b>1 of 4</b>"}
    assert 'value="0.25"' in page
    assert "25% (&lt;b&gt;1 of 4&lt;/b&gt;)" in page


def test_delete_removes_a_pending_job_and_refuses_bad_bodies(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", id="j1"))

    no_queue = dash.post("/api/jobs/j1/delete", {})
    not_json = dash.client.post(
        "/api/jobs/j1/delete", content=b"{nope", headers={"X-CSRF-Token": dash.csrf}
    )
    a_list = dash.post("/api/jobs/j1/delete", ["default"])
    deleted = dash.post("/api/jobs/j1/delete", {"queue": "default"})
    again = dash.post("/api/jobs/j1/delete", {"queue": "default"})

    assert (no_queue.status_code, not_json.status_code, a_list.status_code) == (400, 400, 400)
    assert '"queue" must be a string' in no_queue.json()["error"]
    assert "must be JSON" in not_json.json()["error"]
    assert "JSON object" in a_list.json()["error"]
    assert deleted.json() == {"deleted": True}
    assert again.status_code == 404


def test_dead_letters_filter_by_queue_and_error_type_and_page(dash: Dash) -> None:
    for n, error in enumerate(["builtins.ValueError", "builtins.KeyError", "app.Timeout"]):
        dash.queue.enqueue(Job("a", id=f"d{n}"))
        dash.clock.advance(S)
        dash.kill(f"d{n}", error=error)
    dash.queue.enqueue(Job("a", id="o1", queue="other"))
    dash.clock.advance(S)
    dash.kill("o1", queue="other")

    every = dash.client.get("/api/dead").json()
    values = dash.client.get("/api/dead?error_type=valueerror").json()
    one_queue = dash.client.get("/api/dead?queue=default&limit=2&offset=1").json()
    bad = [dash.client.get(f"/api/dead?{query}") for query in ("limit=0", "offset=x", "queue=%7B")]

    assert [letter["job"]["id"] for letter in every["letters"]] == ["o1", "d2", "d1", "d0"]
    assert every["error_types"] == ["app.Timeout", "builtins.KeyError", "builtins.ValueError"]
    assert [letter["job"]["id"] for letter in values["letters"]] == ["o1", "d0"]
    assert [letter["job"]["id"] for letter in one_queue["letters"]] == ["d1", "d0"]
    assert one_queue["matched"] == 3
    assert [answer.status_code for answer in bad] == [400, 400, 400]
    assert "limit must be from 1 to 500" in bad[0].json()["error"]


def test_retry_requeues_dead_letters_by_id_or_all_and_refuses_bad_bodies(dash: Dash) -> None:
    for n in range(3):
        dash.queue.enqueue(Job("a", id=f"d{n}"))
        dash.kill(f"d{n}")

    by_id = dash.post("/api/dead/retry", {"queue": "default", "job_ids": ["d0", "zz"]})
    every = dash.post("/api/dead/retry", {"queue": "default", "all": True})
    refusals = [
        dash.post("/api/dead/retry", body)
        for body in (
            {"queue": "default"},
            {"queue": "default", "job_ids": "d1"},
            {"queue": "default", "job_ids": [1]},
            {"queue": "default", "job_ids": ["d1"], "all": True},
            {"queue": "default", "all": "yes"},
            {"queue": 7, "all": True},
            {"queue": "default", "job_ids": ["<bad id>"]},
        )
    ]

    assert by_id.json() == {"requeued": 1}
    assert every.json() == {"requeued": 2}
    assert dash.queue.stats("default").ready == 3
    assert [answer.status_code for answer in refusals] == [400] * 7
    assert all(answer.json()["error"] for answer in refusals)


def test_a_retry_naming_neither_ids_nor_all_says_both_ways(dash: Dash) -> None:
    answer = dash.post("/api/dead/retry", {"queue": "default"})

    assert answer.status_code == 400
    assert answer.json()["error"] == 'give "job_ids": [ids...] or "all": true'


def test_forget_and_purge_remove_dead_letters(dash: Dash) -> None:
    for n in range(3):
        dash.queue.enqueue(Job("a", id=f"d{n}"))
        dash.kill(f"d{n}")
    dash.queue.enqueue(Job("a", id="pending"))

    forgot = dash.post("/api/dead/forget", {"queue": "default", "job_ids": ["d0", "pending", "d0"]})
    empty = dash.post("/api/dead/forget", {"queue": "default", "job_ids": []})
    purged = dash.post("/api/dead/purge", {"queue": "default"})

    assert forgot.json() == {"forgotten": 1, "not_dead": ["pending"]}
    assert empty.status_code == 400
    assert purged.json() == {"removed": 2}
    assert dash.queue.stats("default").dead == 0
    assert dash.queue.get("pending") is not None


def test_the_page_of_a_queue_that_never_held_a_job_says_so_naming_the_known_ones(
    dash: Dash,
) -> None:
    dash.queue.enqueue(Job("a", queue="email"))
    dash.queue.pause("ahead")

    typo = dash.client.get("/queues/emial")
    known = dash.client.get("/queues/email")
    paused = dash.client.get("/queues/ahead")

    assert typo.status_code == 200
    assert "queue &#39;emial&#39; has never held a job (known: ahead, email)" in typo.text
    assert "never held a job" not in known.text
    assert "never held a job" not in paused.text


def test_resuming_a_queue_that_never_held_a_job_is_not_found_naming_the_known_ones(
    dash: Dash,
) -> None:
    dash.queue.enqueue(Job("a", queue="email"))

    answer = dash.post("/api/queues/emial/resume")

    assert answer.status_code == 404
    assert "queue 'emial' has never held a job (known: email)" in answer.json()["error"]
    assert dash.queue.queues() == ["email"]


def test_cancel_stops_a_pending_or_running_job_and_says_what_became_of_it(dash: Dash) -> None:
    dash.queue.enqueue_many([Job("a", id="runs"), Job("a", id="waits")])
    [lease] = dash.queue.claim(ClaimRequest(["default"], lease=30 * S))

    pending = dash.post("/api/jobs/waits/cancel", {"reason": "not needed"})
    running = dash.post("/api/jobs/runs/cancel", {"queue": "default"})
    unknown = dash.post("/api/jobs/nope/cancel", {})
    bad = dash.post("/api/jobs/waits/cancel", {"reason": 5})

    assert pending.json() == {"job_id": "waits", "state": "cancelled"}
    assert running.json() == {"job_id": "runs", "state": "active"}
    assert unknown.status_code == 404
    assert bad.status_code == 400
    record = dash.queue.get("waits")
    assert record is not None
    assert record.reason == "not needed"
    [renewed] = dash.queue.renew([lease], 30 * S)
    assert renewed is not None
    assert renewed.stop == "cancelled from the dashboard"


def test_the_job_page_offers_cancel_for_pending_and_running_jobs(dash: Dash) -> None:
    dash.queue.enqueue_many([Job("a", id="runs"), Job("a", id="waits")])
    dash.queue.claim(ClaimRequest(["default"], lease=30 * S))

    drawn = {job_id: dash.client.get(f"/jobs/{job_id}").text for job_id in ("runs", "waits")}
    form = {"csrf_token": dash.csrf, "queue": "default", "back": "/jobs/waits"}
    answer = dash.client.post("/jobs/waits/cancel", data=form, follow_redirects=False)

    assert all('action="/jobs/' + job_id + '/cancel"' in drawn[job_id] for job_id in drawn)
    assert answer.status_code == 303
    assert "job+waits+is+cancelled" in answer.headers["location"]
    assert state_of(dash.queue, "waits") is JobState.CANCELLED


def test_forget_never_deletes_a_letter_requeued_while_it_was_being_forgotten() -> None:
    dash = Dash(make_queue=RequeuedOnRead)
    for n in range(2):
        dash.queue.enqueue(Job("a", id=f"d{n}"))
        dash.kill(f"d{n}")

    forgot = dash.post("/api/dead/forget", {"queue": "default", "job_ids": ["d0"]})
    form = {"csrf_token": dash.csrf, "pick": ["default/d1"]}
    picked = dash.client.post("/dead/forget", data=form, follow_redirects=False)

    assert isinstance(dash.queue, RequeuedOnRead)
    requeued = dash.queue.requeued
    assert forgot.status_code == 200, forgot.text
    assert picked.status_code == 303, picked.text
    assert [dash.queue.get(job_id) is not None for job_id in requeued] == [True] * len(requeued)
    assert dash.queue.stats("default").dead + dash.queue.stats("default").ready == len(requeued)
    dash.client.close()


def test_a_bad_id_or_queue_anywhere_in_a_selection_refuses_it_before_anything_changes(
    dash: Dash,
) -> None:
    for job_id, queue in (("d0", "default"), ("d1", "default"), ("o0", "other")):
        dash.queue.enqueue(Job("a", id=job_id, queue=queue))
        dash.kill(job_id, queue)
    form = {"csrf_token": dash.csrf}

    refused = [
        dash.post("/api/dead/forget", {"queue": "default", "job_ids": ["d0", "<bad id>"]}),
        dash.client.post("/dead/forget", data={**form, "pick": ["default/d0", "other/<bad>"]}),
        dash.client.post("/dead/retry", data={**form, "pick": ["default/d1", "{/o0"]}),
    ]

    assert [answer.status_code for answer in refused] == [400] * 3
    assert (dash.queue.stats("default").dead, dash.queue.stats("other").dead) == (2, 1)
    assert dash.queue.stats("default").ready == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/queues/q/pause",
        "/api/queues/q/purge",
        "/api/jobs/j1/delete",
        "/api/jobs/j1/cancel",
        "/jobs/j1/cancel",
        "/api/dead/retry",
        "/api/dead/forget",
        "/api/dead/purge",
        "/queues/q/pause",
        "/dead/retry",
        "/api/schedules/pause",
        "/schedules/forget",
    ],
)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    dash: Dash, path: str
) -> None:
    dash.queue.enqueue(Job("a", id="j1", queue="q"))

    missing = dash.client.post(path, json={"queue": "q", "all": True})
    wrong = dash.client.post(path, json={"queue": "q"}, headers={"X-CSRF-Token": "guess"})
    form = dash.client.post(path, data={"csrf_token": "guess", "queue": "q"})

    assert [r.status_code for r in (missing, wrong, form)] == [403, 403, 403]
    assert "CSRF" in missing.json()["error"]
    assert "reload the page" in form.json()["error"]  # a page older than a restart
    assert dash.queue.stats("q").ready == 1
    assert not dash.queue.stats("q").paused


def test_the_form_field_carries_the_csrf_token_for_html_forms(dash: Dash) -> None:
    dash.queue.enqueue(Job("a", queue="q"))

    answer = dash.client.post(
        "/queues/q/pause",
        data={"csrf_token": dash.csrf, "back": "/queues"},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/queues?note=paused")
    assert dash.queue.stats("q").paused


def test_only_get_and_post_and_only_loopback_host_names_are_served(dash: Dash) -> None:
    put = dash.client.put("/api/queues/q/pause", headers={"X-CSRF-Token": dash.csrf})
    rebound = dash.client.get("/api/queues", headers={"Host": "evil.example:8080"})
    local = dash.client.get("/api/queues", headers={"Host": "localhost:8080"})

    assert put.status_code == 405
    assert rebound.status_code == 403
    assert local.status_code == 200


def test_a_token_is_required_as_basic_password_or_bearer_when_set() -> None:
    dash = Dash(GuardConfig(token="s3cret-token", loopback_only=False))
    basic = base64.b64encode(b"admin:s3cret-token").decode()

    anonymous = dash.client.get("/api/queues")
    wrong = dash.client.get("/api/queues", headers={"Authorization": "Bearer nope"})
    bearer = dash.client.get("/api/queues", headers={"Authorization": "Bearer s3cret-token"})
    browser = dash.client.get("/queues", headers={"Authorization": f"Basic {basic}"})

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert (bearer.status_code, browser.status_code) == (200, 200)
    assert "s3cret-token" not in browser.text + bearer.text


def test_every_answer_forbids_inline_scripts_and_framing(dash: Dash) -> None:
    for path in ("/queues", "/api/queues", "/api/jobs/nope"):
        headers = dash.client.get(path).headers

        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"


def store_schedules(dash: Dash) -> None:
    """Two schedules as a worker would have stored them: one fired once, one orphaned."""
    first = dash.clock.now() + MINUTE
    dash.queue.sync_schedules(
        [
            ScheduleEntry("nightly", "reports", "0 3 * * * (UTC)", first),
            ScheduleEntry("<b>gone</b>", "default", "every 0:05:00", first),
        ],
        redefine=False,
    )
    dash.queue.orphan("default", ["<b>gone</b>"])


def test_schedules_lists_what_the_backend_stores_with_each_ones_state(dash: Dash) -> None:
    store_schedules(dash)

    listed = dash.client.get("/api/schedules").json()
    page = dash.client.get("/schedules")

    assert listed["total"] == 2
    assert [(s["name"], s["queue"], s["status"]) for s in listed["schedules"]] == [
        ("<b>gone</b>", "default", "orphaned"),
        ("nightly", "reports", "active"),
    ]
    nightly = listed["schedules"][1]
    assert nightly["definition"] == "0 3 * * * (UTC)"
    assert nightly["next_at"] == (dash.clock.now() + MINUTE).isoformat()
    assert (nightly["last_tick"], nightly["last_job_id"]) == (None, None)
    assert page.status_code == 200
    assert "&lt;b&gt;gone&lt;/b&gt;" in page.text
    assert "<b>gone</b>" not in page.text
    assert dash.client.get("/api/schedules?offset=1&limit=1").json()["schedules"][0]["name"] == (
        "nightly"
    )


def _noop() -> None:
    """A handler for the schedules below."""


def test_a_schedule_removed_from_the_only_queue_it_used_reads_stalled_not_active(
    dash: Dash,
) -> None:
    before, after = JobRegistry(), JobRegistry()
    before.periodic(every=timedelta(minutes=1), name="sweep", queue="solo")(before.job(_noop))
    after.periodic(every=timedelta(minutes=1), name="report", queue="reports")(after.job(_noop))
    Scheduler(dash.queue, before, ahead=timedelta(0)).step()  # the old release stored it

    dash.clock.advance(5 * MINUTE)
    Scheduler(dash.queue, after, ahead=timedelta(0)).step()  # the new release polls "reports"
    listed = dash.client.get("/api/schedules").json()["schedules"]
    page = dash.client.get("/schedules").text

    statuses = [(s["name"], s["status"]) for s in listed]
    assert statuses == [("report", "active"), ("sweep", "stalled")]
    assert "no scheduler fired it" in page


def test_schedules_are_paused_resumed_from_now_and_forgotten(dash: Dash) -> None:
    store_schedules(dash)
    which = {"queue": "reports", "name": "nightly"}

    paused = dash.post("/api/schedules/pause", which)
    after_pause = dash.client.get("/api/schedules").json()["schedules"][1]
    dash.clock.advance(10 * MINUTE)
    resumed = dash.post("/api/schedules/resume", which)
    after_resume = dash.client.get("/api/schedules").json()["schedules"][1]
    forgotten = dash.post("/api/schedules/forget", which)
    again = dash.post("/api/schedules/forget", which)

    assert paused.json() == {**which, "paused": True}
    assert (after_pause["status"], after_pause["next_at"]) == ("paused", None)
    assert resumed.json() == {**which, "paused": False}
    assert after_resume["status"] == "active"
    assert after_resume["next_at"] == dash.clock.now().isoformat()
    assert forgotten.json() == {**which, "forgotten": True}
    assert again.status_code == 404
    assert "no schedule 'nightly' is stored for queue 'reports'" in again.json()["error"]
    assert [s["name"] for s in dash.client.get("/api/schedules").json()["schedules"]] == [
        "<b>gone</b>"
    ]


def test_the_schedules_page_pauses_and_resumes_through_its_forms(dash: Dash) -> None:
    store_schedules(dash)
    form = {"csrf_token": dash.csrf, "queue": "reports", "name": "nightly", "back": "/schedules"}

    paused = dash.client.post("/schedules/pause", data=form, follow_redirects=False)
    shown = dash.client.get("/schedules").text
    resumed = dash.client.post("/schedules/resume", data=form, follow_redirects=False)
    missing = dash.client.post("/schedules/forget", data={**form, "name": "nope"})

    assert paused.status_code == 303
    assert paused.headers["location"].startswith("/schedules?note=paused+schedule+nightly")
    assert 'action="/schedules/resume"' in shown
    assert resumed.status_code == 303
    assert not dash.queue.schedule_states().states[1].paused
    assert missing.status_code == 404


def test_the_job_page_delete_leaves_a_job_that_died_since_the_page_was_drawn(
    dash: Dash,
) -> None:
    dash.queue.enqueue(Job("a", id="j1"))
    drawn = dash.client.get("/jobs/j1")
    dash.kill("j1")  # meanwhile, a worker ran it and it went dead

    form = {"csrf_token": dash.csrf, "queue": "default", "back": "/queues/default"}
    answer = dash.client.post("/jobs/j1/delete", data=form, follow_redirects=False)

    assert 'action="/jobs/j1/delete"' in drawn.text
    assert answer.status_code == 409
    assert "is dead now" in answer.text
    assert dash.queue.stats("default").dead == 1


class BuriedOnRead(MemoryQueue):
    """A memory queue where a worker runs each ready job and buries it right after the job
    is read: the moment between an admin tool's look at a job and its action on it."""

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The record as it was; the job is dead when this returns."""
        record = super().get(job_id, queue)
        if record is not None and record.state is JobState.READY:
            [lease] = self.claim(ClaimRequest([record.job.queue], lease=30 * S))
            self.fail(lease, ErrorInfo("builtins.ValueError", "it broke"), Dead("gave up"))
        return record


def test_the_job_page_delete_never_removes_a_job_that_died_while_it_was_being_deleted() -> None:
    dash = Dash(make_queue=BuriedOnRead)
    dash.queue.enqueue(Job("a", id="j1"))

    form = {"csrf_token": dash.csrf, "queue": "default", "back": "/queues/default"}
    answer = dash.client.post("/jobs/j1/delete", data=form, follow_redirects=False)
    dash.client.close()

    after = dash.queue.stats("default")
    assert after.dead == after.failed  # a job buried behind the page's back stays a letter
    assert answer.status_code == (409 if after.failed else 303)


def test_an_unknown_api_path_or_method_answers_json_naming_it(dash: Dash) -> None:
    unknown = dash.client.get("/api/job/j1")
    wrong_method = dash.client.get("/api/queues/q/pause")
    page = dash.client.get("/nowhere")

    assert unknown.status_code == 404
    assert "/api/job/j1" in unknown.json()["error"]
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.json()["error"]
    assert page.status_code == 404
    assert 'class="error-message"' in page.text


BAD_REQUESTS = [
    ("GET", "/api/queues/%7B%7D", None),
    ("GET", "/api/queues/" + "q" * 101, None),
    ("GET", "/api/queues/%7B/history", None),
    ("GET", "/api/jobs/" + "x" * 65, None),
    ("GET", "/api/jobs/a%20b", None),
    ("GET", "/api/dead?limit=-1", None),
    ("GET", "/api/queues/q/jobs?state=nope", None),
    ("GET", "/api/queues/q/jobs?offset=-3", None),
    ("GET", "/api/queues/%7B/jobs", None),
    ("GET", "/queues/q?state=x", None),
    ("GET", "/api/dead?offset=99999999999", None),
    ("POST", "/api/queues/%7B/pause", {}),
    ("POST", "/api/queues/%7B/purge", {}),
    ("POST", "/api/jobs/%3C%3E/delete", {"queue": "default"}),
    ("POST", "/api/jobs/j/delete", {"queue": "{"}),
    ("POST", "/api/dead/retry", {"queue": None, "job_ids": None}),
    ("POST", "/api/dead/retry", {"queue": "default", "job_ids": ["x"] * 10_001}),
    ("POST", "/api/dead/forget", {"queue": "default", "job_ids": {"a": 1}}),
    ("POST", "/api/dead/purge", {"queue": ["default"]}),
    ("POST", "/api/dead/purge", 42),
    ("GET", "/jobs/%3Cscript%3E", None),
    ("GET", "/queues/%7B", None),
    ("GET", "/api/schedules?limit=0", None),
    ("GET", "/schedules?offset=x", None),
    ("POST", "/api/schedules/pause", {"queue": "reports"}),
    ("POST", "/api/schedules/resume", {"queue": "{", "name": "nightly"}),
    ("POST", "/api/schedules/forget", {"queue": "reports", "name": "line\nbreak"}),
    ("POST", "/api/schedules/pause", {"queue": "reports", "name": "n" * 201}),
    ("POST", "/schedules/pause", {"queue": "reports", "name": ""}),
    ("GET", "/dead?limit=x", None),
    ("POST", "/dead/retry", {}),
    ("POST", "/dead/forget", {"pick": "no-slash"}),
    ("POST", "/dead/purge", {"queue": "{"}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_bad_input_is_a_400_with_a_message_never_a_500(
    dash: Dash, method: str, path: str, body: Any
) -> None:
    headers = {"X-CSRF-Token": dash.csrf}
    if method == "GET":
        answer = dash.client.get(path)
    elif path.startswith("/api/"):
        answer = dash.client.post(path, json=body, headers=headers)
    else:
        answer = dash.client.post(path, data={"csrf_token": dash.csrf, **(body or {})})

    assert answer.status_code == 400, answer.text
    assert "Traceback" not in answer.text
    if path.startswith("/api/"):
        assert answer.json()["error"]
    else:
        assert 'class="error-message"' in answer.text


# -- batches ------------------------------------------------------------------------------------


def test_batches_are_listed_shown_and_cancelled(dash: Dash) -> None:
    dash.queue.enqueue_batches(
        [
            Batch(
                [Job("resize", id="a"), Job("resize", id="b")],
                {Callback.THEN: Job("t", id="t")},
                id="b1",
            )
        ]
    )

    listed = dash.client.get("/api/batches?queue=default").json()
    one = dash.client.get("/api/batches/b1").json()
    page = dash.client.get("/batches?queue=default")
    cancelled = dash.post("/api/batches/b1/cancel", {"reason": "not needed"})
    missing = dash.client.get("/api/batches/nope")
    bad = dash.client.get("/api/batches/" + "x" * 80)

    assert [b["id"] for b in listed["batches"]] == ["b1"]
    assert listed["kept"] is True
    assert (one["state"], one["total"], one["pending"], one["callbacks"]) == (
        "running",
        2,
        2,
        {"then": "t"},
    )
    assert page.status_code == 200
    assert 'id="batch-b1"' in page.text
    assert cancelled.status_code == 200
    assert (cancelled.json()["state"], cancelled.json()["reason"]) == ("cancelled", "not needed")
    assert missing.status_code == 404
    assert bad.status_code == 400
    assert "is not a batch id" in bad.json()["error"]


def test_batches_without_a_queue_named_are_every_queues_newest_first(dash: Dash) -> None:
    dash.queue.enqueue_batches([Batch([Job("resize", id="a", queue="images")], id="older")])
    dash.clock.advance(S)
    dash.queue.enqueue_batches([Batch([Job("welcome", id="w")], id="newer")])

    listed = dash.client.get("/api/batches").json()
    second = dash.client.get("/api/batches?offset=1&limit=1").json()
    page = dash.client.get("/batches")
    too_deep = dash.client.get("/api/batches?offset=10000")

    assert listed["queue"] is None
    assert [(b["id"], b["queue"]) for b in listed["batches"]] == [
        ("newer", "default"),
        ("older", "images"),
    ]
    assert [b["id"] for b in second["batches"]] == ["older"]
    assert 'id="batch-newer"' in page.text
    assert 'id="batch-older"' in page.text
    assert too_deep.status_code == 400
    assert "name a queue" in too_deep.json()["error"]


def test_the_batches_page_cancels_by_its_form_and_says_so(dash: Dash) -> None:
    dash.queue.enqueue_batches([Batch([Job("resize", id="a")], id="b1")])

    answer = dash.client.post(
        "/batches/b1/cancel",
        data={"csrf_token": dash.csrf, "queue": "default", "back": "/batches?queue=default"},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert "batch+b1+is+cancelled" in answer.headers["location"]
    record = dash.queue.batch("b1")
    assert record is not None
    assert record.state == "cancelled"
