"""Optional integrations: a clear error naming the extra to install when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from foundry.domain import ConfigurationError


def require(extra: str, what: str, *modules: str) -> list[ModuleType]:
    """Import ``modules`` for ``what`` (e.g. ``"foundry dashboard"``), or raise a
    ``ConfigurationError`` naming the ``foundry[extra]`` that installs them."""
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError as error:
            raise ConfigurationError(
                f"{what} needs the optional '{extra}' dependencies ({name} is not installed): "
                f"pip install 'foundry[{extra}]'"
            ) from error
    return imported
