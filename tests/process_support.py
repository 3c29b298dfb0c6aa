"""Processes a test starts and owns: each in its own process group, killed with everything it
started (children in their own groups included) when the test is done, passed or failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any

import psutil


def python_lines(script: str) -> list[str]:
    """The lines ``script`` prints, run by this interpreter in a fresh process (which must
    succeed: its stderr is the failure's message)."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def spawn(args: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` in a new session, so ``kill_tree`` can kill its process group."""
    return subprocess.Popen(args, start_new_session=True, **options)


def kill_tree(process: subprocess.Popen[Any]) -> None:
    """SIGKILL ``process``, its process group and every process below it, then reap it.

    The descendants are read before anything is killed: a pool's children die with their
    parent (``PR_SET_PDEATHSIG``) but each leads its own group, which a handler's own
    children may outlive. The group of a process started without ``spawn`` is the test's
    own: it is left alone. A process already reaped is left alone too: its children died
    with it (``PR_SET_PDEATHSIG``), and its pid may name another process now.
    """
    if process.returncode is not None:  # reaped: its pid may be another process's by now
        return
    victims = list(_descendants(process.pid))
    groups = {process.pid, *(_group(victim) for victim in victims)} - {0, os.getpgrp()}
    for group in groups:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    for victim in victims:
        with suppress(psutil.NoSuchProcess):
            victim.kill()
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)


def _descendants(pid: int) -> Iterator[psutil.Process]:
    with suppress(psutil.NoSuchProcess):
        yield from psutil.Process(pid).children(recursive=True)


def _group(process: psutil.Process) -> int:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return 0
