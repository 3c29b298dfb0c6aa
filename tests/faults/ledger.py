"""The fault tests' oracle: an append-only event file written outside Redis.

Many processes (the producer in the test, every pool child) append to one file. Each event is
one JSON line written with a single ``write`` on an ``O_APPEND`` descriptor, so lines from
different processes never interleave (Linux appends atomically for regular files). Nothing is
fsynced: the ledger only has to survive the processes under test, not the machine.

Events (``ev``):

* ``enqueue_try``  - the producer is about to enqueue ``job``.
* ``enqueued``     - enqueue returned ``Enqueued`` (acknowledged: Q1 applies from here).
* ``duplicate``    - enqueue returned ``Duplicate`` (``existing``).
* ``enqueue_error``- enqueue raised (``error``): the outcome is unknown, the job may be stored.
* ``start``        - a handler began running ``job`` (``pid``, ``ppid``, ``t``).
* ``tick``         - a long handler is still running ``job`` (``pid``, ``t``).
* ``end``          - the handler returned normally (``pid``, ``t``).
* ``replicated``   - a probe saw a replica hold every write the master applied before ``t``.
* ``note``         - anything the scenario wants in the record (faults injected, with times).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

LEDGER_ENV = "FOUNDRY_FAULT_LEDGER"


class Ledger:
    """One ledger file; safe to append from many processes at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._owner = -1

    @classmethod
    def from_env(cls) -> Ledger:
        """The ledger named by ``FOUNDRY_FAULT_LEDGER`` (set by the scenario for its workers)."""
        path = os.environ.get(LEDGER_ENV)
        if not path:
            raise RuntimeError(f"{LEDGER_ENV} is not set: run this handler from a fault scenario")
        return cls(path)

    def record(self, ev: str, **fields: Any) -> None:
        """Append one event, stamped with wall time ``t`` unless given."""
        fields.setdefault("t", time.time())
        line = orjson.dumps({"ev": ev, **fields}) + b"\n"
        os.write(self._descriptor(), line)

    def events(self) -> list[dict[str, Any]]:
        """Every event so far, in file order, up to a last line not written whole yet (or torn
        by a killed writer)."""
        return list(self._read())

    def close(self) -> None:
        """Close this process's descriptor (the file stays)."""
        if self._fd is not None and self._owner == os.getpid():
            os.close(self._fd)
        self._fd = None

    def _descriptor(self) -> int:
        # A forked child must not share the parent's descriptor bookkeeping: reopen per process.
        if self._fd is None or self._owner != os.getpid():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._owner = os.getpid()
        return self._fd

    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open("rb") as lines:
            yield from complete_events(lines)


def complete_events(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The events of ``lines`` up to the first line without its newline: the end of the file
    as it was read (a write in progress, or a killed writer's torn line). Reading on would
    take the rest of a line appended meanwhile for a line of its own."""
    for line in lines:
        if not line.endswith(b"\n"):
            return
        yield orjson.loads(line)
