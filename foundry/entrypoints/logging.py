"""Where logs go: the only module that configures sinks.

Library code logs through the standard library's ``logging`` under ``foundry.*`` and puts a
job's context on the record (``job_id``, ``attempt``, ``queue``), so a host application routes,
formats and silences Foundry's records as it does any library's, with no call to Foundry.

The ``foundry`` command and its workers write those records, and other libraries' records at
``WARNING`` and above, through one loguru sink in Foundry's format; a handler's own loguru calls
get the context of the job it runs.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import sysconfig
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger
from loguru._better_exceptions import ExceptionFormatter

from foundry.application.context import current_job

if TYPE_CHECKING:
    from loguru import Record

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
#: Set in a click context's ``meta`` when the ``foundry`` command configured logging itself
#: (not when a test or a host passed its own container), so a command may change the level.
LOGGING_CONFIGURED = "foundry.logging_configured"
_CONTEXT = ("queue", "job_id", "attempt")
#: Records of other libraries (redis-py, the app's) below this level are not written.
OTHERS_LEVEL = logging.WARNING


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


class _ToLoguru(logging.Handler):
    """Hands stdlib records to loguru, with their job context as loguru's ``extra``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        context: dict[str, Any] = {
            key: getattr(record, key) for key in _CONTEXT if getattr(record, key, None) is not None
        }
        logger.bind(**context).opt(depth=6, exception=record.exc_info).log(
            level, "{}", record.getMessage()
        )


@functools.cache
def library_dirs() -> tuple[str, ...]:
    """The directories loguru's exception formatter treats as libraries' (not the app's).

    The same as loguru's own ``ExceptionFormatter._get_lib_dirs``, which asks
    ``sysconfig.get_path`` for four paths of every install scheme: each of those 36 calls
    copies the interpreter's ~1,000 build variables, ~30 M instructions. One ``get_paths``
    per scheme gives the same paths for a quarter of that.
    """
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


def _library_dirs_when_needed() -> None:
    if hasattr(ExceptionFormatter, "_get_lib_dirs"):
        ExceptionFormatter._get_lib_dirs = staticmethod(_LibraryDirs)  # type: ignore[method-assign]


def configure_logging(level: str = "INFO", sink: TextIO | None = None) -> None:
    """Write Foundry's records at ``level`` (and others' at WARNING) to one sink (stderr)."""
    target = sink or sys.stderr
    _library_dirs_when_needed()
    logger.remove()
    logger.configure(patcher=_running_job)
    logger.add(target, level=level.upper(), format=human_format, colorize=target.isatty())
    handler = _ToLoguru()
    foundry = logging.getLogger("foundry")
    foundry.handlers = [handler]
    foundry.setLevel(logger.level(level.upper()).no)
    foundry.propagate = False
    logging.basicConfig(handlers=[handler], level=OTHERS_LEVEL, force=True)
