"""Throwaway Redis topologies for tests: a Sentinel-managed master (1 master, 1 replica, 3
sentinels) and a Redis Cluster (3 masters), each process on a free loopback port in its own
directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tests.redis_server import RedisServer, free_port

MASTER_NAME = "foundry-test"


class SentinelProcess:
    """One redis-sentinel (``redis-server --sentinel`` where the alias is not installed)."""

    def __init__(self, directory: Path, master_port: int, quorum: int) -> None:
        self.port = free_port()
        self.config = directory / f"sentinel-{self.port}.conf"
        self.log = directory / f"sentinel-{self.port}.log"
        # down-after above the sentinels' 1 s ping period: after a failover a sentinel sends
        # its first PING to the new master only 1 s after the switch, so with 1000 ms every
        # sentinel saw it down at once and failed over again, to whatever node was there (a
        # master restarted empty: every job gone).
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"logfile {self.log}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 2000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        )
        alias = shutil.which("redis-sentinel")
        binary = [alias] if alias else [str(shutil.which("redis-server")), "--sentinel"]
        self.process = subprocess.Popen(
            [binary[0], str(self.config), *binary[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        """A plain client of this sentinel (SENTINEL commands)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def knows_master(self) -> bool:
        """Whether this sentinel answers with the master's address."""
        try:
            with self.client() as probe:
                return probe.sentinel_get_master_addr_by_name(MASTER_NAME) is not None
        except redis.ConnectionError:
            return False

    def replicas(self) -> int:
        """How many replicas of the master this sentinel is connected to and sees in sync (the
        ones it may promote)."""
        with self.client() as probe:
            found = probe.sentinel_slaves(MASTER_NAME)
        return sum(
            replica.get("master-link-status") == "ok"
            and not (replica["is_disconnected"] or replica["is_sdown"] or replica["is_odown"])
            for replica in found
        )

    def switches(self) -> int:
        """How many times this sentinel has switched to another master (``+switch-master``)."""
        return self.log.read_text(errors="replace").count("+switch-master")

    def close(self) -> None:
        """Kill the sentinel."""
        self.process.kill()
        self.process.wait(timeout=10)


class SentinelGroup:
    """A master, a replica of it and three sentinels (quorum 2) that monitor it."""

    def __init__(self) -> None:
        self._held: dict[int, socket.socket] = {}
        # The replica's first sync starts at once (Redis waits 5 s for more replicas by default).
        self.master = RedisServer().start(**{"repl-diskless-sync-delay": "0"})
        self.replica = RedisServer().start(replicaof=f"127.0.0.1 {self.master.port}")
        self.sentinels = [SentinelProcess(self.master.dir, self.master.port, 2) for _ in range(3)]
        self._wait_for("the replica to sync and the sentinels to start", self._ready)

    def _ready(self) -> bool:
        with self.replica.client() as replica:
            synced = replica.info("replication").get("master_link_status") == "up"
        return synced and all(sentinel.knows_master() for sentinel in self.sentinels)

    def _wait_for(self, what: str, done: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; see {self.master.dir}")
            time.sleep(0.05)

    def fail_over(self) -> None:
        """Promote the replica (``SENTINEL FAILOVER``); returns once the sentinels name it."""
        first = self.sentinels[0]
        self._wait_for("the sentinels to find the replica", lambda: first.replicas() > 0)
        with first.client() as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        self._wait_for("the sentinels to name the replica", self._replica_promoted)

    def wait_for_promotion(self, timeout: float = 30) -> None:
        """Wait until every sentinel names the replica as the master (after a failover)."""
        self._wait_for("the sentinels to promote the replica", self._replica_promoted, timeout)

    def _replica_promoted(self) -> bool:
        def named(sentinel: SentinelProcess) -> bool:
            with sentinel.client() as probe:
                try:
                    address = probe.sentinel_get_master_addr_by_name(MASTER_NAME)
                except redis.ConnectionError:
                    return False
            return address is not None and int(address[1]) == self.replica.port

        return all(named(sentinel) for sentinel in self.sentinels)

    def switches(self) -> int:
        """The most master switches any sentinel made (1 after one failover)."""
        return max(sentinel.switches() for sentinel in self.sentinels)

    def url(self, master: str = MASTER_NAME, login: str = "") -> str:
        """``redis+sentinel://`` with every sentinel and ``master``."""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{login}{hosts}/{master}/0"

    def kill(self, server: RedisServer) -> None:
        """SIGKILL ``server`` and keep its port bound (not listening) until ``close``.

        The sentinels remember the address: were another test's redis-server to start on the
        freed port, they would take it for the old master come back and make it a replica.
        """
        server.kill()
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", server.port))
        self._held[server.port] = holder

    def restart(self, server: RedisServer) -> None:
        """Start a server ``kill`` stopped, on its port."""
        self._held.pop(server.port).close()
        server.start()

    def close(self) -> None:
        """Kill every process (the sentinels first) and remove their directories."""
        for sentinel in self.sentinels:
            sentinel.close()
        self.replica.close()
        self.master.close()
        for holder in self._held.values():
            holder.close()


class RedisClusterGroup:
    """``masters`` redis-servers with cluster mode on (and ``replicas`` of each), joined by
    ``redis-cli --cluster create`` (the slots split evenly over the first ``masters`` nodes);
    ready once every node says ``cluster_state:ok``."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self._held: dict[int, list[socket.socket]] = {}
        self._options: dict[int, dict[str, str]] = {}
        self.nodes = [self._start() for _ in range(masters * (1 + replicas))]
        try:
            self.cli(
                "--cluster", "create", *self.addresses(), "--cluster-replicas", str(replicas),
                "--cluster-yes",
            )  # fmt: skip
            self.wait_until_ok()
            self._wait_for_replicas()
        except BaseException:
            self.close()
            raise

    def _start(self) -> RedisServer:
        options = _cluster_options()
        node = RedisServer().start(**options)
        self._options[node.port] = options
        return node

    def kill(self, node: RedisServer) -> None:
        """SIGKILL ``node`` and keep its ports bound (not listening) until ``close``, so the
        other nodes never meet another server at its address."""
        node.kill()
        held = self._held.setdefault(node.port, [])
        for port in (node.port, int(self._options[node.port]["cluster-port"])):
            holder = socket.socket()
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(("127.0.0.1", port))
            held.append(holder)

    def restart(self, node: RedisServer) -> None:
        """Start a node ``kill`` stopped, on its ports and with its cluster config (its data
        gone: persistence is off); the cluster makes it a replica if its slots moved."""
        for holder in self._held.pop(node.port):
            holder.close()
        node.start(**self._options[node.port])

    def _alive(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.process is not None]

    def addresses(self) -> list[str]:
        """``127.0.0.1:<port>`` of every node."""
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    def url(self, login: str = "") -> str:
        """``redis+cluster://`` naming every node."""
        return f"redis+cluster://{login}{','.join(self.addresses())}"

    def cli(self, *args: str, timeout: float = 120) -> str:
        """Run ``redis-cli`` with ``args``; its output (``RuntimeError`` when it fails)."""
        done = subprocess.run(
            [str(shutil.which("redis-cli")), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def wait_until_ok(self, timeout: float = 30) -> None:
        """Wait until every node reports ``cluster_state:ok`` and the same slot map."""
        deadline = time.monotonic() + timeout
        while not self._agreed():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not settle; see {self.nodes[0].dir}")
            time.sleep(0.05)

    def _wait_for_replicas(self, timeout: float = 30) -> None:
        """Wait until every replica has made its first sync with its master."""
        deadline = time.monotonic() + timeout
        while not all(self._synced(node) for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas did not sync; see {self.nodes[0].dir}")
            time.sleep(0.05)

    @staticmethod
    def _synced(node: RedisServer) -> bool:
        with node.client() as probe:
            info = probe.info("replication")
        return bool(info["role"] == "master" or info.get("master_link_status") == "up")

    def _agreed(self) -> bool:
        maps = []
        for node in self._alive():
            with node.client() as probe:
                if b"cluster_state:ok" not in probe.execute_command("CLUSTER", "INFO"):
                    return False
                slots = probe.execute_command("CLUSTER", "SLOTS")
            maps.append(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots))
        return all(found == maps[0] for found in maps)

    def ranges(self, node: RedisServer) -> list[tuple[int, int]]:
        """The slot ranges ``node`` serves (first and last slot of each)."""
        with self._alive()[0].client() as probe:
            slots = probe.execute_command("CLUSTER", "SLOTS")
        return [(int(s[0]), int(s[1])) for s in slots if int(s[2][1]) == node.port]

    def owner(self, slot: int) -> RedisServer:
        """The master serving ``slot``."""
        with self._alive()[0].client() as probe:
            for first, last, master, *_ in probe.execute_command("CLUSTER", "SLOTS"):
                if int(first) <= slot <= int(last):
                    port = int(master[1])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"slot {slot} is not served")

    def replica_of(self, master: RedisServer) -> RedisServer:
        """The (first) replica of ``master``."""
        with master.client() as probe:
            port = int(probe.info("replication")["slave0"]["port"])
        return next(node for node in self.nodes if node.port == port)

    def node_id(self, node: RedisServer) -> str:
        """The cluster's id of ``node``."""
        with node.client() as probe:
            return str(probe.execute_command("CLUSTER", "MYID").decode())

    def close(self) -> None:
        """Kill every node and remove their directories."""
        for node in self.nodes:
            node.close()
        for held in self._held.values():
            for holder in held:
                holder.close()


def lone_cluster_node(last_slot: int = 16383, password: str | None = None) -> RedisServer:
    """A one-node cluster serving slots 0 to ``last_slot`` (fewer than all: a cluster with
    uncovered slots), asking for ``password`` if given; waits until the node took them."""
    node = RedisServer().start(**_cluster_options())
    with node.client() as probe:
        probe.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, last_slot)
        deadline = time.monotonic() + 10
        while b"cluster_slots_assigned:%d" % (last_slot + 1) not in probe.execute_command(
            "CLUSTER", "INFO"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node took no slots; see {node.dir}")
            time.sleep(0.02)
        if password is not None:
            probe.config_set("requirepass", password)
    return node


def _cluster_options() -> dict[str, str]:
    return {
        "cluster-enabled": "yes",
        "cluster-port": str(free_port()),  # the bus, where port + 10000 may be out of range
        "cluster-config-file": "nodes.conf",  # in the node's own directory
        "cluster-node-timeout": "2000",
        "repl-diskless-sync-delay": "0",  # a replica's first sync starts at once, not in 5 s
    }
