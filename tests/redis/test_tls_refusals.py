"""A TLS server that speaks TLS but refuses this client (it asks for a client certificate, or
allows no TLS version the client does) is a setting to fix, said at once with the cause and
the fix: ``ConfigurationError``, exit 2, not an outage retried. A TCP connect that times out
is an outage, said as one (no TLS handshake was tried)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

import foundry
from foundry import Job
from foundry.domain import QueueUnavailable
from tests.redis.test_connection_refusals import _certificates, foundry_cli
from tests.redis.test_tls_mismatch import _refused
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

#: A TLS server's settings that refuse a client with no certificate of its own (over
#: TLS 1.2 the refusal ends the handshake; over TLS 1.3 it comes after it, on the first
#: read), or that allow only a TLS version the client does not.
_REFUSING = {
    "certificate, TLS 1.2": {"tls-auth-clients": "yes", "tls-protocols": "TLSv1.2"},
    "certificate, TLS 1.3": {"tls-auth-clients": "yes", "tls-protocols": "TLSv1.3"},
    "old version": {"tls-auth-clients": "no", "tls-protocols": "TLSv1.1"},
}
#: What each refusal's message says: its cause and its fix.
_SAID = {
    "certificate, TLS 1.2": ("refused the TLS handshake", "ssl_certfile="),
    "certificate, TLS 1.3": ("asks for a client certificate", "ssl_certfile="),
    "old version": ("no TLS version", "tls-protocols"),
}


@attrs.frozen
class TlsServer:
    """A redis-server with a TLS port, and the CA and the certificate it trusts."""

    server: RedisServer
    port: int
    certificates: dict[str, Path]

    def url(self, query: str = "") -> str:
        ca = self.certificates["ca.pem"]
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={ca}{query}"


@pytest.fixture
def tls_server_with(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> Callable[[dict[str, str]], TlsServer]:
    """Start a server with a TLS port (beside its plain one) set as ``settings`` say."""

    def start(settings: dict[str, str]) -> TlsServer:
        paths = _certificates(tmp_path)
        port = free_port()
        server = redis_server_factory()
        server.restart(
            **{
                "tls-port": str(port),
                "tls-cert-file": str(paths["cert.pem"]),
                "tls-key-file": str(paths["key.pem"]),
                "tls-ca-cert-file": str(paths["ca.pem"]),
                **settings,
            }
        )
        return TlsServer(server, port, paths)

    return start


@pytest.mark.parametrize("refusing", list(_REFUSING))
def test_a_tls_server_that_refuses_the_client_is_a_configuration_error_naming_cause_and_fix(
    tls_server_with: Callable[[dict[str, str]], TlsServer], refusing: str
) -> None:
    tls = tls_server_with(_REFUSING[refusing])

    refused = _refused(tls.url(), "queue")

    cause, fix = _SAID[refusing]
    assert f"127.0.0.1:{tls.port}" in str(refused)
    assert cause in str(refused)
    assert fix in str(refused)
    assert "may not speak TLS" not in str(refused)


@pytest.mark.parametrize("use", ["cache", "async_queue"])
@pytest.mark.parametrize("refusing", ["certificate, TLS 1.2", "certificate, TLS 1.3"])
def test_the_cache_and_the_asyncio_queue_say_the_refusal_too(
    tls_server_with: Callable[[dict[str, str]], TlsServer], refusing: str, use: str
) -> None:
    tls = tls_server_with(_REFUSING[refusing])

    refused = _refused(tls.url(), use)

    assert _SAID[refusing][0] in str(refused)
    assert "ssl_certfile=" in str(refused)


def test_the_client_certificate_named_as_the_fix_is_accepted(
    tls_server_with: Callable[[dict[str, str]], TlsServer],
) -> None:
    tls = tls_server_with(_REFUSING["certificate, TLS 1.3"])
    mine = tls.certificates  # signed by the CA the server trusts
    url = tls.url(f"&ssl_certfile={mine['cert.pem']}&ssl_keyfile={mine['key.pem']}")

    job = Job("t")
    with foundry.connect(url) as fx:
        fx.queue.enqueue(job)
        stored = fx.queue.get(job.id)

    assert stored is not None


def test_a_refusing_tls_server_from_the_cli_is_exit_2(
    tls_server_with: Callable[[dict[str, str]], TlsServer],
) -> None:
    tls = tls_server_with(_REFUSING["certificate, TLS 1.3"])

    done = foundry_cli("stats", env={"REDIS_URL": tls.url()})

    assert done.returncode == 2, done.stderr
    assert "asks for a client certificate" in done.stderr
    assert "after bounded retries" not in done.stderr


@pytest.fixture
def full_port() -> Iterator[int]:
    """A port whose listener's backlog is full: a TCP connect to it gets no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = [socket.socket() for _ in range(4)]
    for held in waiting:
        held.setblocking(False)
        held.connect_ex(("127.0.0.1", port))
    yield port
    for held in waiting:
        held.close()
    listener.close()


def test_an_asyncio_tls_connect_that_times_out_is_an_outage_not_a_handshake(
    full_port: int,
) -> None:
    settings = foundry.Settings().on(f"rediss://127.0.0.1:{full_port}/0")
    quick = attrs.evolve(settings, redis_connect_timeout=timedelta(seconds=0.05))

    async def enqueue(fx: foundry.Connection) -> None:
        try:
            await fx.async_queue.enqueue(Job("t"))
        finally:
            await fx.aclose()

    with foundry.connect(quick) as fx, pytest.raises(QueueUnavailable) as unavailable:
        asyncio.run(enqueue(fx))

    assert "TLS handshake" not in str(unavailable.value)
    assert "Timeout connecting" in str(unavailable.value)
