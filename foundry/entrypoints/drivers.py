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
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
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
_ASYNCIO = "redis.asyncio"
_METADATA = "importlib.metadata"


def import_redis() -> None:
    """Import redis without opentelemetry, where it is installed and not imported yet, and
    with its asyncio client and ``importlib.metadata`` left for first use."""
    if "redis" in sys.modules:
        return  # imported with the CLI
    _defer(_ASYNCIO)
    _defer(_METADATA)
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


def _defer(name: str) -> None:
    """Put in ``sys.modules`` a stand-in for package ``name`` (not imported yet) that runs its
    code on the first attribute it lacks; its submodules import without it."""
    parent = importlib.util.find_spec(name.rpartition(".")[0])  # finds, does not import
    where = None if parent is None else parent.submodule_search_locations
    spec = None if where is None else importlib.machinery.PathFinder.find_spec(name, where)
    if spec is None or spec.loader is None or name in sys.modules:
        return
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()

    def load(attribute: str) -> Any:
        with lock:
            if "__getattr__" in vars(module) and _submodule(spec, attribute):
                # ``from redis.asyncio import x`` in a submodule being imported: x alone
                return importlib.import_module(f"{name}.{attribute}")
            run = vars(module).pop("__getattr__", None)
            if run is not None:
                try:
                    spec.loader.exec_module(module)  # type: ignore[union-attr]
                except BaseException:
                    vars(module)["__getattr__"] = run  # tried again at the next access
                    raise
        return getattr(module, attribute)  # its own code ran: no stand-in asked again

    vars(module)["__getattr__"] = load
    sys.modules[name] = module
    parent_name, _, child = name.rpartition(".")
    if parent_name in sys.modules:  # else its own code binds the name (``from redis import ...``)
        setattr(sys.modules[parent_name], child, module)


def _submodule(package: importlib.machinery.ModuleSpec, name: str) -> bool:
    where = package.submodule_search_locations
    found = importlib.machinery.PathFinder.find_spec(f"{package.name}.{name}", where)
    return found is not None


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
