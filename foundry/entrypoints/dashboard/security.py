"""The dashboard's guard: who may connect, which requests may change state, what the browser
may run.

* Bound to a loopback address, the dashboard answers only requests whose ``Host`` is a
  loopback name (a page of another site cannot reach it by DNS rebinding). Bound elsewhere it
  requires ``FOUNDRY_DASHBOARD_TOKEN``: as HTTP Basic password (any user name) or as
  ``Authorization: Bearer <token>``; ``check_bind`` refuses to start without one.
* Every POST carries the process's CSRF token, as ``X-CSRF-Token`` or the form field
  ``csrf_token``; other pages cannot read it, so they cannot forge an action. Other methods
  that change state are not routed at all.
* Every response forbids inline scripts and framing (Content-Security-Policy), so even text
  that escaped escaping could not run.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import attrs

from foundry.domain import ConfigurationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_VARIABLE = "FOUNDRY_DASHBOARD_TOKEN"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_BODY = 1024 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, maybe ``[v6]``) is this machine only."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token (``ConfigurationError``)."""
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host} without a token: anyone who can reach "
            f"it could retry, delete and purge jobs. Set {TOKEN_VARIABLE} to a long random "
            "secret (browsers then ask for it as the password), or bind 127.0.0.1"
        )


@attrs.frozen
class GuardConfig:
    """What the guard enforces: the access token (None on loopback binds without one), the
    CSRF token of this process, and whether ``Host`` must be a loopback name."""

    token: str | None
    csrf: str = attrs.field(factory=lambda: secrets.token_urlsafe(32))
    loopback_only: bool = True


class Guard:
    """ASGI middleware applying ``GuardConfig`` to every HTTP request."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self._app = app
        self._config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, then pass the request on with the security headers added."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is None and scope["method"] == "POST":
            body, refusal = await self._checked_body(headers, receive)
            receive = _replay(body)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        await self._app(scope, receive, _with_headers(send))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        config = self._config
        if config.loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
            return 403, "this dashboard answers only requests addressed to a loopback name"
        if config.token is not None and not _authorized(headers, config.token):
            return 401, f"give the dashboard token ({TOKEN_VARIABLE}) as the password"
        if scope["method"] not in ("GET", "HEAD", "POST"):
            return 405, "only GET and POST are served"
        return None

    async def _checked_body(
        self, headers: dict[str, str], receive: Receive
    ) -> tuple[bytes, tuple[int, str] | None]:
        body = await _read_body(receive)
        if body is None:
            return b"", (413, f"request bodies are limited to {MAX_BODY} bytes")
        given = headers.get(CSRF_HEADER) or _form_field(headers, body, CSRF_FIELD)
        if not given or not hmac.compare_digest(given.encode(), self._config.csrf.encode()):
            return body, (
                403,
                "missing or wrong CSRF token: reload the page (a restarted dashboard has a "
                "new token, so pages opened before it are stale); scripts send the token as "
                "X-CSRF-Token (GET /api/csrf gives it) or the form field csrf_token",
            )
        return body, None


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _authorized(headers: dict[str, str], token: str) -> bool:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def _form_field(headers: dict[str, str], body: bytes, name: str) -> str | None:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("latin-1")).get(name)
    return values[0] if values else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *_HEADERS]
        await send(message)

    return sending


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), *_HEADERS]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="foundry dashboard"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
