"""The example apps under examples/, each run by its own framework's test tool against a
throwaway Redis: a request dispatches a job that a real ``foundry work --burst`` runs; a
request whose transaction rolls back dispatches nothing; a committed one dispatches once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(command: list[str], cwd: Path, redis_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": unique_prefix("example"),
        "SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "SHOP_TEST_DATABASE": str(tmp_path / "shop-test.sqlite3"),
    }
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_django_example_passes_djangos_test_runner(redis_url: str, tmp_path: Path) -> None:
    _run([sys.executable, "manage.py", "test", "shop"], EXAMPLES / "django", redis_url, tmp_path)


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_example_passes_its_test_client_suite(
    framework: str, redis_url: str, tmp_path: Path
) -> None:
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shop.py"]
    _run(pytest_run, EXAMPLES / framework, redis_url, tmp_path)
