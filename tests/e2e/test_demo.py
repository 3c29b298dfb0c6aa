"""``foundry demo`` as a user runs it: a real process, the prefork pool, every job accounted."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "from foundry.entrypoints.cli import main; main()"


def unique_prefix() -> str:
    """A key prefix no other test uses, so tests share one Redis safely."""
    return f"e2e{secrets.token_hex(5)}"


def run_foundry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``foundry ARGS`` in a fresh Python process, from the repository root."""
    environ = {**os.environ, "FOUNDRY_LOG_LEVEL": "WARNING", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from foundry.entrypoints.cli import main; main()", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
def test_demo_on_memory_exits_0_with_every_job_accounted_for() -> None:
    result = run_foundry("demo", "--jobs", "40", env={"QUEUE_DRIVER": "memory"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every job accounted for: 40 enqueued, 40 finished" in result.stdout
    assert "accounted for        │ 40 of 40" in result.stdout
    assert "PermanentFailure" in result.stdout


@pytest.mark.slow
@pytest.mark.redis
def test_demo_on_redis_exits_0_with_every_job_accounted_for(redis_url: str) -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_URL": redis_url, "QUEUE_PREFIX": unique_prefix()}

    result = run_foundry("demo", "--jobs", "40", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "every job accounted for: 40 enqueued, 40 finished" in result.stdout


@pytest.mark.slow
def test_demo_says_first_which_jobs_fail_on_purpose_and_does_not_log_their_retries() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "FOUNDRY_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "demo", "--jobs", "40"],
        cwd=ROOT,
        env={**environ, "QUEUE_DRIVER": "memory"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # as a user runs it: no log level given

    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("note: 2 job(s) fail on purpose and succeed on retry (3 retried")
    assert " failed (" not in result.stderr  # no WARNING line per intended retry
    assert "WARNING" not in result.stderr
    assert re.search(r"retried \(attempts\)\W+3\b", result.stdout)  # as many as the note said
