"""Loading an application's handlers from an import string, ``module:attribute``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError

_EXAMPLE = "like myapp.jobs:registry"


def load_app(spec: str, container: Any = None) -> JobRegistry:
    """The ``JobRegistry`` named by ``spec``.

    The attribute is a ``JobRegistry``, or a callable that takes the container and returns
    one (for apps that need the cache or a dispatcher when they start). The current directory
    is importable, as with ``python -m``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--app {spec!r} must be module:attribute, {_EXAMPLE}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(
            f"--app {spec!r}: cannot import {module_name} ({error}); "
            "check the module path, or run from the directory that holds it"
        ) from error
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigurationError(f"--app {spec!r}: {module_name} has no attribute {attribute!r}")
    return _as_registry(spec, found if isinstance(found, JobRegistry) else _call(found, container))


def _call(found: Any, container: Any) -> Any:
    return found(container) if callable(found) else found


def _as_registry(spec: str, found: Any) -> JobRegistry:
    if not isinstance(found, JobRegistry):
        raise ConfigurationError(
            f"--app {spec!r} is a {type(found).__name__}, not a JobRegistry "
            "(or a function of the container returning one)"
        )
    return found


def app_queues(registry: JobRegistry) -> tuple[str, ...]:
    """The queues the app's handlers use, in order of first appearance by handler name."""
    queues = dict.fromkeys(registry.get(name).template.queue for name in registry.names())
    return tuple(queues) or ("default",)
