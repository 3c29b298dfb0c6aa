"""Code run around a module's first import, installed before anything imports it."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import importlib.abc

#: Runs the import: given the module and the function that executes its code.
Around = Callable[[ModuleType, Callable[[], None]], None]


def after(hook: Callable[[ModuleType], None]) -> Around:
    """The ``Around`` that executes the module, then calls ``hook`` with it."""

    def around(module: ModuleType, execute: Callable[[], None]) -> None:
        execute()
        hook(module)

    return around


class AroundImport:
    """Runs each watched module's first import through its ``Around`` (then steps aside).

    Put first on ``sys.meta_path``: it finds the module with the finders after it and wraps
    the loader that executes it. A meta path finder needs only ``find_spec``: it does not
    subclass ``importlib.abc.MetaPathFinder``, whose module imports ``importlib.resources``
    (with ``tempfile``, ``shutil``, ``zipfile``...) into every ``foundry`` start.
    """

    def __init__(self, hooks: dict[str, Around]) -> None:
        self._hooks = hooks

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        hook = self._hooks.get(fullname)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                del self._hooks[fullname]
                if not self._hooks:
                    sys.meta_path.remove(self)
                spec.loader = cast("importlib.abc.Loader", _Around(spec.loader, hook))
                return spec
        return None


class _Around:
    """A module's own loader, its execution run through a hook."""

    def __init__(self, loader: Any, hook: Around) -> None:
        self._loader = loader
        self._hook = hook

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self._loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        self._hook(module, lambda: self._loader.exec_module(module))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
