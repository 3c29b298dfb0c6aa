"""The ``foundry`` command's stand-in for ``asyncio`` (``entrypoints.drivers``): the names
redis-py and dependency_injector take at their import come from asyncio's own submodules, the
package's code runs at the first other use, and from then on it is the module a plain
``import asyncio`` gives.

Each case runs in a fresh interpreter: the stand-in lives in ``sys.modules``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from tests.process_support import python_lines

QUEUE = "deferred"
LEDGER = "FOUNDRY_DEFERRED_LEDGER"
JOBS = 6

#: What the worker's parent imports before it forks: the command's stand-ins, then its CLI.
_WORKER = (
    "import sys\n"
    "from foundry.entrypoints.drivers import import_redis\n"
    "import_redis()\n"
    "import foundry.entrypoints.cli.work\n"
)
_LISTING = (
    "import asyncio\n"
    "print(sorted(dir(asyncio)))\n"
    "print(asyncio.__all__, asyncio.__doc__ is not None)\n"
)


def test_the_worker_imports_without_running_asyncio_and_its_names_are_the_packages() -> None:
    lines = python_lines(
        _WORKER + "import asyncio\n"
        "from redis._parsers import base\n"
        "print('asyncio.base_events' in sys.modules)\n"
        "print(base.StreamReader is asyncio.StreamReader is asyncio.streams.StreamReader,\n"
        "      base.IncompleteReadError is asyncio.exceptions.IncompleteReadError)\n"
        # subclassed, as redis-py's asyncio client does (``_UncancellableFuture``)
        "class Held(asyncio.Future): pass\n"
        "print(issubclass(Held, asyncio.futures.Future),\n"
        "      isinstance(asyncio.Lock(), asyncio.locks.Lock),\n"
        "      'asyncio.base_events' in sys.modules)\n"
        "async def answer(): return 42\n"
        "print(asyncio.run(answer()), 'asyncio.base_events' in sys.modules)\n"
        "print(asyncio.StreamReader is base.StreamReader, Held.__mro__[1] is asyncio.Future)\n"
        "print(hasattr(asyncio, 'no_such_name'))\n" + _LISTING
    )
    plain = python_lines("import redis, foundry.entrypoints.cli.work\n" + _LISTING)

    assert lines[:6] == [
        "False",
        "True True",
        "True True False",
        "42 True",
        "True True",
        "False",
    ]
    assert lines[6:] == plain


def test_dir_runs_the_package_first() -> None:
    lines = python_lines(_WORKER + _LISTING)
    plain = python_lines("import redis, foundry.entrypoints.cli.work\n" + _LISTING)

    assert lines == plain


def test_a_process_that_imported_asyncio_first_keeps_it() -> None:
    lines = python_lines(
        "import asyncio\n" + _WORKER + "print(sys.modules['asyncio'] is asyncio,\n"
        "      '__getattr__' in vars(asyncio), 'asyncio.base_events' in sys.modules)\n"
    )

    assert lines == ["True False True"]


# The app of the next test: async handlers that a memory queue's worker runs in its children.
registry = JobRegistry()


@registry.job(name="deferred.stamp", queue=QUEUE)
async def stamp(n: int) -> None:
    """Record which event loop ran job ``n``."""
    import asyncio  # noqa: PLC0415 - the module the handler finds in its process

    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"{n} {isinstance(loop, asyncio.AbstractEventLoop)}\n")


def with_jobs(container: Any) -> JobRegistry:
    """The registry, after dispatching ``JOBS`` stamps into the container's memory queue; the
    ledger's first line says whether the parent had run asyncio's package by then."""
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"parent ran asyncio: {'asyncio.base_events' in sys.modules}\n")
    dispatcher = Dispatcher(container.queue(), registry, container.clock())
    dispatcher.dispatch_many([(stamp, {"n": n}) for n in range(JOBS)])
    return registry


@pytest.mark.slow
def test_the_command_runs_async_handlers_in_its_children(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    command = Path(sys.executable).parent / "foundry"
    environ = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    environ |= {LEDGER: str(ledger), "QUEUE_DRIVER": "memory", "FOUNDRY_LOG_LEVEL": "WARNING"}
    app = f"{__name__}:with_jobs"

    result = subprocess.run(
        [str(command), "work", "--app", app, "--burst", "--concurrency", "2"],
        env=environ,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    first, *runs = ledger.read_text().splitlines()
    assert first == "parent ran asyncio: False"
    assert sorted(runs) == [f"{n} True" for n in range(JOBS)]


def test_each_name_taken_alone_is_the_one_the_package_binds() -> None:
    import asyncio  # noqa: PLC0415 - the real package, in this process
    import importlib  # noqa: PLC0415

    from foundry.entrypoints.drivers import _ASYNCIO_NAMES  # noqa: PLC0415

    for name, submodule in _ASYNCIO_NAMES.items():
        taken = getattr(importlib.import_module(f"asyncio.{submodule}"), name)
        assert taken is getattr(asyncio, name), name
