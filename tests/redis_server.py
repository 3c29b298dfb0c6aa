"""Throwaway redis-server processes for tests: free port, own directory, never the shared one."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

_LOWEST_PORT = 20_000
_PICK = random.SystemRandom()  # not the seeded one: parallel test workers would pick alike


def free_port() -> int:
    """A TCP port nobody uses right now, below the kernel's ephemeral range.

    A port from that range (what binding port 0 gives) can be taken by any outgoing connection
    between this probe and the server's bind: under load a server then failed to start.
    """
    ceiling = _ephemeral_ports_start()
    for _ in range(1_000):
        port = _PICK.randrange(_LOWEST_PORT, ceiling)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {_LOWEST_PORT} and {ceiling}")


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


class RedisServer:
    """A redis-server this test owns: start, stop, kill, pause and restart it at will.

    Persistence is off unless ``appendonly`` is given; data lives in its own directory, so a
    restart with AOF on finds its data again.
    """

    def __init__(self, *, appendonly: bool = False, appendfsync: str = "everysec") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run ./dev test (it installs it)")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="foundry-redis-"))
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, **overrides: str) -> RedisServer:
        """Start (or start again, on the same port and directory); waits until it answers."""
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.dir),
            "save": "",
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": self.appendfsync,
            "logfile": str(self.dir / "redis.log"),
            **overrides,
        }
        args = [self.binary]
        for name, value in settings.items():
            args += [f"--{name}", value]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_up()
        return self

    def client(self) -> redis.Redis:
        """A plain client to inspect or poke the server."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _wait_until_up(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: {self._log_tail()}")
            try:
                with self.client() as probe:
                    if probe.ping():
                        return
            except redis.ConnectionError:
                time.sleep(0.02)
            except redis.ResponseError as error:  # LOADING: still reading the AOF
                if "LOADING" not in str(error):
                    raise
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not start: {self._log_tail()}")

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join((self.dir / "redis.log").read_text().splitlines()[-lines:])
        except OSError:
            return f"no log in {self.dir}"

    def stop(self) -> None:
        """Shut down cleanly (SHUTDOWN; with AOF on, everything acknowledged is kept)."""
        if self.process is None:
            return
        try:
            # No retries: redis-py's default retry would keep reconnecting to the dying server
            # (about 4 s per stop).
            no_retry = Retry(NoBackoff(), 0)
            with redis.Redis(host="127.0.0.1", port=self.port, retry=no_retry) as admin:
                admin.shutdown(nosave=not self.appendonly)
        except redis.ConnectionError:
            pass
        self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: what a power cut or the OOM killer would do."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def fill_past_maxmemory(self) -> None:
        """Used memory above a 1 MB ``maxmemory`` under ``noeviction``: every write refused
        for memory (OOM) until ``CONFIG SET maxmemory 0`` (this server's own config)."""
        client = self.client()
        client.set("ballast", "x" * 4_000_000)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1mb")

    def pause(self) -> None:
        """SIGSTOP: the server stops answering but keeps its connections."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def restart(self, **overrides: str) -> None:
        """Stop cleanly and start again on the same port and directory."""
        self.stop()
        self.start(**overrides)

    def close(self) -> None:
        """Kill the server and remove its directory."""
        if self.process is not None:
            self.resume()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
