"""Connections no retry can fix are said at once, as configuration errors (exit 2): a URL that
cannot be read, a password Redis refuses, a TLS certificate that does not verify, a database
the server does not have, a cluster or Sentinel URL naming a plain server.

"At once" is counted in connections the server accepted, not in seconds (a loaded machine
takes seconds to start a process): a retried refusal would connect seven times."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

import foundry
from tests.redis_server import RedisServer, free_port
from tests.redis_topologies import RedisClusterGroup, SentinelGroup

pytestmark = pytest.mark.redis
SCRIPT = "from foundry.entrypoints.cli import main; main()"


def foundry_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``foundry ARGS`` in a process of its own (its logging configured as a user's would be)."""
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def connections_received(watcher: redis.Redis) -> int:
    """How many connections the server has accepted so far (``watcher`` keeps its own open)."""
    return int(watcher.info("stats")["total_connections_received"])


def test_a_redis_url_that_cannot_be_read_is_exit_2_naming_it() -> None:
    done = foundry_cli("stats", env={"REDIS_URL": "redis://127.0.0.1:6379/5x"})  # others: unit

    assert done.returncode == 2, done.stderr
    assert "REDIS_URL" in done.stderr
    assert "database in the path must be a number" in done.stderr
    assert "Traceback" not in done.stderr


def test_connect_refuses_a_url_whose_database_is_not_a_number() -> None:
    with pytest.raises(foundry.ConfigurationError, match="database in the path"):
        foundry.connect("redis://127.0.0.1:6379/5x")


@pytest.fixture
def locked(redis_server_factory: Callable[..., RedisServer]) -> tuple[RedisServer, redis.Redis]:
    """A server with a password, and a client that connected before it was set."""
    server = redis_server_factory()
    watcher = server.client()
    watcher.config_set("requirepass", "s3cret-word")
    return server, watcher


@pytest.mark.parametrize(
    ("url", "command"),
    [
        ("redis://127.0.0.1:{port}/0", ("check",)),  # no password
        ("redis://:wrong-word@127.0.0.1:{port}/0", ("work", "--app", "tests.e2e.apps:registry")),
    ],
)
def test_a_password_redis_refuses_is_said_at_once_with_the_fix_exit_2(
    locked: tuple[RedisServer, redis.Redis], url: str, command: tuple[str, ...]
) -> None:
    server, watcher = locked
    before = connections_received(watcher)

    done = foundry_cli(*command, env={"REDIS_URL": url.format(port=server.port)})

    assert done.returncode == 2, done.stderr
    assert "authentication failed for redis://" in done.stderr
    assert "set REDIS_PASSWORD or the URL's password" in done.stderr
    assert "wrong-word" not in done.stderr
    assert connections_received(watcher) - before <= 2  # no retries first


def test_the_queue_port_raises_a_configuration_error_for_a_refused_password(
    locked: tuple[RedisServer, redis.Redis],
) -> None:
    server, _ = locked
    settings = foundry.Settings(redis_url=f"redis://:nope@127.0.0.1:{server.port}/0")

    with (
        foundry.connect(settings) as fx,
        pytest.raises(foundry.ConfigurationError, match="authentication failed"),
    ):
        fx.queue.stats("default")


@pytest.mark.parametrize(
    "command", [("check",), ("stats",), ("work", "--app", "tests.e2e.apps:registry")]
)
def test_a_database_the_server_does_not_have_is_exit_2_naming_the_fix(
    redis_server_factory: Callable[..., RedisServer], command: tuple[str, ...]
) -> None:
    server = redis_server_factory()

    done = foundry_cli(*command, env={"REDIS_URL": f"redis://127.0.0.1:{server.port}/99"})

    assert done.returncode == 2, done.stderr
    assert "is one the server does not have (DB index is out of range)" in done.stderr
    assert "use a number below its `databases` setting" in done.stderr


def test_the_ports_raise_a_configuration_error_for_a_database_the_server_does_not_have(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    settings = foundry.Settings(redis_url=f"redis://127.0.0.1:{server.port}/99")
    registry = foundry.JobRegistry()
    registry.job(name="noop")(lambda: None)
    calls: list[Callable[[foundry.Connection], object]] = [
        lambda fx: fx.dispatcher(registry).dispatch("noop"),
        lambda fx: fx.queue.stats("default"),
        lambda fx: fx.cache.get("key"),
    ]

    with foundry.connect(settings) as fx:
        for call in calls:
            with pytest.raises(foundry.ConfigurationError, match="databases` setting"):
                call(fx)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("redis+cluster://127.0.0.1:{port}", "is not a Redis Cluster"),
        ("redis+sentinel://127.0.0.1:{port}/mymaster", "is a Redis server, not a Sentinel"),
    ],
)
def test_a_cluster_or_sentinel_url_naming_a_plain_server_is_exit_2(
    redis_server_factory: Callable[..., RedisServer], url: str, said: str
) -> None:
    server = redis_server_factory()

    done = foundry_cli("check", env={"REDIS_URL": url.format(port=server.port)})

    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert "use redis://host:6379/0" in done.stderr


def test_a_plain_url_naming_a_cluster_node_is_exit_2_naming_the_cluster_url(
    redis_cluster: RedisClusterGroup,
) -> None:
    node = redis_cluster.nodes[0]
    url = f"redis://127.0.0.1:{node.port}/0"
    queues = (f"q{n}" for n in range(100))
    elsewhere = next(q for q in queues if redis_cluster.owner(key_slot(q.encode())) != node)

    done = foundry_cli("check", env={"REDIS_URL": url})
    with (
        foundry.connect(foundry.Settings(redis_url=url)) as fx,
        pytest.raises(foundry.ConfigurationError) as raised,
    ):
        fx.queue.enqueue(foundry.Job("task", queue=elsewhere))  # its slot is on another node

    assert done.returncode == 2, done.stderr
    assert "is a node of a Redis Cluster: use redis+cluster://" in done.stderr
    assert "use redis+cluster://" in str(raised.value)


def test_a_plain_url_naming_a_sentinel_is_exit_2_naming_the_sentinel_url(
    redis_sentinel: SentinelGroup,
) -> None:
    url = f"redis://127.0.0.1:{redis_sentinel.sentinels[0].port}/0"

    done = foundry_cli("check", env={"REDIS_URL": url})
    with (
        foundry.connect(foundry.Settings(redis_url=url)) as fx,
        pytest.raises(foundry.ConfigurationError) as raised,
    ):
        fx.queue.enqueue(foundry.Job("task"))

    assert done.returncode == 2, done.stderr
    assert "is a Sentinel, not a Redis server: use redis+sentinel://" in done.stderr
    assert "use redis+sentinel://" in str(raised.value)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certificates(folder: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed."""
    paths = {name: folder / name for name in ("ca.key", "ca.pem", "key.pem", "cert.pem")}
    new_key = ("req", "-newkey", "rsa:2048", "-nodes", "-days", "1")
    _openssl(
        *new_key, "-x509", "-keyout", paths["ca.key"], "-out", paths["ca.pem"], "-subj", "/CN=ca"
    )
    csr, ext = folder / "server.csr", folder / "ext"
    _openssl(*new_key, "-keyout", paths["key.pem"], "-out", csr, "-subj", "/CN=127.0.0.1")
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        *("x509", "-req", "-in", csr, "-CA", paths["ca.pem"], "-CAkey", paths["ca.key"]),
        *("-CAcreateserial", "-out", paths["cert.pem"], "-days", "1", "-extfile", ext),
    )
    return paths


@pytest.fixture
def tls_server(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> tuple[RedisServer, int, Path]:
    paths = _certificates(tmp_path)
    port = free_port()
    server = redis_server_factory()
    server.restart(  # a TLS port beside the plain one it is watched on
        **{
            "tls-port": str(port),
            "tls-cert-file": str(paths["cert.pem"]),
            "tls-key-file": str(paths["key.pem"]),
            "tls-ca-cert-file": str(paths["ca.pem"]),
            "tls-auth-clients": "no",
        }
    )
    return server, port, paths["ca.pem"]


def test_a_tls_certificate_that_does_not_verify_is_said_at_once_with_how_to_pass_the_ca(
    tls_server: tuple[RedisServer, int, Path],
) -> None:
    server, port, ca = tls_server
    watcher = server.client()
    before = connections_received(watcher)

    refused = foundry_cli("check", env={"REDIS_URL": f"rediss://127.0.0.1:{port}/0"})
    refused_after = connections_received(watcher)
    trusted = foundry_cli(
        "check", env={"REDIS_URL": f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"}
    )

    assert refused.returncode == 2, refused.stderr
    assert "TLS certificate verification failed" in refused.stderr
    assert "ssl_ca_certs=" in refused.stderr
    assert refused_after - before <= 2  # no retries first
    assert trusted.returncode == 0, trusted.stderr


def test_sentinels_whose_certificate_does_not_verify_are_said_briefly_with_the_fix(
    tls_server: tuple[RedisServer, int, Path],
) -> None:
    _, port, _ = tls_server  # a TLS port stands for the sentinels: the handshake fails first

    refused = foundry_cli("check", env={"REDIS_URL": f"rediss+sentinel://127.0.0.1:{port}/m/0"})

    assert refused.returncode == 2, refused.stderr
    assert "TLS certificate verification failed" in refused.stderr
    assert f"(127.0.0.1:{port}: Error 1 connecting" in refused.stderr
    assert "ssl_ca_certs=" in refused.stderr
    assert "SSLConnection(" not in refused.stderr
