"""The example apps under examples/, each run by its own framework's test tool against a
throwaway Redis: a request dispatches a job that a real ``foundry work --burst`` runs; a
request whose transaction rolls back dispatches nothing; a committed one dispatches once."""

from __future__ import annotations

import json
import os
import shlex
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


#: A sign-up on the app as its README starts it (``flask run``, ``uvicorn``), on a database
#: nobody prepared, the framework's own client standing in for curl; prints the answer.
FIRST_SIGNUP = {
    "flask": (
        "from shop import create_app\n"
        "answer = create_app().test_client().post('/signup', data={'email': 'ann@example.com'})\n"
        "print(answer.status_code, answer.get_json()['job'])\n"
    ),
    "fastapi": (
        "from fastapi.testclient import TestClient\n"
        "from shop import app\n"
        "with TestClient(app) as client:\n"
        "    answer = client.post('/signup', json={'email': 'ann@example.com'})\n"
        "print(answer.status_code, answer.json()['job'])\n"
    ),
}


def _readme_worker(framework: str) -> tuple[dict[str, str], list[str]]:
    """The README's ``foundry work`` line: its variables, and the command's arguments."""
    readme = (EXAMPLES / framework / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if "foundry work --app" in line]
    words = shlex.split(line.split("#")[0])
    leading = [word for word in words[: words.index("foundry")] if "=" in word]
    return dict(word.split("=", 1) for word in leading), words[words.index("foundry") + 1 :]


def _in(here: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=here, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("framework", ["fastapi", "flask"])
def test_the_example_s_readme_steps_run_its_first_signup_s_job(
    framework: str, redis_url: str, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key != "QUEUE_PREFIX"}
    env |= {"REDIS_URL": redis_url, "SHOP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}"}
    here = EXAMPLES / framework
    assignments, arguments = _readme_worker(framework)
    worker_env = env | assignments
    foundry = str(Path(sys.executable).with_name("foundry"))

    signup = _in(here, env, sys.executable, "-c", FIRST_SIGNUP[framework])
    assert signup.returncode == 0, signup.stderr  # the shop made its table on its first run
    status, job_id = signup.stdout.split()
    worked = _in(here, worker_env, foundry, *arguments)
    shown = _in(here, worker_env, foundry, "job", "show", job_id, "--json")

    assert status == "201", signup.stderr
    assert worked.returncode == 0, worked.stderr
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "completed"
