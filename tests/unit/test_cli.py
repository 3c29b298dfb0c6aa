import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.domain import Dead, ErrorInfo, Job, RunAfter
from foundry.entrypoints.cli import cli
from foundry.entrypoints.cli.common import Exit
from foundry.entrypoints.container import build_container
from foundry.entrypoints.settings import Settings
from foundry.ports import ClaimRequest, QueueStats, WorkerInfo
from tests.backends import RequeuedOnRead
from tests.cli_support import container_for, invoke
from tests.redis_server import RedisServer


def test_a_bad_variable_exits_2_naming_it() -> None:
    result = CliRunner().invoke(cli, ["stats"], env={"QUEUE_DRIVER": "sqs"})

    assert result.exit_code == 2
    assert "QUEUE_DRIVER='sqs'" in result.stderr
    assert "'memory', 'redis' or 'postgres'" in result.stderr


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    for command in ("enqueue", "stats", "failed", "queue", "check"):
        assert command in result.stdout
    assert "130" in result.stdout
    assert "3    a backend (Redis, PostgreSQL; queue or cache) is unreachable" in result.stdout


def test_enqueue_into_a_private_memory_queue_is_refused_because_the_job_would_vanish() -> None:
    container = build_container(Settings())

    result = invoke(container, "enqueue", "x")

    assert result.exit_code == 2
    assert "QUEUE_DRIVER=redis" in result.stderr


def test_check_on_memory_prints_the_configuration_and_passes() -> None:
    container = container_for(MemoryQueue(ManualClock()), ManualClock())

    result = invoke(container, "check")

    assert result.exit_code == 0, result.output
    assert "QUEUE_DRIVER" in result.stdout
    assert "ok" in result.stdout


@pytest.mark.redis
def test_check_passes_for_a_reachable_redis_cache(redis_url: str) -> None:
    settings = Settings.from_env({"CACHE_DRIVER": "redis", "REDIS_URL": redis_url})
    container = build_container(settings)

    result = invoke(container, "check")

    assert result.exit_code == 0, result.output
    assert "CACHE_DRIVER" in result.stdout


@pytest.mark.redis
def test_check_fails_clearly_for_an_unreachable_redis_cache(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    settings = Settings.from_env({"CACHE_DRIVER": "redis", "REDIS_URL": server.url})

    result = invoke(build_container(settings), "check")

    assert result.exit_code == 3
    assert "REDIS_URL" in result.stderr


@pytest.mark.redis
def test_check_reports_the_queue_redis_and_its_warnings(redis_url: str) -> None:
    settings = Settings.from_env({"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url})

    result = invoke(build_container(settings), "check")
    strict = invoke(build_container(settings), "check", "--strict")

    assert result.exit_code == 0, result.output
    assert "Redis self-check" in result.stdout
    assert "appendonly is off" in result.stderr  # the throwaway server has no persistence
    assert strict.exit_code == 1
    assert "--strict" in strict.stderr


@pytest.mark.redis
def test_check_exits_3_when_the_queue_redis_is_down(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    settings = Settings.from_env({"QUEUE_DRIVER": "redis", "REDIS_URL": server.url})

    result = invoke(build_container(settings), "check")

    assert result.exit_code == 3
    assert "REDIS_URL" in result.stderr


@pytest.mark.redis
def test_enqueue_while_redis_is_down_exits_3_with_the_id_to_retry_safely(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    server.kill()
    settings = Settings.from_env({"QUEUE_DRIVER": "redis", "REDIS_URL": server.url})

    failed = invoke(build_container(settings), "enqueue", "shop.mail")
    job_id = re.search(r"--id (\S+)", failed.stderr)
    server.start()
    retried = invoke(build_container(settings), "enqueue", "shop.mail", "--id", job_id[1])  # type: ignore[index]

    assert failed.exit_code == 3
    assert job_id is not None
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.strip() == job_id[1]


def test_stats_on_a_private_memory_queue_says_why_it_is_empty() -> None:
    result = invoke(build_container(Settings()), "stats")

    assert result.exit_code == 0
    assert "QUEUE_DRIVER=redis" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["failed", "list"],
        ["failed", "show", "j1"],
        ["job", "show", "j1"],
        ["batch", "list"],
        ["batch", "show", "b1"],
    ],
)
def test_reading_a_private_memory_queue_says_why_nothing_is_found(args: list[str]) -> None:
    result = invoke(build_container(Settings()), *args)

    assert "QUEUE_DRIVER is memory" in result.stderr, result.output
    assert "QUEUE_DRIVER=redis" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["failed", "retry", "--all", "--queue", "emial"], 1),  # an action: refused
        (["failed", "purge", "--queue", "emial"], 1),
        (["queue", "purge", "emial"], 1),
        (["stats", "--queue", "emial"], 0),  # a read: noted
        (["failed", "list", "--queue", "emial"], 0),
        (["batch", "list", "--queue", "emial"], 0),
    ],
)
def test_a_queue_that_never_held_a_job_is_named_with_the_known_ones(
    args: list[str], code: int
) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", queue="email"))

    result = invoke(container_for(queue, clock), *args)

    assert result.exit_code == code, result.output
    assert "queue 'emial' has never held a job (known: email)" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["job", "show", "m1"], ["reports[/]", "mod.Err[/]", "worker=w[red]"]),
        (["failed", "show", "m1"], ["reports[/]", "mod.Err[/]", "worker=w[red]"]),
        (["failed", "list"], ["reports[/]", "mod.Err[/]"]),
        (["stats"], ["[b]w", "[i]host"]),
    ],
)
def test_names_holding_brackets_are_printed_as_they_are(
    args: list[str], expected: list[str]
) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("reports[/]", id="m1", queue="mk"))
    [lease] = queue.claim(ClaimRequest(["mk"], lease=timedelta(seconds=30), worker="w[red]"))
    queue.fail(lease, ErrorInfo("mod.Err[/]", "it broke", "tb", worker="w[red]"), Dead("gave up"))
    info = WorkerInfo("[b]w", "[i]host", 1, ("mk",), 1, clock.now(), clock.now())
    queue.heartbeat(info, timedelta(minutes=1))

    result = invoke(container_for(queue, clock), *args)

    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["job", "show", "a[/]"],
        ["job", "cancel", "a[/]"],
        ["failed", "show", "a[/]"],
        ["failed", "retry", "ok", "a[/]"],
        ["failed", "forget", "a[/]"],
        ["batch", "show", "a[/]"],
        ["batch", "cancel", "a[/]"],
    ],
)
def test_an_id_that_no_job_can_have_is_refused_naming_the_rule(args: list[str]) -> None:
    clock = ManualClock()

    result = invoke(container_for(MemoryQueue(clock), clock), *args)

    assert result.exit_code == 2, result.output
    what = "batch id" if args[0] == "batch" else "job id"
    assert f"'a[/]' is not a {what} (1-64 letters, digits or '_.:-')" in result.stderr


@pytest.mark.parametrize(
    "command", [["job", "show"], ["failed", "retry"], ["failed", "forget"], ["batch", "show"]]
)
def test_an_id_beginning_with_a_dash_is_shown_how_to_pass(command: list[str]) -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", id="-Xyz0"))
    box = container_for(queue, clock)

    refused = invoke(box, *command, "-Xyz0")
    shown = invoke(box, "job", "show", "--", "-Xyz0")

    assert refused.exit_code == 2, refused.output
    assert f"foundry {' '.join(command)} -- -Xyz0" in refused.stderr
    assert shown.exit_code == 0, shown.output


def test_job_show_says_which_jobs_a_waiting_job_waits_for() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue_many([Job("a", id="first"), Job("b", id="then", after=("first",))])

    shown = invoke(container_for(queue, clock), "job", "show", "then")

    assert shown.exit_code == 0, shown.output
    assert "waits for: first" in shown.stdout


ROOT = Path(__file__).resolve().parents[2]


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _modules_loaded_by(script: str) -> set[str]:
    """The module names ``script`` prints (it ends by printing ``sorted(sys.modules)``)."""
    result = _python("-c", script)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_cli_runs_as_a_module_too() -> None:
    version = _python("-m", "foundry.entrypoints.cli", "--version")
    unknown = _python("-m", "foundry.entrypoints.cli", "nonsense")

    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("foundry, version ")
    assert unknown.returncode == 2
    assert "No such command 'nonsense'" in unknown.stderr


def test_work_imports_neither_the_other_commands_nor_what_only_they_use() -> None:
    # Worker startup is import-bound: this guards the diet, not a timing.
    script = (
        "import sys, click; from foundry.entrypoints.cli import cli; "
        "cli.get_command(click.Context(cli), 'work'); print(' '.join(sorted(sys.modules)))"
    )
    loaded = _modules_loaded_by(script)

    assert "foundry.entrypoints.cli.work" in loaded
    for unwanted in (
        "rich",
        "psutil",
        "fastapi",  # dependency_injector's wiring imports these where installed (the dev
        "starlette",  # extras install them); foundry.entrypoints.injection hides them
        "werkzeug",
        "pydantic",  # imported by dependency_injector to learn it is not pydantic 1: hidden too
        "foundry.entrypoints.cli.demo",
        "foundry.entrypoints.cli.check",
        "loguru",  # loaded when a handler's module imports it, or a traceback is written
    ):
        assert unwanted not in loaded
    assert not {name for name in loaded if name.startswith("foundry.adapters.memory")}
    assert "foundry.adapters.redis.cache" not in loaded
    assert "foundry.adapters.redis.sentinel" not in loaded  # only for redis+sentinel:// URLs
    assert "foundry.adapters.postgres.config" not in loaded  # only where PostgreSQL is used


def test_a_worker_whose_app_declares_no_schedule_loads_no_schedule_code() -> None:
    # The cron library, time zones and the schedule classes load at the first declaration.
    script = (
        "import sys, click; from foundry.entrypoints.cli import cli; "
        "cli.get_command(click.Context(cli), 'work'); "
        "from foundry.application.registry import JobRegistry; "
        "JobRegistry().job(name='noop')(print); print(' '.join(sorted(sys.modules)))"
    )

    loaded = _modules_loaded_by(script)

    for unwanted in (
        "zoneinfo",
        "foundry.domain.periodic",
        "foundry.domain.recurring",
        "foundry.application.schedules.cron",
        "foundry.application.schedules.scheduler",
        "foundry.ports.schedule_types",
    ):
        assert unwanted not in loaded


def test_a_worker_and_a_dispatcher_without_batches_load_no_batch_nor_inspection_code() -> None:
    # What a worker builds before it forks, and a Dispatcher over the Redis queue (neither
    # connects): batches, the admin operations and the value types only they use load at
    # their first use, not at startup.
    script = (
        "import sys, click; from foundry.entrypoints.cli import cli\n"
        "cli.get_command(click.Context(cli), 'work')\n"
        "from foundry.adapters.clock import SystemClock\n"
        "from foundry.application.dispatcher import Dispatcher\n"
        "from foundry.application.registry import JobRegistry\n"
        "from foundry.entrypoints.container import build_container\n"
        "from foundry.entrypoints.settings import Driver, Settings\n"
        "box = build_container(Settings(queue_driver=Driver.REDIS))\n"
        "registry = JobRegistry(); registry.job(name='noop')(print)\n"
        "Dispatcher(box.queue(), registry, SystemClock(), batches=box.batches())\n"
        "print(' '.join(sorted(sys.modules)))"
    )

    loaded = _modules_loaded_by(script)

    assert "foundry.adapters.redis.queue" in loaded
    for unwanted in (
        "foundry.domain.batch",
        "foundry.ports.batch_types",
        "foundry.application.batches",
        "foundry.adapters.redis.batches",
        "foundry.adapters.redis.batch_plan",
        "foundry.adapters.redis.admin",
        "foundry.adapters.redis.listing",
        "foundry.adapters.redis.overview",
        "foundry.ports.inspection",
        "foundry.ports.cache_types",
    ):
        assert unwanted not in loaded


def test_an_app_that_wires_fastapi_after_foundry_still_gets_its_dependencies() -> None:
    # The frameworks hidden from dependency_injector's import are taught to its wiring when
    # the app imports them: Depends(Provide[...]) markers resolve, Flask's proxies are skipped.
    script = (
        "import sys\n"
        "from foundry.entrypoints import container\n"
        "assert 'fastapi' not in sys.modules\n"
        "from dependency_injector import containers, providers\n"
        "from dependency_injector.wiring import Provide, inject\n"
        "from fastapi import Depends\n"
        "import flask\n"
        "class Box(containers.DeclarativeContainer):\n"
        "    greeting = providers.Object('hello')\n"
        "@inject\n"
        "def endpoint(word: str = Depends(Provide[Box.greeting])) -> str:\n"
        "    return word\n"
        "proxy = flask.request\n"
        "box = Box()\n"
        "box.wire(modules=[sys.modules[__name__]])\n"
        "print(endpoint())\n"
    )
    result = _python("-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hello"]


def test_the_console_script_loads_neither_loguru_nor_opentelemetry_and_collects_again() -> None:
    script = (
        "import sys\n"
        "sys.argv = ['foundry', '--version']\n"
        "from foundry.entrypoints.console import main\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    print('exit', stop.code)\n"
        "print('loguru' in sys.modules, 'opentelemetry' in sys.modules, 'redis' in sys.modules)\n"
        "import gc\n"
        "print('collecting', gc.isenabled())\n"
    )
    result = _python("-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["exit 0", "False False True", "collecting True"]
    assert result.stdout.startswith("foundry, version ")


@pytest.mark.parametrize(
    "args",
    [
        ("--log-level", "ERROR", "failed", "list"),
        ("failed", "--log-level", "ERROR", "list"),
        ("failed", "list", "--log-level", "ERROR"),
        ("stats", "--log-level", "warning"),
    ],
)
def test_log_level_is_accepted_before_and_after_the_command(
    args: tuple[str, ...], redis_url: str
) -> None:
    script = "from foundry.entrypoints.cli import main; main()"
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": "log-level-test", "PATH": "/usr/bin:/bin"}

    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 0, done.stderr


def test_failed_forget_leaves_a_letter_requeued_after_it_was_looked_up() -> None:
    clock = ManualClock()
    queue = RequeuedOnRead(clock)
    queue.enqueue(Job("a", id="d0"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
    queue.fail(lease, ErrorInfo("Boom", "broke"), Dead("gave up"))

    result = invoke(container_for(queue, clock), "failed", "forget", "d0")

    assert queue.requeued == ["d0"]
    assert queue.stats("default").ready == 1
    assert result.exit_code == 1, result.output
    assert "forgot 0 dead letter(s) in default" in result.stdout
    assert "not dead letters: d0" in result.stderr


def test_a_queue_paused_ahead_of_its_first_job_shows_in_stats_as_paused() -> None:
    clock = ManualClock()
    box = container_for(MemoryQueue(clock), clock)

    paused = invoke(box, "queue", "pause", "--create", "later")
    shown = invoke(box, "stats", "--json")

    assert paused.exit_code == 0, paused.output
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)["queues"]
    assert (row["queue"], row["paused"]) == ("later", True)
    assert "never held a job" not in invoke(box, "queue", "resume", "later").stderr


class CountingQueue(MemoryQueue):
    """A memory queue counting the per-queue and all-queue stats reads made of it."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.reads: list[str] = []

    def stats(self, queue: str) -> QueueStats:
        """Counted."""
        self.reads.append("stats")
        return super().stats(queue)

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """Counted."""
        self.reads.append("stats_many")
        return super().stats_many(queues)


def test_stats_and_failed_retry_all_read_every_queue_in_one_call() -> None:
    clock = ManualClock()
    queue = CountingQueue(clock)
    queue.enqueue_many([Job("a", queue=f"q{n}") for n in range(5)])
    box = container_for(queue, clock)

    shown = invoke(box, "stats")
    retried = invoke(box, "failed", "retry", "--all", "--yes")

    assert shown.exit_code == 0, shown.output
    assert retried.exit_code == 0, retried.output
    assert queue.reads == ["stats_many", "stats_many"]


def test_job_show_says_when_a_job_was_enqueued_runs_and_ended() -> None:
    clock = ManualClock()
    start = clock.now()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", id="later", schedule=RunAfter(timedelta(hours=1))))
    queue.enqueue(Job("a", id="dead"))
    clock.advance(timedelta(seconds=5))
    [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
    queue.fail(lease, ErrorInfo("Boom", "broke"), Dead("gave up"))
    box = container_for(queue, clock)

    later = invoke(box, "job", "show", "later")
    dead = invoke(box, "job", "show", "dead")

    def at(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")

    runs = start + timedelta(hours=1)
    assert f"enqueued {at(start)}, runs at {at(runs)}" in later.stdout
    assert f"enqueued {at(start)}, ended {at(start + timedelta(seconds=5))}" in dead.stdout


def test_the_stats_table_shows_how_long_each_queue_s_oldest_ready_job_has_waited() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", queue="slow"))
    clock.advance(timedelta(minutes=1, seconds=5))
    queue.enqueue(Job("a", queue="fresh"))
    queue.enqueue(Job("a", queue="idle", schedule=RunAfter(timedelta(hours=1))))

    shown = invoke(container_for(queue, clock), "stats")

    rows = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}
    assert "oldest wait" in shown.stdout
    assert "1m05s" in rows["slow"]
    assert "0m00s" in rows["fresh"]
    assert "m0" not in rows["idle"]


def test_help_and_the_readme_give_the_same_exit_codes_and_3_is_any_backend() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]

    result = CliRunner().invoke(cli, ["--help"])

    codes = {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}
    assert codes == {int(code) for code in Exit}
    helped = dict(re.findall(r"^ +(\d+) +(.*)$", result.stdout, re.M))
    assert {int(code) for code in helped} == codes
    assert "Redis, PostgreSQL" in helped["3"]


def test_the_demo_s_help_says_what_the_readme_says_picks_its_backend() -> None:
    result = CliRunner().invoke(cli, ["demo", "--help"])

    assert "REDIS_URL" in result.stdout
    assert "postgres" in result.stdout


def test_resuming_a_queue_that_never_held_a_job_is_refused_naming_the_known_ones() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.enqueue(Job("a", queue="mail"))

    result = invoke(container_for(queue, clock), "queue", "resume", "mial")

    assert result.exit_code == 1, result.output
    assert "queue 'mial' has never held a job (known: mail)" in result.stderr
    assert queue.queues() == ["mail"]


def test_failed_list_shows_every_queue_s_letters_newest_first_together() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    for job_id, name in (("old-b", "b"), ("mid-a", "a"), ("new-b", "b")):
        queue.enqueue(Job("t", id=job_id, queue=name))
        [lease] = queue.claim(ClaimRequest([name], lease=timedelta(seconds=30)))
        queue.fail(lease, ErrorInfo("Boom", "broke"), Dead("gave up"))
        clock.advance(timedelta(seconds=1))

    shown = invoke(container_for(queue, clock), "failed", "list", "--json")

    assert shown.exit_code == 0, shown.output
    ids = [letter["job"]["id"] for letter in json.loads(shown.stdout)["letters"]]
    assert ids == ["new-b", "mid-a", "old-b"]


def test_failed_list_keeps_the_letters_whose_last_error_type_matches() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    for job_id, error in (("v", "builtins.ValueError"), ("k", "builtins.KeyError")):
        queue.enqueue(Job("t", id=job_id))
        [lease] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=30)))
        queue.fail(lease, ErrorInfo(error, "broke"), Dead("gave up"))

    shown = invoke(container_for(queue, clock), "failed", "list", "--error-type", "valueerror")
    none = invoke(container_for(queue, clock), "failed", "list", "--error-type", "Timeout")

    assert shown.exit_code == 0, shown.output
    ids = [line.split("│")[1].strip() for line in shown.stdout.splitlines() if "│" in line]
    assert ids == ["v"]
    assert "no dead letters in any queue whose last error type contains 'Timeout'" in none.stdout


def test_enqueue_into_a_paused_queue_says_the_job_waits_for_a_resume() -> None:
    clock = ManualClock()
    queue = MemoryQueue(clock)
    queue.pause("mail")
    box = container_for(queue, clock)

    paused = invoke(box, "enqueue", "send", "--queue", "mail")
    running = invoke(box, "enqueue", "send", "--queue", "other")

    assert paused.exit_code == 0, paused.output
    assert "note: queue mail is paused" in paused.stderr
    assert "`foundry queue resume mail`" in paused.stderr
    assert "paused" not in running.stderr
    assert queue.stats("mail").ready == 1
