"""A loopback TCP proxy that misbehaves on demand, between Foundry clients and a redis-server.

Faults, each switchable at any time and undone by ``heal``:

* ``reset()``: abort every open connection with a TCP RST (both sides), as a dying NAT or a
  restarted load balancer would;
* ``refuse = True``: accept new connections and reset them at once (Redis "down" for clients
  while the server itself is fine);
* ``latency = s``: hold every chunk ``s`` seconds before passing it on;
* ``drop_replies = True``: forward requests to Redis but throw its replies away, so a command
  is applied while its client sees a timeout and re-sends it - the lost-reply case Foundry's
  idempotent scripts exist for.

One thread accepts; one thread per connection pumps both directions with ``select``, so a
reset is done by the thread that owns the sockets.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time

_CHUNK = 65536
_POLL = 0.05


class FaultProxy:
    """Forward 127.0.0.1:``port`` to ``target_port``, with switchable faults."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.latency = 0.0
        self.drop_replies = False
        self.refuse = False
        self.dropped_bytes = 0
        self.resets = 0
        self.accepted = 0
        #: Every byte the clients sent through (to count the commands they sent).
        self.requests = bytearray()
        self._generation = 0
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<proxy port>/0``: give this to the clients under test."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        self._spawn(self._accept_loop)
        return self

    def reset(self) -> None:
        """Abort every connection open now with an RST; new ones are served normally."""
        with self._lock:
            self._generation += 1

    def heal(self) -> None:
        """Stop every fault: no latency, replies delivered, connections accepted."""
        self.latency = 0.0
        self.drop_replies = False
        self.refuse = False

    def close(self) -> None:
        """Stop accepting, drop every connection, and wait for the threads."""
        self._stopping.set()
        self.reset()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads = [alive for alive in self._threads if alive.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.refuse:
                _abort(client)
                self.resets += 1
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _abort(client)
                continue
            self._spawn(self._pump, client, upstream, self._generation)

    def _pump(self, client: socket.socket, upstream: socket.socket, generation: int) -> None:
        sockets = [client, upstream]
        try:
            while generation == self._generation:
                readable, _, _ = select.select(sockets, [], [], _POLL)
                for source in readable:
                    data = source.recv(_CHUNK)
                    if not data:
                        return
                    reply = source is upstream
                    self._forward(data, client if reply else upstream, reply=reply)
        except OSError:
            return
        finally:
            if generation != self._generation:
                self.resets += 1
            _abort(client)
            _abort(upstream)

    def _forward(self, data: bytes, destination: socket.socket, *, reply: bool) -> None:
        if self.latency:
            time.sleep(self.latency)
        if reply and self.drop_replies:
            self.dropped_bytes += len(data)
            return
        if not reply:
            with self._lock:
                self.requests += data
        destination.sendall(data)


def _abort(connection: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets an RST, not a polite FIN."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
