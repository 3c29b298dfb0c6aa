"""Names a package exports, each imported from its home module at first use (PEP 562), so
importing the package costs only what its user touches."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, homes: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: a name in ``homes`` is imported
    from its module once and kept in the package; any other raises ``AttributeError``."""
    names = frozenset(public)

    def attribute(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    def names_listed() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return attribute, names_listed
