"""The dashboard in a real browser: headless Chromium against ``foundry dashboard`` on a real,
password-protected Redis, with a real ``foundry work`` running the jobs.

One browser, one dashboard and one worker serve the whole module. Set
``FOUNDRY_DASHBOARD_SHOTS=<dir>`` to keep a screenshot of each page there.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from foundry.adapters.clock import SystemClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.dispatcher import Dispatcher
from foundry.domain import Batch, Callback, Dead, ErrorInfo, Job, JobState
from foundry.ports import ClaimRequest, ScheduleEntry
from tests.backends import unique_prefix
from tests.e2e import observed
from tests.e2e.browser import alert_opened, chromium, click, text, wait_until
from tests.e2e.servers import answers, foundry_process, http_get, wait_for
from tests.e2e.test_demo import run_foundry
from tests.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PASSWORD = "pw-" + secrets.token_hex(8)
SCRIPT = "<script>alert(1)</script>"
PARKED = "parked"  # a queue no worker serves: its jobs stay pending


class Scene:
    """Redis (with a password), a worker, a dashboard and a producer, for the module."""

    def __init__(self, server: RedisServer, base: str, prefix: str) -> None:
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
        self.base = base
        self.client = redis.Redis.from_url(self.url)
        self.queue = RedisQueue(self.client, prefix=prefix)
        self.dispatcher = Dispatcher(self.queue, observed.registry, SystemClock())

    def state(self, job_id: str) -> JobState | None:
        record = self.queue.get(job_id)
        return None if record is None else record.state


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    server = RedisServer().start()
    server.client().config_set("requirepass", PASSWORD)
    prefix = unique_prefix("dash")
    port = free_port()
    made = Scene(server, f"http://127.0.0.1:{port}", prefix)
    env = {"REDIS_URL": made.url, "QUEUE_PREFIX": prefix}
    app = ("--app", "tests.e2e.observed:registry", "--concurrency", "2")
    try:
        with (
            foundry_process("work", *app, env=env),
            foundry_process("dashboard", "--port", str(port), "--refresh", "1", env=env),
        ):
            wait_for(lambda: answers(made.base + "/api/queues"), "the dashboard")
            yield made
    finally:
        made.client.close()
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def shoot(driver: webdriver.Chrome, name: str) -> None:
    """Keep a screenshot when FOUNDRY_DASHBOARD_SHOTS names a folder."""
    folder = os.environ.get("FOUNDRY_DASHBOARD_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def cell(driver: webdriver.Chrome, queue: str, column: str) -> str:
    return text(driver, By.CSS_SELECTOR, f'tr[data-queue="{queue}"] td.{column}')


def test_the_queues_page_shows_the_counts_and_follows_the_worker(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    for n in range(4):
        scene.dispatcher.dispatch(observed.ok, {"n": n}, queue=PARKED)
    scene.dispatcher.dispatch_many([(observed.ok, {"n": n}) for n in range(6)])
    wait_for(lambda: scene.queue.stats(observed.QUEUE).completed >= 6, "6 completed")

    browser.get(scene.base + "/queues")
    wait_until(browser, lambda d: cell(d, observed.QUEUE, "completed") == "6")

    assert cell(browser, PARKED, "ready") == "4"
    assert cell(browser, observed.QUEUE, "ready") == "0"
    shoot(browser, "queues")
    browser.get(scene.base + f"/queues/{PARKED}")
    assert text(browser, By.CSS_SELECTOR, "dd.ready") == "4"
    shoot(browser, "queue")


def test_a_dead_letter_is_opened_retried_and_seen_completed(
    scene: Scene, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    marker = tmp_path / "gate"
    job_id = scene.dispatcher.dispatch(observed.gated, {"marker": str(marker)})
    wait_for(lambda: scene.state(job_id) is JobState.DEAD, "the gated job to die")

    browser.get(scene.base + f"/dead?queue={observed.QUEUE}")
    shoot(browser, "dead")
    click(browser, By.LINK_TEXT, job_id)
    wait_until(browser, lambda d: text(d, By.ID, "job-state") == "dead")
    assert "RuntimeError" in text(browser, By.CSS_SELECTOR, "details.error")
    shoot(browser, "job")
    marker.touch()
    click(browser, By.XPATH, "//button[text()='Retry']")

    wait_until(browser, lambda d: text(d, By.ID, "job-state") == "completed")
    assert "requeued 1 dead letter" in text(browser, By.CSS_SELECTOR, ".note")
    assert scene.state(job_id) is JobState.COMPLETED


def test_a_script_in_a_payload_or_an_error_shows_as_text_and_runs_nothing(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    pending = scene.dispatcher.dispatch(observed.doomed, {"note": SCRIPT}, queue=PARKED)
    dead = scene.dispatcher.dispatch(observed.doomed, {"note": SCRIPT})
    wait_for(lambda: scene.state(dead) is JobState.DEAD, "the doomed job to die")

    browser.get(scene.base + f"/jobs/{pending}")
    payload = text(browser, By.ID, "payload")
    source = browser.page_source
    browser.get(scene.base + f"/dead?queue={observed.QUEUE}")
    error_text = text(browser, By.CSS_SELECTOR, "td.error-text")

    assert SCRIPT in payload
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert f"doomed: {SCRIPT}" in error_text
    assert not alert_opened(browser)


def test_a_post_without_the_csrf_token_is_refused(scene: Scene, browser: webdriver.Chrome) -> None:
    scene.dispatcher.dispatch(observed.ok, {"n": 2}, queue=PARKED)
    browser.get(scene.base + "/queues")

    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/api/queues/{PARKED}/pause', {{method: 'POST'}}).then(r => done(r.status));"
    )
    request = urllib.request.Request(scene.base + f"/queues/{PARKED}/purge", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, data=b"back=/queues", timeout=5)

    assert status == 403
    assert refused.value.code == 403
    stats = scene.queue.stats(PARKED)
    assert not stats.paused
    assert stats.ready >= 1


def test_the_workers_page_shows_the_live_worker_and_the_job_it_runs(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    job_id = scene.dispatcher.dispatch(observed.slow, {"seconds": 2.0})
    browser.get(scene.base + "/workers")

    wait_until(browser, lambda d: "obs.slow" in text(d, By.CSS_SELECTOR, "td.running"))
    shoot(browser, "workers")
    click(browser, By.LINK_TEXT, "obs.slow")

    wait_until(browser, lambda d: text(d, By.ID, "job-state") in ("active", "completed"))
    assert job_id in browser.current_url


def test_a_stored_schedule_is_listed_paused_and_resumed_by_a_click(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    first = scene.queue.poll((), 0).now + timedelta(hours=1)
    entry = ScheduleEntry(f"report {SCRIPT}", PARKED, "0 3 * * * (UTC)", first)
    scene.queue.sync_schedules([entry], redefine=False)

    browser.get(scene.base + "/schedules")
    row = f"//tr[td/code[text()='{entry.name}']]"
    listed = text(browser, By.XPATH, row)
    click(browser, By.XPATH, f"{row}//button[text()='Pause']")
    wait_until(browser, lambda d: "paused schedule report" in text(d, By.CLASS_NAME, "note"))
    paused = scene.queue.schedule_states().states
    click(browser, By.XPATH, f"{row}//button[text()='Resume']")
    wait_until(browser, lambda d: "resumed schedule report" in text(d, By.CLASS_NAME, "note"))
    resumed = scene.queue.schedule_states().states

    assert "0 3 * * * (UTC)" in listed
    assert "active" in listed
    assert [(s.name, s.paused) for s in paused] == [(entry.name, True)]
    assert [(s.name, s.paused) for s in resumed] == [(entry.name, False)]
    assert not alert_opened(browser)


def test_no_page_or_api_answer_holds_the_redis_password(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    job_id = scene.dispatcher.dispatch(observed.ok, {"n": 3}, queue=PARKED)
    pages = ["/queues", f"/queues/{PARKED}", "/workers", "/dead", f"/jobs/{job_id}", "/jobs/no"]
    pages += ["/schedules"]
    apis = ["/api/queues", "/api/workers", "/api/dead", f"/api/jobs/{job_id}", "/api/history"]
    apis += ["/api/schedules"]
    seen = []
    for path in pages:
        browser.get(scene.base + path)
        seen.append(browser.page_source)
    for path in apis:
        seen.append(http_get(scene.base + path))

    assert all(PASSWORD not in text for text in seen)
    assert json.loads(seen[len(pages)])["queues"]


def test_a_public_bind_without_a_token_exits_2_naming_the_variable(scene: Scene) -> None:
    env = {"REDIS_URL": scene.url, "FOUNDRY_DASHBOARD_TOKEN": ""}

    result = run_foundry("dashboard", "--host", "0.0.0.0", "--port", "0", env=env)

    assert result.returncode == 2
    assert "refusing to serve the dashboard on 0.0.0.0" in result.stderr
    assert "FOUNDRY_DASHBOARD_TOKEN" in result.stderr


def test_a_port_already_taken_exits_2_naming_it(scene: Scene) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_foundry("dashboard", "--port", str(port), env={"REDIS_URL": scene.url})

    assert result.returncode == 2, result.stderr
    assert (
        f"cannot serve the dashboard on 127.0.0.1:{port} (Address already in use" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_batch_shows_its_progress_and_is_cancelled_by_a_confirmed_click(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    batch_id = f"album-{secrets.token_hex(4)}"
    jobs = [Job("parked.resize", queue=PARKED) for _ in range(3)]
    scene.queue.enqueue_batches(
        [Batch(jobs, {Callback.FINALLY: Job("done", queue=PARKED)}, id=batch_id)]
    )

    browser.get(scene.base + f"/batches?queue={PARKED}")
    row = text(browser, By.ID, f"batch-{batch_id}")
    shoot(browser, "batches")
    click(browser, By.XPATH, f"//tr[@id='batch-{batch_id}']//button[text()='Cancel']")
    WebDriverWait(browser, 20).until(alert_opened)
    browser.switch_to.alert.accept()
    wait_until(
        browser,
        lambda d: f"batch {batch_id} is cancelled" in text(d, By.CLASS_NAME, "note"),
    )

    assert "0/3" in row
    assert "running" in row
    record = scene.queue.batch(batch_id, PARKED)
    assert record is not None
    assert (record.state, record.progress.cancelled) == ("cancelled", 3)
    assert "cancelled" in text(browser, By.ID, f"batch-{batch_id}")


def test_delete_on_a_job_page_drawn_while_pending_leaves_the_job_that_died_since(
    scene: Scene, browser: webdriver.Chrome
) -> None:
    job_id = f"stale-{secrets.token_hex(4)}"
    scene.queue.enqueue(Job("parked.task", id=job_id, queue=PARKED, priority=9))
    browser.get(scene.base + f"/jobs/{job_id}")
    [lease] = scene.queue.claim(ClaimRequest([PARKED], lease=timedelta(seconds=30)))
    assert lease.job_id == job_id  # the page still offers "Delete this pending job?"
    scene.queue.fail(lease, ErrorInfo("builtins.ValueError", "gone"), Dead("gave up"))

    click(browser, By.XPATH, "//button[text()='Delete']")
    WebDriverWait(browser, 20).until(alert_opened)
    browser.switch_to.alert.accept()
    wait_until(browser, lambda d: "is dead now" in text(d, By.CLASS_NAME, "error-message"))

    assert scene.state(job_id) is JobState.DEAD
