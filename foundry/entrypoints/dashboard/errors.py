"""How errors become answers: a status and a message, never a traceback."""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from foundry.domain import (
    CacheUnavailable,
    FoundryError,
    InvalidJob,
    QueueBroken,
    QueueUnavailable,
)
from foundry.entrypoints.dashboard.values import BadInput

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """The job (or queue) asked for is not there."""


class Changed(Exception):
    """The job changed since the page offering the action was drawn (HTTP 409)."""


#: Errors shown as their own message, with their status; the first that matches wins (a
#: broken queue's data is no outage: the backend answers, one queue's keys are wrong).
_SHOWN: tuple[tuple[tuple[type[BaseException], ...], int], ...] = (
    ((BadInput, InvalidJob), 400),
    ((NotFound,), 404),
    ((Changed,), 409),
    ((QueueBroken,), 500),
)


def status_and_message(error: BaseException) -> tuple[int, str]:
    """The HTTP status and the message a client may see for ``error``."""
    for kinds, status in _SHOWN:
        if isinstance(error, kinds):
            return status, str(error)
    if isinstance(error, QueueUnavailable | CacheUnavailable):
        return 503, f"the queue backend is unreachable ({error}); the page retries"
    if isinstance(error, FoundryError):
        return 400, str(error)
    log.error("the dashboard failed on a request", exc_info=error)
    return 500, "the dashboard failed on this request; its log has the details"


def error_response(error: BaseException) -> JSONResponse:
    """``{"error": message}`` with the status for ``error``."""
    status, message = status_and_message(error)
    return JSONResponse({"error": message}, status_code=status)
