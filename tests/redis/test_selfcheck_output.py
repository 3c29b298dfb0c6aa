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


def _foundry(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, "QUEUE_PREFIX": unique_prefix("sc")}
    return subprocess.run(
        [sys.executable, "-c", "from foundry.entrypoints.cli import main; main()", *args],
        env={**env, "PYTHONPATH": str(ROOT)},
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
