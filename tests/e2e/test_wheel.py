"""Foundry installs from its wheel as one package, beside an app with its own layers.

The wheel is built from a copy of the checkout and installed into a fresh virtualenv. The
dependencies come from the dev environment's site-packages, listed in a ``.pth`` file: a path
line puts that directory on ``sys.path``, but the ``.pth`` files inside it (the editable
install of this checkout among them) are not run, so ``foundry`` can only come from the wheel.

An app with top-level ``domain``, ``application``, ``ports``, ``adapters`` and ``entrypoints``
packages then dispatches jobs and drains them with the wheel's ``foundry`` console script. Had
the wheel shipped any of those names at the top level, the app and Foundry would take each
other's modules: whichever imports first owns ``domain`` in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

import foundry
from tests.e2e.test_demo import unique_prefix

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]
LAYERS = ("domain", "application", "ports", "adapters", "entrypoints")
QUEUE = "wheel"
#: What a checkout holds beside the sources; the wheel is built from a copy without it.
NOT_SOURCES = (
    ".git",
    ".venv",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    ".*_cache",
    ".hypothesis",
    "results",
)

APP = {
    "domain/__init__.py": '"""The app\'s domain layer."""\nOWNER = "app"\n',
    "domain/models.py": (
        "from dataclasses import dataclass\n\n\n"
        "@dataclass(frozen=True)\n"
        "class User:\n"
        "    name: str\n\n"
        "    def greeting(self) -> str:\n"
        '        return f"hello {self.name}"\n'
    ),
    **{f"{layer}/__init__.py": 'OWNER = "app"\n' for layer in LAYERS[1:]},
    "myapp/__init__.py": "",
    "myapp/jobs.py": (
        "import json\n"
        "import os\n\n"
        "import adapters, application, entrypoints, ports\n"
        "import foundry\n"
        "from domain.models import User\n\n"
        "registry = foundry.JobRegistry()\n\n\n"
        f'@registry.job(name="app.greet", queue="{QUEUE}")\n'
        "def greet(name: str) -> None:\n"
        "    layers = [m.OWNER for m in (application, ports, adapters, entrypoints)]\n"
        '    line = {"greeting": User(name).greeting(), "foundry": foundry.__file__, '
        '"layers": layers}\n'
        '    with open(os.environ["APP_LEDGER"], "a", encoding="utf-8") as ledger:\n'
        '        ledger.write(json.dumps(line) + "\\n")\n'
    ),
    "producer.py": (
        "import json\n"
        "import sys\n\n"
        "import domain.models\n"
        "import foundry\n"
        "from myapp.jobs import greet, registry\n\n"
        "with foundry.connect() as fx:\n"
        '    ids = fx.dispatcher(registry).dispatch_many([(greet, {"name": n}) '
        "for n in sys.argv[1:]])\n"
        'print(json.dumps({"ids": ids, "foundry": foundry.__file__, '
        '"domain": domain.models.__file__}))\n'
    ),
}


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run ``args`` without the test's ``PYTHONPATH``; its stdout, or fail with its output."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**environ, "FOUNDRY_LOG_LEVEL": "WARNING", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this checkout (setuptools builds in the source tree)."""
    source = tmp_path_factory.mktemp("source") / "foundry"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "--no-index", "-w", str(out), str(source)])
    (built,) = out.glob("*.whl")
    return built


def fresh_venv(root: Path, wheel: Path) -> Path:
    """A virtualenv at ``root`` with ``wheel`` installed and the dev environment's libraries."""
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run([str(python), "-c", query]).strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "dev-libraries.pth").write_text("".join(f"{path}\n" for path in ours))
    # --ignore-installed: the dev environment's record of the editable install is visible.
    install = ["-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed"]
    run([str(python), *install, str(wheel)])
    return site


#: Suffixes of the source files the wheel must carry: code, Lua, the dashboard's templates.
SHIPPED = {".py", ".lua", ".html", ".css", ".js"}


def test_the_wheel_holds_the_foundry_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    sources = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "foundry").rglob("*")
        if path.suffix in SHIPPED and "__pycache__" not in path.parts
    }

    assert {name.split("/")[0] for name in names} == {"foundry", f"foundry-{VERSION}.dist-info"}
    assert {name for name in names if name.endswith(tuple(SHIPPED))} == sources
    assert any(name.startswith("foundry/adapters/redis/lua/") for name in sources)
    assert "foundry/entrypoints/dashboard/templates/base.html" in sources
    assert "foundry/py.typed" in names
    entry_points = zipfile.ZipFile(wheel).read(f"foundry-{VERSION}.dist-info/entry_points.txt")
    assert "foundry = foundry.entrypoints.console:main" in entry_points.decode()


def test_an_app_with_its_own_layer_packages_runs_on_the_installed_wheel(
    wheel: Path, tmp_path: Path, redis_url: str
) -> None:
    root = tmp_path / "venv"
    site = fresh_venv(root, wheel)
    app = tmp_path / "app"
    for name, text in APP.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text, encoding="utf-8")
    ledger = tmp_path / "ledger"
    prefix = unique_prefix()
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "APP_LEDGER": str(ledger)}
    names = [f"user{n}" for n in range(12)]

    produced = json.loads(run([str(root / "bin" / "python"), "producer.py", *names], app, env))
    worker = [str(root / "bin" / "foundry"), "work", "--app", "myapp.jobs:registry", "--burst"]
    run([*worker, "--concurrency", "2"], app, env)

    installed = str(site / "foundry" / "__init__.py")
    assert not [layer for layer in LAYERS if (site / layer).exists()]
    assert (produced["foundry"], produced["domain"]) == (installed, str(app / "domain/models.py"))
    lines = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["greeting"] for line in lines) == sorted(f"hello {n}" for n in names)
    assert {line["foundry"] for line in lines} == {installed}
    assert all(line["layers"] == ["app"] * 4 for line in lines)
    settings = foundry.Settings(redis_url=redis_url, queue_prefix=prefix)
    with foundry.connect(settings) as fx:
        records = [fx.queue.get(job_id, QUEUE) for job_id in produced["ids"]]
        stats = fx.queue.stats(QUEUE)
    assert [r.state if r else None for r in records] == [foundry.JobState.COMPLETED] * 12
    assert (stats.pending, stats.active, stats.dead, stats.completed) == (0, 0, 0, 12)
