"""redis-py, imported by the ``foundry`` command without OpenTelemetry's metrics API.

redis-py imports ``opentelemetry.metrics`` at its own import wherever opentelemetry-api is
installed (``foundry[otel]`` installs it), only to note that its metrics could be exported
(``OTEL_AVAILABLE``) and to keep the ``Meter`` type: ~16 M instructions of every ``foundry``
start, though redis-py exports nothing until an app initialises its observability with a
meter provider, which imports opentelemetry first. So the command imports redis with
opentelemetry hidden, unless the process imported it already; when something imports
``opentelemetry.metrics`` later, redis-py learns of it then, as it would have at its import.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import partial
from types import ModuleType

from foundry.entrypoints.imports import AroundImport, after

_HIDDEN = "opentelemetry"
_METRICS = "opentelemetry.metrics"
#: The redis-py module that imports ``opentelemetry.metrics`` at its import.
_REDIS_METRICS = "redis.observability.metrics"


def import_redis() -> None:
    """Import redis without opentelemetry, where it is installed and not imported yet."""
    if "redis" in sys.modules or _HIDDEN in sys.modules or not _installed(_HIDDEN):
        return  # imported with the CLI
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


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
