"""What the self-check says on a stock Redis (no appendonly): each warning once, and with
--strict one line saying what to set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import unique_prefix

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def _foundry(
    redis_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, "QUEUE_PREFIX": unique_prefix("sc")}
    return subprocess.run(
        [sys.executable, "-c", "from foundry.entrypoints.cli import main; main()", *args],
        env={**base, **(env or {}), "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "command", [("check",), ("work", "--app", "tests.e2e.apps:registry", "--burst")]
)
def test_each_self_check_warning_is_said_once(redis_url: str, command: tuple[str, ...]) -> None:
    done = _foundry(redis_url, *command)

    assert done.returncode == 0, done.stderr
    assert done.stderr.count("appendonly is off") == 1, done.stderr


def test_strict_says_in_one_line_what_to_set(redis_url: str) -> None:
    done = _foundry(redis_url, "check", "--strict")

    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --strict and")
    assert "set appendonly yes" in last


@pytest.mark.parametrize(
    "command", [("check",), ("work", "--app", "tests.e2e.apps:registry", "--burst")]
)
def test_a_least_privilege_user_runs_and_is_told_what_could_not_be_inspected(
    redis_acl_url: str, command: tuple[str, ...]
) -> None:
    env = {"QUEUE_PREFIX": f"foundry:{unique_prefix('acl')}", "CACHE_PREFIX": "foundry_cache:acl"}

    done = _foundry(redis_acl_url, *command, env=env)

    assert done.returncode == 0, done.stderr
    assert "could not inspect Redis: this user may not run INFO" in done.stderr
    assert "no permissions to run the 'info' command" in done.stderr
    assert "unreachable" not in done.stderr
