"""Loading an application's handlers from an import string, ``module:attribute``."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from foundry.application.registry import JobRegistry
from foundry.domain import ConfigurationError, UnknownHandler

_EXAMPLE = "like myapp.jobs:registry"


def load_app(spec: str, container: Any = None) -> JobRegistry:
    """The ``JobRegistry`` named by ``spec``.

    The attribute is a ``JobRegistry``, or a callable that takes the container and returns
    one (for apps that need the cache or a dispatcher when they start). The current directory
    is importable, as with ``python -m``. Anything else (a handler among them: it is never
    called) is a ``ConfigurationError`` saying what to name instead, and so is a registry
    without handlers (a worker would send every job it claims to the dead letters).
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--app {spec!r} must be module:attribute, {_EXAMPLE}")
    module = _import(spec, module_name)
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigurationError(f"--app {spec!r}: {module_name} has no attribute {attribute!r}")
    registry = found if isinstance(found, JobRegistry) else _made_by(spec, found, module, container)
    if not registry.names():
        raise ConfigurationError(
            f"--app {spec!r} has no handlers: a worker would send every job it takes to the "
            "dead letters as unknown. Register them on this registry (@registry.job), and have "
            f"{module_name} import the modules that do"
        )
    return registry


_WANTED = (
    f"not a JobRegistry: name the registry, {_EXAMPLE}, or a function that takes the "
    "container and returns it"
)


def _import(spec: str, module_name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        missing = error.name or ""
        if missing and not (module_name + ".").startswith(missing + "."):
            fix = (
                f"install {missing.partition('.')[0]} where the worker runs"
                if isinstance(error, ModuleNotFoundError)
                else "fix that import"
            )
            raise ConfigurationError(
                f"--app {spec!r}: {module_name} was found, but importing it failed ({error}); {fix}"
            ) from error
        raise ConfigurationError(
            f"--app {spec!r}: cannot import {module_name} ({error}); "
            "check the module path, or run from the directory that holds it"
        ) from error


def _made_by(spec: str, factory: Any, module: Any, container: Any) -> JobRegistry:
    """What ``factory`` returns for the container, once it is known to be an app factory."""
    if not callable(factory):
        raise ConfigurationError(f"--app {spec!r} is a {type(factory).__name__}, {_WANTED}")
    owner = _registry_holding(module, factory)
    if owner is not None:
        raise ConfigurationError(
            f"--app {spec!r} is a handler, not an app: name its registry, "
            f"--app {module.__name__}:{owner}"
        )
    try:
        inspect.signature(factory).bind(container)
    except TypeError:
        raise ConfigurationError(
            f"--app {spec!r} is a callable that cannot take the container as its one argument, "
            f"{_WANTED}"
        ) from None
    except ValueError:  # no signature to read (some builtins): the call tells
        pass
    made = factory(container)
    if not isinstance(made, JobRegistry):
        raise ConfigurationError(
            f"--app {spec!r} returned a {type(made).__name__} when called with the container, "
            f"{_WANTED}"
        )
    return made


def _registry_holding(module: Any, function: Any) -> str | None:
    """The name of a registry in ``module`` that has ``function`` as a handler, if one has."""
    for name, value in vars(module).items():
        if isinstance(value, JobRegistry):
            try:
                value.name_of(function)
            except UnknownHandler:
                continue
            return str(name)
    return None


def app_queues(registry: JobRegistry) -> tuple[str, ...]:
    """The queues the app's handlers use, in order of first appearance by handler name."""
    queues = dict.fromkeys(registry.get(name).template.queue for name in registry.names())
    return tuple(queues) or ("default",)
