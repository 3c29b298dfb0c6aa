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


def status_and_message(error: BaseException) -> tuple[int, str]:
    """The HTTP status and the message a client may see for ``error``."""
    if isinstance(error, BadInput | InvalidJob):
        return 400, str(error)
    if isinstance(error, NotFound):
        return 404, str(error)
    if isinstance(error, QueueBroken):  # the backend answers; this queue's data is wrong
        return 500, str(error)
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
