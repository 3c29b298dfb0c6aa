"""attrs' generated methods, compiled once per installation instead of once per process.

attrs writes each class's ``__init__``, ``__repr__``, ``__eq__``... as source and compiles it
where the class is defined: ~100 M instructions of a ``foundry work`` start (an eighth of it)
for the same ~60 scripts each time. The ``foundry`` command gives ``attr._make`` a ``compile``
that takes the code from a cache kept beside this module's bytecode (``__pycache__``), keyed by
the script, its file name and compiler flags, and compiles only what it lacks; a process that
compiled anything rewrites the cache at exit (where it may write: else it compiles every time,
as before). A changed class is a new script: its code is compiled, never taken stale.

One number in a hashable class's script differs in every process: the ``hash()`` of a name
that attrs writes into ``__hash__`` (string hashing is salted per process). The cache keeps
that script with a fixed stand-in for it and puts the process's number into the code it
returns.
"""

from __future__ import annotations
import __future__

import atexit
import builtins
import contextlib
import importlib.util
import marshal
import os
import sys
from types import CodeType, ModuleType
from typing import Any

from foundry.entrypoints.imports import AroundImport

_MODULE = "attr._make"
#: The compiler flags ``compile`` inherits from its caller's code (``from __future__ ...``).
_FUTURE = 0
for _name in __future__.all_feature_names:
    _FUTURE |= getattr(__future__, _name).compiler_flag
#: Scripts kept at most (what this process used is always kept): a bound on a cache that
#: every edit of an app's classes would otherwise grow.
LIMIT = 5000
#: Stands for the per-process number in the scripts and code the cache keeps.
STAND_IN = 8_191_131_071_524_287
_GENERATED = "<attrs generated "

_Key = tuple[str, str, int]


class CodeCache:
    """A ``compile`` for ``exec`` source that returns stored code where it has it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.misses = 0
        self._stored = _read(path)
        self._used: dict[_Key, bytes] = {}
        self._pid = os.getpid()

    def compile(  # noqa: PLR0917 - builtins.compile's own signature
        self,
        source: Any,
        filename: Any,
        mode: str,
        flags: int = 0,
        dont_inherit: bool = False,
        optimize: int = -1,
    ) -> Any:
        """``builtins.compile``, the caller's ``__future__`` flags inherited as it would."""
        if not dont_inherit:
            flags |= sys._getframe(1).f_code.co_flags & _FUTURE
        if not (isinstance(source, str) and isinstance(filename, str)) or (
            mode != "exec" or optimize != -1 or flags & ~_FUTURE
        ):
            return builtins.compile(source, filename, mode, flags, True, optimize)
        number = _type_hash(filename, source)
        if number is not None:
            source = source.replace(f" {number},", f" {STAND_IN},")
        key = (filename, source, flags)
        stored = self._stored.get(key)
        code = _loaded(stored)
        if stored is None or code is None:
            code = builtins.compile(source, filename, mode, flags, True)
            stored = marshal.dumps(code)
            self.misses += 1
        self._used[key] = stored
        return code if number is None else _with_constant(code, STAND_IN, number)

    def save(self) -> None:
        """Write the cache if this process compiled anything (a forked child never does)."""
        if not self.misses or os.getpid() != self._pid:
            return
        kept = {**self._stored, **self._used}
        if len(kept) > LIMIT:
            kept = self._used
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError, ValueError):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(temporary, "wb") as file:
                file.write(importlib.util.MAGIC_NUMBER + marshal.dumps(kept))
            os.replace(temporary, self.path)  # readers see the old cache or the new, whole
            self.misses = 0
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _type_hash(filename: str, source: str) -> int | None:
    """The number attrs wrote into ``source``'s ``__hash__``, if it did (as it does today)."""
    if not filename.startswith(_GENERATED) or str(STAND_IN) in source:
        return None
    _, _, name = filename.removeprefix(_GENERATED).partition(" ")  # after "methods" ...
    number = hash(f"{_GENERATED}hash {name}")
    return number if f" {number}," in source else None


def _with_constant(code: CodeType, old: int, new: int) -> CodeType:
    """``code`` with the integer constant ``old`` replaced by ``new``, nested code included."""
    consts = tuple(
        new
        if type(value) is int and value == old
        else _with_constant(value, old, new)
        if isinstance(value, CodeType)
        else value
        for value in code.co_consts
    )
    return code.replace(co_consts=consts)


def _loaded(stored: bytes | None) -> CodeType | None:
    try:
        code = None if stored is None else marshal.loads(stored)
    except (ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _read(path: str) -> dict[_Key, bytes]:
    """The cache at ``path``: each script's code marshalled apart, loaded only if used."""
    magic = importlib.util.MAGIC_NUMBER
    try:
        with open(path, "rb") as file:
            data = file.read()
        if not data.startswith(magic):
            return {}  # written by another Python
        stored = marshal.loads(memoryview(data)[len(magic) :])
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {key: code for key, code in stored.items() if isinstance(code, bytes)}


def cache_path() -> str | None:
    """Where the cache lives: this module's ``__pycache__`` (or ``sys.pycache_prefix``)."""
    try:
        return importlib.util.cache_from_source(__file__).removesuffix(".pyc") + ".attrs"
    except (NotImplementedError, ValueError):  # no cache tag: no bytecode cache either
        return None


_installed: CodeCache | None = None


def install(path: str | None = None) -> CodeCache | None:
    """Give attrs the cached ``compile`` (once per process), kept at ``path`` (by default
    ``cache_path()``); saved at exit."""
    global _installed  # noqa: PLW0603 - one cache per process
    path = path or cache_path()
    if _installed is not None or path is None:
        return _installed
    cache = _installed = CodeCache(path)
    module = sys.modules.get(_MODULE)
    if module is not None:
        vars(module)["compile"] = cache.compile  # the classes it makes from now on
    else:
        sys.meta_path.insert(0, AroundImport({_MODULE: lambda m, run: _before(cache, m, run)}))
    atexit.register(cache.save)
    return cache


def _before(cache: CodeCache, module: ModuleType, execute: Any) -> None:
    vars(module)["compile"] = cache.compile  # found before the builtin, attrs' own classes too
    execute()
