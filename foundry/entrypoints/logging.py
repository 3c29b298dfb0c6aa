"""Where logs go: the only module that configures sinks.

Library code logs through the standard library's ``logging`` under ``foundry.*`` and puts a
job's context on the record (``job_id``, ``attempt``, ``queue``), so a host application routes,
formats and silences Foundry's records as it does any library's, with no call to Foundry.

The ``foundry`` command and its workers write those records, and other libraries' records at
``WARNING`` and above, through one loguru sink in Foundry's format; a handler's own loguru calls
get the context of the job it runs.

loguru is loaded only when something needs it (its import and sink cost a worker's parent
about 21 M instructions before it forks): a terminal's colours, a record with a traceback, or
a handler's module that imports it, which then finds Foundry's sink configured. Until then,
records without a traceback are written to a file or pipe here, in the same line format.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from foundry.application.context import current_job
from foundry.domain.durations import spoken
from foundry.entrypoints.imports import AroundImport

if TYPE_CHECKING:
    from loguru import Record

#: loguru's levels and their numbers (the standard library's where it has the level).
_NUMBERS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "SUCCESS": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
LEVELS = tuple(_NUMBERS)
#: Set in a click context's ``meta`` when the ``foundry`` command configured logging itself
#: (not when a test or a host passed its own container), so a command may change the level.
LOGGING_CONFIGURED = "foundry.logging_configured"
_CONTEXT = ("queue", "job_id", "attempt")
#: Records of other libraries (redis-py, the app's) below this level are not written.
OTHERS_LEVEL = logging.WARNING
_AUTOINIT = "LOGURU_AUTOINIT"
#: psycopg_pool's warning for each failed attempt to connect: Foundry says the outage itself,
#: once (the command's error, a worker's outage line), with the same reason.
_POOL_CONNECT_FAILED = ("psycopg.pool", "error connecting in %r: %s")


class _Sink:
    """The stream records are written to, or the process's own stderr once that stream is
    closed (a test's stream, a file a host closed before exit): a record written late, at
    exit, is still shown, never a traceback about the closed stream."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> None:
        """Write ``text`` to the target, or to stderr if the target is closed (to nothing if
        that is closed too)."""
        target: TextIO | None = self.target
        if target is not None and target.closed:
            target = sys.__stderr__
        if target is not None and not target.closed:
            target.write(text)

    def flush(self) -> None:
        """Flush the target, unless it is closed."""
        if not self.target.closed:
            self.target.flush()

    def isatty(self) -> bool:
        """Whether the target is a terminal (colours)."""
        return not self.target.closed and self.target.isatty()


@attrs.frozen
class _Output:
    """Where records go, and the least severe level written."""

    target: _Sink
    level: str


#: Set by ``configure_logging``; ``_loguru`` once loguru writes (configured with ``_output``).
_output: _Output | None = None
_loguru: Any = None


def human_format(record: Record) -> str:
    """One line per record: time, level, the job context when there is one, the message."""
    context = " ".join(
        f"{key}={{extra[{key}]}}" for key in _CONTEXT if record["extra"].get(key) is not None
    )
    context = f" <cyan>[{context}]</cyan>" if context else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<dim>{process}</dim>" + context + " {message}\n{exception}"
    )


def _running_job(record: Record) -> None:
    job = current_job()
    if job is not None and "job_id" not in record["extra"]:
        record["extra"].update(job_id=job.job_id, attempt=job.attempt, queue=job.queue)


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The job context a stdlib record carries (set as loguru's ``extra``)."""
    return {key: getattr(record, key) for key in _CONTEXT if getattr(record, key, None) is not None}


def _message(record: logging.LogRecord) -> str:
    """The record's message, with its ``timedelta`` arguments as people read them (``grace
    30s``, ``retry in 1.5s``) rather than as ``0:00:30``: library code logs durations as they
    are, and the sink that the CLI and workers write through says them one way."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(arg, timedelta) for arg in args):
        said = tuple(spoken(arg) if isinstance(arg, timedelta) else arg for arg in args)
        return str(record.msg) % said
    return record.getMessage()


def _plain_line(record: logging.LogRecord) -> str:
    """The line ``human_format`` gives a record without a traceback, uncoloured."""
    context = _context(record)
    job = current_job()
    if job is not None and "job_id" not in context:
        context.update(job_id=job.job_id, attempt=job.attempt, queue=job.queue)
    shown = " ".join(f"{key}={context[key]}" for key in _CONTEXT if context.get(key) is not None)
    when = datetime.fromtimestamp(record.created)
    level = record.levelname if record.levelname in _NUMBERS else f"Level {record.levelno}"
    return (
        f"{when:%H:%M:%S}.{when.microsecond // 1000:03d} {level: <7} {os.getpid()}"
        f"{f' [{shown}]' if shown else ''} {_message(record)}\n"
    )


def _not_a_retried_connect(record: logging.LogRecord) -> bool:
    """Whether ``record`` is anything but psycopg_pool's warning of a failed connect."""
    return (record.name, record.msg) != _POOL_CONNECT_FAILED


class _Records(logging.Handler):
    """Writes stdlib records in Foundry's format: as a plain line until loguru is loaded (a
    traceback loads it), then through loguru, with their job context as loguru's ``extra``."""

    def emit(self, record: logging.LogRecord) -> None:
        output = _output
        if _loguru is None and record.exc_info is None and output is not None:
            try:
                output.target.write(_plain_line(record))
                output.target.flush()
            except Exception:  # as logging.StreamHandler: a logging error never stops the caller
                self.handleError(record)
            return
        logger = _loguru or _loaded_loguru()
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(**_context(record)).opt(depth=6, exception=record.exc_info).log(
            level, "{}", _message(record)
        )


@functools.cache
def library_dirs() -> tuple[str, ...]:
    """The directories loguru's exception formatter treats as libraries' (not the app's).

    The same as loguru's own ``ExceptionFormatter._get_lib_dirs``, which asks
    ``sysconfig.get_path`` for four paths of every install scheme: each of those 36 calls
    copies the interpreter's ~1,000 build variables, ~30 M instructions. One ``get_paths``
    per scheme gives the same paths for a quarter of that.
    """
    import sysconfig  # noqa: PLC0415 - only a logged traceback asks (a worker's start need not)

    paths: set[str] = set()
    for scheme in sysconfig.get_scheme_names():
        found = sysconfig.get_paths(scheme)
        paths.update(found[name] for name in ("stdlib", "platstdlib", "platlib", "purelib"))
    return tuple(os.path.abspath(path).lower() + os.sep for path in paths if path in sys.path)


class _LibraryDirs:
    """``library_dirs()``, looked up when loguru first formats an exception's frames.

    loguru builds an exception formatter, which lists them, in every ``logger.add``: a
    worker's startup would pay for a list that only a logged traceback reads.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(library_dirs())


def _configure_loguru(output: _Output) -> None:
    """Make loguru's one sink Foundry's (with the running job's context on every record)."""
    global _loguru  # noqa: PLW0603 - set once loguru writes, read by every record
    from loguru import logger  # noqa: PLC0415
    from loguru._better_exceptions import ExceptionFormatter  # noqa: PLC0415

    if hasattr(ExceptionFormatter, "_get_lib_dirs"):
        ExceptionFormatter._get_lib_dirs = staticmethod(_LibraryDirs)  # type: ignore[method-assign]
    logger.remove()
    logger.configure(patcher=_running_job)
    target = output.target
    logger.add(target, level=output.level, format=human_format, colorize=target.isatty())
    if _loguru is None:
        atexit.register(_plain_lines_at_exit)  # after loguru's own hook, so it runs first
    _loguru = logger


def _plain_lines_at_exit() -> None:
    """Write records as plain lines again: loguru removes its sinks at exit (its hook, made
    when it was imported, runs after this one), and a record of a hook made before that (the
    PostgreSQL cache's last read counts, when a handler imported loguru later) would be lost."""
    global _loguru  # noqa: PLW0603 - exiting: the handler writes records itself again
    _loguru = None


def _import_loguru(module: ModuleType, execute: Callable[[], None]) -> None:
    """Import loguru without its default stderr sink (building it costs ~50 M instructions;
    ours replaces it), then configure it. The variable is set for this import only, so
    subprocesses that handlers start keep loguru's default."""
    ours = _AUTOINIT not in os.environ
    if ours:
        os.environ[_AUTOINIT] = "False"
    try:
        execute()
    finally:
        if ours:
            del os.environ[_AUTOINIT]
    if _output is not None:
        _configure_loguru(_output)


def _loaded_loguru() -> Any:
    """loguru's logger, configured: imported now if nothing has imported it."""
    if _loguru is None:
        import loguru  # noqa: F401, PLC0415 - the import hook configures it

    if _loguru is None and _output is not None:
        _configure_loguru(_output)
    return _loguru


class _LoguruHook(AroundImport):
    """Configures loguru when something first imports it."""


def configure_logging(level: str = "INFO", sink: TextIO | None = None) -> None:
    """Write Foundry's records at ``level`` (and others' at WARNING) to one sink (stderr)."""
    global _output  # noqa: PLW0603 - the one configuration of this process's sink
    target = _Sink(sink or sys.stderr)
    _output = _Output(target, level.upper())
    if "loguru" in sys.modules or target.isatty():
        _configure_loguru(_output)
    elif _loguru is None and not any(isinstance(f, _LoguruHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _LoguruHook({"loguru": _import_loguru}))
    handler = _Records(level=_NUMBERS[_output.level])
    handler.addFilter(_not_a_retried_connect)
    foundry = logging.getLogger("foundry")
    foundry.handlers = [handler]
    foundry.setLevel(_NUMBERS[_output.level])
    foundry.propagate = False
    logging.basicConfig(handlers=[handler], level=OTHERS_LEVEL, force=True)
