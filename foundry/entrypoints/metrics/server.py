"""Serving ``/metrics``: one small WSGI server on one thread, safe to fork beside.

The worker's parent forks children while this thread runs. A fork copies memory, locks
included, but not threads, so a lock the thread held at that instant would stay held in the
child forever. The thread therefore answers each scrape inside a *gate* that every fork of
this process passes first (``os.register_at_fork``): a fork waits for a scrape in flight to
end, and between scrapes the thread holds no lock (it waits in ``select``). Children never
touch the metrics anyway; the gate keeps the interpreter's own state consistent.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from foundry.domain import ConfigurationError

_GATE = threading.Lock()
_gate_installed = False

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _install_gate() -> None:
    global _gate_installed  # noqa: PLW0603 - register_at_fork hooks cannot be removed: once
    if not _gate_installed:
        os.register_at_fork(
            before=_GATE.acquire,
            after_in_parent=_GATE.release,
            after_in_child=_GATE.release,
        )
        _gate_installed = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr; a client that stalls is dropped after ``timeout`` seconds."""

    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged."""


def _gated(app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> Any:
    def serve(environ: Environ, start_response: StartResponse) -> list[bytes]:
        with _GATE:
            return list(app(environ, start_response))

    return serve


def _bind_fix(error: OSError) -> str:
    """What to change when binding failed: the port if it is taken, else the host."""
    if error.errno == errno.EADDRINUSE:
        return "choose another --metrics-port / --port, or free that one"
    return "bind an address of this machine with --metrics-host / --host (127.0.0.1, 0.0.0.0)"


class MetricsServer:
    """``/metrics`` of ``registry`` on ``host:port``, served by one daemon thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        _install_gate()
        try:
            self._server: WSGIServer = make_server(
                host, port, _gated(make_wsgi_app(registry)), handler_class=_QuietHandler
            )
        except OSError as error:
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} ({error.strerror or error}); "
                + _bind_fix(error)
            ) from error
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="foundry-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked for any free one)."""
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
