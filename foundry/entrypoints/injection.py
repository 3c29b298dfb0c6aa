"""dependency_injector, imported without the web frameworks it looks for at import.

``dependency_injector.wiring`` imports FastAPI, Starlette and Werkzeug when they are installed,
to recognise their markers when an app wires a container: about a second of every ``foundry
work`` start where FastAPI is installed, though Foundry never wires. Here they are hidden
while dependency_injector is imported, unless the process imported them already; when the
process imports one of them later, wiring learns about it then (what it would have done at
its own import), so an app that wires its container with FastAPI's ``Depends`` sees no
difference.

``dependency_injector.providers`` also imports pydantic (~20 ms) where ``pydantic_settings`` is
missing, only to learn whether it is pydantic 1, whose ``BaseSettings`` ``from_pydantic`` then
accepts; of a pydantic 2 it keeps nothing. So where ``pydantic_settings`` is not installed and
pydantic is 2 or later, pydantic is hidden too: dependency_injector is the same without it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from inspect import isclass
from pathlib import Path
from types import ModuleType

from foundry.entrypoints.imports import AroundImport, after

#: Module -> what dependency_injector.wiring adds for it (see ``_teach``).
_FRAMEWORKS = ("fastapi.params", "starlette.requests", "werkzeug.local")


def _import_hidden(hidden: Sequence[str], unused: Sequence[str] = ()) -> None:
    """Import dependency_injector without ``hidden`` (taught later) and ``unused``."""
    roots = {name.partition(".")[0] for name in hidden}
    roots -= set(sys.modules)
    for root in roots:
        sys.modules[root] = None  # type: ignore[assignment]  # import raises ImportError
    # Cython modules take a None in sys.modules for the module: a finder refuses instead.
    refuse = _Refuse(frozenset(unused) - set(sys.modules))
    sys.meta_path.insert(0, refuse)
    try:
        import dependency_injector.containers  # noqa: PLC0415
        import dependency_injector.providers  # noqa: F401, PLC0415
    finally:
        sys.meta_path.remove(refuse)
        for root in roots:
            del sys.modules[root]
    wiring = sys.modules["dependency_injector.wiring"]
    skipped = [name for name in hidden if name.partition(".")[0] in roots]
    if skipped and hasattr(wiring, "MARKER_EXTRACTORS"):
        hooks = {name: after(_teach(wiring, name)) for name in skipped}
        sys.meta_path.insert(0, AroundImport(hooks))


def _teach(wiring: ModuleType, name: str) -> Callable[[ModuleType], None]:
    """What wiring adds for ``name`` at its own import when the framework is installed."""

    def fastapi(module: ModuleType) -> None:
        depends = module.Depends
        wiring.MARKER_EXTRACTORS.append(
            lambda param: param.dependency if isinstance(param, depends) else None
        )

    def starlette(module: ModuleType) -> None:
        request = module.Request
        wiring.INSPECT_EXCLUSION_FILTERS.append(
            lambda obj: isclass(obj) and _is_subclass(obj, request)
        )

    def werkzeug(module: ModuleType) -> None:
        proxy = module.LocalProxy
        wiring.INSPECT_EXCLUSION_FILTERS.append(lambda obj: isinstance(obj, proxy))

    return {"fastapi.params": fastapi, "starlette.requests": starlette}.get(name, werkzeug)


def _is_subclass(obj: type, base: type) -> bool:
    try:
        return issubclass(obj, base)
    except TypeError:
        return False


class _Refuse:
    """Makes importing any of ``names`` (top-level modules) fail as if it were missing (a meta
    path finder: ``find_spec`` is all it needs, see ``imports.AroundImport``)."""

    def __init__(self, names: frozenset[str]) -> None:
        self._names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self._names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _pydantic_unused() -> bool:
    """Whether dependency_injector would import pydantic and keep nothing of it: no
    ``pydantic_settings``, and a pydantic 2+ (the one with a ``pydantic._internal``)."""
    if "pydantic" in sys.modules or _find("pydantic_settings") is not None:
        return False
    spec = _find("pydantic")
    if spec is None or spec.origin is None:
        return False
    return (Path(spec.origin).parent / "_internal").is_dir()


def _find(name: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


_import_hidden(_FRAMEWORKS, ("pydantic",) if _pydantic_unused() else ())

from dependency_injector import containers, providers  # noqa: E402

__all__ = ["containers", "providers"]
