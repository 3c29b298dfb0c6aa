"""Running ``foundry`` servers in the background for the observability tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def foundry_process(*args: str, env: Mapping[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``foundry ARGS`` in the background; stopped (SIGTERM, then SIGKILL) on exit."""
    environ = {**os.environ, "FOUNDRY_LOG_LEVEL": "WARNING", **env}
    process = subprocess.Popen(
        [sys.executable, "-c", "from foundry.entrypoints.cli import main; main()", *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def http_get(url: str, timeout: float = 5.0) -> str:
    """The body of a GET."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def answers(url: str) -> bool:
    """Whether ``url`` answers a GET yet."""
    try:
        http_get(url, timeout=1.0)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    return True
