"""redis-py, imported by the ``foundry`` command without OpenTelemetry's metrics API.

redis-py imports ``opentelemetry.metrics`` at its own import wherever opentelemetry-api is
installed (``foundry[otel]`` installs it), only to note that its metrics could be exported
(``OTEL_AVAILABLE``) and to keep the ``Meter`` type: ~16 M instructions of every ``foundry``
start, though redis-py exports nothing until an app initialises its observability with a
meter provider, which imports opentelemetry first. So the command imports redis with
opentelemetry hidden, unless the process imported it already; when something imports
``opentelemetry.metrics`` later, redis-py learns of it then, as it would have at its import.

redis-py's package also imports its asyncio client (``redis.asyncio``: ~40 M instructions),
which a sync worker never uses. The command puts a stand-in module there first: its
submodules import as usual (the asyncio cluster client, ...; a submodule asked of it is
imported alone) and the first other name asked of it runs the package's own code in it, so
``redis.asyncio.Redis`` is there when first used. ``importlib.metadata`` (with ``email``,
``zipfile``, ``csv``: ~25 M instructions) gets the same: redis-py imports it for its version,
which it reads only where a client is not told it (``connection.py`` tells it).

``asyncio`` too (~15 M instructions of a worker's start: its event loops, transports,
subprocesses, runners...): the sync client imports it only to take a few names at its import
(``from asyncio import StreamReader``, ``asyncio.Lock`` in a signature), as
``dependency_injector`` does (``Future``, ``gather``). Each of those names is taken from the
one submodule that defines it (the very object the package binds: its ``__init__`` is
``from .streams import *``...), without running the package; the first other name asked of
it (``asyncio.run``, ``new_event_loop``, its ``__all__``, ``dir``) runs the package's code,
which finds those submodules imported and binds the rest. A sync worker's parent never asks.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
from functools import partial
from types import ModuleType
from typing import Any

from foundry.entrypoints.imports import AroundImport, after

_HIDDEN = "opentelemetry"
_METRICS = "opentelemetry.metrics"
#: The redis-py module that imports ``opentelemetry.metrics`` at its import.
_REDIS_METRICS = "redis.observability.metrics"
_REDIS_ASYNCIO = "redis.asyncio"
_METADATA = "importlib.metadata"
_ASYNCIO = "asyncio"
#: The names taken from ``asyncio`` at the import of redis-py (``_parsers/base.py``,
#: ``event.py``, ``background.py``, ``asyncio/retry.py``) and ``dependency_injector``, by the
#: submodule that defines each.
_ASYNCIO_NAMES = {
    "AbstractEventLoop": "events",
    "Future": "futures",
    "IncompleteReadError": "exceptions",
    "Lock": "locks",
    "StreamReader": "streams",
    "ensure_future": "tasks",
    "gather": "tasks",
    "iscoroutinefunction": "coroutines",
    "sleep": "tasks",
}


def import_redis() -> None:
    """Import redis without opentelemetry, where it is installed and not imported yet, and
    with its asyncio client, ``importlib.metadata`` and ``asyncio`` left for first use."""
    if "redis" in sys.modules:
        return  # imported with the CLI
    _defer(_REDIS_ASYNCIO)
    _defer(_METADATA)
    _defer(_ASYNCIO, _ASYNCIO_NAMES)
    if _HIDDEN in sys.modules or not _installed(_HIDDEN):
        import redis  # noqa: PLC0415

        return
    sys.modules[_HIDDEN] = None  # type: ignore[assignment]  # its import raises ImportError
    try:
        import redis  # noqa: F401, PLC0415
    finally:
        del sys.modules[_HIDDEN]
    metrics = sys.modules.get(_REDIS_METRICS)
    if metrics is not None and getattr(metrics, "OTEL_AVAILABLE", None) is False:
        sys.meta_path.insert(0, AroundImport({_METRICS: after(partial(_teach, metrics))}))


def _teach(redis_metrics: ModuleType, module: ModuleType) -> None:
    """What redis-py's metrics module sets at its import when opentelemetry is there."""
    setattr(redis_metrics, "Meter", module.Meter)  # noqa: B010 - names mypy does not know
    setattr(redis_metrics, "OTEL_AVAILABLE", True)  # noqa: B010


def _defer(name: str, names: dict[str, str] | None = None) -> None:
    """Put in ``sys.modules`` a stand-in for package ``name`` (not imported yet) that runs its
    code on the first attribute it lacks (or ``dir``); its submodules import without it, and
    each of ``names`` is taken from the submodule that ``names`` says defines it."""
    spec = _find(name)
    if spec is None or spec.loader is None or name in sys.modules:
        return
    module = importlib.util.module_from_spec(spec)
    deferred = _Deferred(module, spec, names or {})
    vars(module)["__getattr__"] = deferred.attribute
    vars(module)["__dir__"] = deferred.listing
    sys.modules[name] = module
    parent_name, _, child = name.rpartition(".")
    if parent_name in sys.modules:  # else its own code binds the name (``from redis import ...``)
        setattr(sys.modules[parent_name], child, module)


def _find(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of ``name``, found without importing it or its package."""
    parent_name = name.rpartition(".")[0]
    if not parent_name:
        return importlib.util.find_spec(name)
    parent = importlib.util.find_spec(parent_name)  # finds, does not import
    where = None if parent is None else parent.submodule_search_locations
    return None if where is None else importlib.machinery.PathFinder.find_spec(name, where)


class _Deferred:
    """A package module whose code has not run yet: its ``__getattr__`` and ``__dir__``."""

    def __init__(
        self, module: ModuleType, spec: importlib.machinery.ModuleSpec, names: dict[str, str]
    ) -> None:
        self._module = module
        self._spec = spec
        self._names = names
        self._waiting = True
        self._lock = threading.RLock()
        # A child forked while a thread of its parent held the lock gets a free one.
        os.register_at_fork(after_in_child=self._new_lock)

    def attribute(self, attribute: str) -> Any:
        """The module's ``__getattr__``: ``attribute`` alone where it can be, else all."""
        if self._waiting:
            where = self._names.get(attribute)
            if where is not None:
                return getattr(importlib.import_module(f"{self._spec.name}.{where}"), attribute)
            if _submodule(self._spec, attribute):
                # ``from redis.asyncio import x`` in a submodule being imported: x alone
                return importlib.import_module(f"{self._spec.name}.{attribute}")
            self._run()
        return getattr(self._module, attribute)  # its own code ran: no stand-in asked again

    def listing(self) -> list[str]:
        """The module's ``__dir__``: its names once its code ran."""
        self._run()
        return sorted(vars(self._module))

    def _run(self) -> None:
        with self._lock:
            if not self._waiting:
                return
            stand_ins = {key: vars(self._module).pop(key) for key in ("__getattr__", "__dir__")}
            try:
                self._spec.loader.exec_module(self._module)  # type: ignore[union-attr]
            except BaseException:
                vars(self._module).update(stand_ins)  # tried again at the next access
                raise
            self._waiting = False

    def _new_lock(self) -> None:
        self._lock = threading.RLock()


def _submodule(package: importlib.machinery.ModuleSpec, name: str) -> bool:
    where = package.submodule_search_locations
    found = importlib.machinery.PathFinder.find_spec(f"{package.name}.{name}", where)
    return found is not None


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
