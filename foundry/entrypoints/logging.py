"""Where logs go: the only module that adds loguru sinks.

Library code below ``entrypoints`` only logs and binds context (``job_id``, ``attempt``,
``queue`` through ``logger.contextualize``); this module decides the format and the level.

Hosts that log through the standard library (Django, Flask, gunicorn...) have two bridges:

* ``bridge_to_stdlib()`` sends Foundry's loguru records to stdlib ``logging`` (logger
  ``foundry.<module>``), so the host's handlers, formatters and levels apply to them.
* ``capture_stdlib()`` does the opposite for a Foundry worker: stdlib records (redis-py,
  your libraries) are written by loguru in Foundry's format.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
#: Set in a click context's ``meta`` when the ``foundry`` command configured logging itself
#: (not when a test or a host passed its own container), so a command may change the level.
LOGGING_CONFIGURED = "foundry.logging_configured"
_CONTEXT = ("queue", "job_id", "attempt")


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


def configure_logging(level: str = "INFO", sink: TextIO | None = None) -> None:
    """Replace every sink with one human-readable sink at ``level`` (stderr by default)."""
    logger.remove()
    target = sink or sys.stderr
    logger.add(target, level=level.upper(), format=human_format, colorize=target.isatty())


def _emit_to_stdlib(message: Message) -> None:
    record = message.record
    target = logging.getLogger(f"foundry.{record['name']}")
    level = record["level"].no
    if not target.isEnabledFor(level):
        return
    target.handle(
        target.makeRecord(
            target.name,
            level,
            record["file"].path,
            record["line"],
            record["message"],
            (),
            None,
            record["function"],
            extra=dict(record["extra"]),
        )
    )


def bridge_to_stdlib(level: str = "DEBUG") -> int:
    """Send Foundry's records to stdlib ``logging``; returns the sink id (for ``logger.remove``).

    Call it once at the host's startup, after configuring ``logging``; job context fields
    (``job_id``, ``attempt``, ``queue``) arrive as attributes of each ``LogRecord``.
    """
    return logger.add(_emit_to_stdlib, level=level.upper(), format="{message}")


class _Intercept(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, "{}", record.getMessage())


def capture_stdlib(level: int = logging.WARNING) -> None:
    """Route stdlib ``logging`` records at ``level`` and above through loguru's sinks."""
    logging.basicConfig(handlers=[_Intercept()], level=level, force=True)
