"""The README's guide works as written: its job module (with the schedule, limit and
middleware sections appended), its dispatch and cache sections, then a burst worker, run on
Redis and on PostgreSQL as a new user would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.postgres_server import ThrowawayDatabase

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False
    )


def _the_guide_runs_as_written(backend: dict[str, str], tmp_path: Path) -> None:
    jobs, dispatch, schedules, limits, middleware, cache = BLOCKS
    assert jobs.startswith("# myapp/jobs.py")
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "jobs.py").write_text("\n".join([jobs, schedules, limits, middleware]))
    (tmp_path / "dispatch.py").write_text(dispatch)
    (tmp_path / "cache.py").write_text(cache)
    prefix = f"guide{uuid.uuid4().hex[:8]}"
    environ = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env = {
        **environ,
        **backend,
        "QUEUE_PREFIX": prefix,
        "CACHE_PREFIX": prefix,
        "PYTHONPATH": str(tmp_path),
    }
    foundry = str(Path(sys.executable).with_name("foundry"))

    dispatched = _run([sys.executable, "dispatch.py"], tmp_path, env)
    cached = _run([sys.executable, "cache.py"], tmp_path, env)
    worked = _run([foundry, "work", "--app", "myapp.jobs:registry", "--burst"], tmp_path, env)

    assert dispatched.returncode == 0, dispatched.stderr
    assert "state=<JobState.READY" in dispatched.stdout
    assert cached.returncode == 0, cached.stderr
    assert worked.returncode == 0, worked.stderr
    assert sorted(re.findall(r"welcome, user \d", worked.stdout)) == [
        f"welcome, user {n}" for n in (1, 2, 3, 7)
    ]


@pytest.mark.redis
def test_the_guide_s_jobs_dispatch_cache_and_worker_run_as_written(
    redis_url: str, tmp_path: Path
) -> None:
    _the_guide_runs_as_written({"REDIS_URL": redis_url}, tmp_path)


@pytest.mark.postgres
def test_the_guide_runs_as_written_on_postgres_after_foundry_migrate(
    postgres_database: ThrowawayDatabase, tmp_path: Path
) -> None:
    backend = {
        "QUEUE_DRIVER": "postgres",
        "CACHE_DRIVER": "postgres",
        "DATABASE_URL": postgres_database.url(),
    }
    foundry = str(Path(sys.executable).with_name("foundry"))
    migrated = _run([foundry, "migrate"], tmp_path, {**os.environ, **backend})
    assert migrated.returncode == 0, migrated.stderr

    _the_guide_runs_as_written(backend, tmp_path)


def test_the_guide_s_handler_names_are_the_ones_it_says(tmp_path: Path) -> None:
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "jobs.py").write_text(BLOCKS[0])
    script = "from myapp.jobs import registry; print(' '.join(registry.names()))"

    names = _run(
        [sys.executable, "-c", script], tmp_path, {**os.environ, "PYTHONPATH": str(tmp_path)}
    )

    assert names.stdout.split() == ["mail.welcome", "myapp.jobs.build_report"]
    assert "`myapp.jobs.build_report`" in (ROOT / "README.md").read_text()
