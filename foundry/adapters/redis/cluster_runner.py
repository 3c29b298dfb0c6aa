"""The library's functions on Redis Cluster: each call sent to the master of its keys' slot.

Every call names the keys of one slot (a queue's keys share its ``{queue}`` tag; the cache
groups its keys by slot), so the slot of its first key says where it goes. Each master gets a
``FunctionRunner`` of its own (this thread's own connection to it, as on one server), and with
it the loading of the library where Redis answers "Function not found": a master that a
resharding or a failover brings in is loaded the first time a call reaches it.

Redirections: ``MOVED`` (the slot has moved: the slot map is updated and the call goes to the
new master), ``ASK`` (the slot is being migrated and this key has left: the call goes once to
the importing master behind ``ASKING``), ``TRYAGAIN`` (a migration holds some of the call's
keys on each side: sent again shortly) and ``CLUSTERDOWN``. Each of these replies means the
call did not run, so sending it again is safe even for a call that may not be re-sent after a
lost reply. A master that cannot be reached (failover) has the slot map read again, and a
call that is safe to re-send goes to the new master; while no other master serves the slot,
the call is sent again under the cluster client's retry policy (its backoff between tries),
as the cluster client sends its own commands (the connections to each node have no retries of
their own).

A queue function's call names one more key than the queue's: ``<prefix>:{<queue>}:moving``,
which nothing ever writes. While a slot is being migrated Redis runs a call only where all of
its keys are (ASK or TRYAGAIN otherwise), so with that key missing everywhere no queue function
runs on either side until the slot has moved: none works on a queue half moved (the keys a
function builds from its queue's name, past its KEYS, could otherwise be on the other side).

``call_many`` splits its calls by master, in order, one write per master; the plain command in
front (the claim's ``BLPOP``) rides with the calls of its own key's master.

``REDIS_WAIT_REPLICAS``: a durable call's ``WAIT`` goes behind it, on the same connection to the
master that ran it (``WAIT`` counts the replicas holding that connection's writes), so it waits
for that master's replicas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    TryAgainError,
)

from foundry.adapters.redis.cluster import as_driver_error, is_cluster
from foundry.adapters.redis.durability import Durability
from foundry.adapters.redis.runner import Arg, Call, FunctionRunner

if TYPE_CHECKING:
    import redis.asyncio

    from foundry.adapters.redis.async_runner import AsyncFunctionRunner

#: How many times one call waits for a migration (``TRYAGAIN``) or a cluster that is down
#: before it gives up (about 5.6 s in all: ``pause_s``); it follows twice as many ``MOVED`` and
#: ``ASK`` redirections, which send it on at once.
MAX_REDIRECTS = 16
#: How long to wait before sending again a call that met a migration under way (TRYAGAIN) or a
#: cluster that is down; doubled each time, at most ``_PAUSE_CAP_S``.
_PAUSE_S = 0.01
_PAUSE_CAP_S = 0.5


def pause_s(attempt: int) -> float:
    """How long to wait before sending again a call that met a migration (or a cluster down)
    ``attempt`` times before (0 the first)."""
    return min(_PAUSE_S * (1 << attempt), _PAUSE_CAP_S)


#: The replies that say a call did not run and may go again (see the module docstring).
REDIRECTS = (MovedError, AskError, TryAgainError, ClusterDownError)


class SlotKeptMoving(redis.ConnectionError):
    """A call waited ``MAX_REDIRECTS`` times for its slot's migration (or its redirections ran
    out): an outage, but not sent again under the cluster client's retry policy, which would
    wait as long again each time."""

    @classmethod
    def after(cls, slot: int, waits: int, moves: int) -> SlotKeptMoving:
        """The error for a call on ``slot`` that waited ``waits`` times, was redirected
        ``moves`` times, and gave up: naming the fix."""
        return cls(
            f"slot {slot} kept moving: the call waited {waits} times for its migration and "
            f"was redirected {moves} times; a resharding that stopped half way is finished "
            "with redis-cli --cluster fix <host:port>"
        )


def _outage(error: Exception) -> bool:
    """Whether the cluster client's retry policy sends a call that failed so again."""
    return not isinstance(error, SlotKeptMoving)


def function_runner(client: redis.Redis, durability: Durability | None = None) -> FunctionRunner:
    """The runner for ``client``: ``ClusterFunctionRunner`` for a cluster client."""
    if is_cluster(client):
        return ClusterFunctionRunner(client, durability)
    return FunctionRunner(client, durability)


def async_function_runner(
    client: redis.asyncio.Redis, durability: Durability | None = None
) -> AsyncFunctionRunner:
    """The asyncio runner for ``client``: ``AsyncClusterFunctionRunner`` for a cluster (both
    imported here: a sync worker never loads redis-py's asyncio client)."""
    if is_cluster(client):
        from foundry.adapters.redis.async_cluster_runner import (  # noqa: PLC0415
            AsyncClusterFunctionRunner,
        )

        return AsyncClusterFunctionRunner(client, durability)
    from foundry.adapters.redis.async_runner import AsyncFunctionRunner  # noqa: PLC0415

    return AsyncFunctionRunner(client)


def _nothing(_: Exception) -> None:
    """A failed try needs no clean-up: it has read the slot map again."""


def held(name: str, keys: Sequence[str]) -> Sequence[str]:
    """``keys`` and, for a queue function, its queue's never-written ``moving`` key."""
    end = keys[0].find("}") if not name.startswith("cache_") else -1
    return keys if end < 0 else (*keys, f"{keys[0][: end + 1]}:moving")


def slot_of(keys: Sequence[str]) -> int:
    """The hash slot of a call's keys (they share it: the first one's)."""
    return int(key_slot(keys[0].encode()))


class ClusterFunctionRunner(FunctionRunner):
    """Calls the library's functions on a cluster (see the module's docstring)."""

    routes_by_key = True

    def __init__(self, client: redis.Redis, durability: Durability | None = None) -> None:
        super().__init__(client, durability)
        self.cluster = cast(RedisCluster, client)  # connection.connect types it as redis.Redis
        self._masters: dict[str, FunctionRunner] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's own connection to every master (``close_runners``)."""
        for runner in list(self._masters.values()):
            runner.close()

    def call(
        self, name: str, keys: Sequence[str], args: Sequence[Arg], *, resend: bool = True
    ) -> Any:
        """As ``FunctionRunner.call``, on the master of ``keys``' slot."""
        keys = held(name, keys)
        if not resend:
            return self._call(name, keys, args, resend=False)
        return self._through_outages(lambda: self._call(name, keys, args))

    def _through_outages(self, send: Callable[[], Any]) -> Any:
        """``send()``, sent again under the cluster client's retry policy while a master
        cannot be reached (each failed try has read the slot map again)."""
        return self.cluster.retry.call_with_retry(send, _nothing, is_retryable=_outage)

    def _call(
        self, name: str, keys: Sequence[str], args: Sequence[Arg], *, resend: bool = True
    ) -> Any:
        slot = slot_of(keys)
        asked: ClusterNode | None = None
        waits = moves = 0
        while waits < MAX_REDIRECTS and moves < 2 * MAX_REDIRECTS:
            runner = self._runner(slot) if asked is None else self._node_runner(asked)
            try:
                if asked is not None:
                    return runner.call_many([(name, keys, args)], first=["ASKING"])[0]
                return runner.call(name, keys, args, resend=resend)
            except REDIRECTS as error:
                moved = isinstance(error, MovedError)
                asked = self._follow(error, slot, waits)
                if moved or asked is not None:
                    moves += 1  # sent on at once
                else:
                    waits += 1
            except (redis.ConnectionError, redis.TimeoutError):
                if not (resend and self._moved_away(slot, runner)):
                    raise
                asked = None
        raise SlotKeptMoving.after(slot, waits, moves)

    def call_many(
        self, calls: Sequence[Call], *, first: Sequence[Arg] = (), errors_in_place: bool = False
    ) -> list[Any]:
        """As ``FunctionRunner.call_many``: one write per master, in order; ``first`` goes in
        front of the calls of its own key's master. With ``errors_in_place`` a redirection
        answering one call sends that call alone (it follows its own), and another error
        reply takes its call's place."""
        held_calls = [(name, held(name, keys), args) for name, keys, args in calls]
        gather = self._call_each if errors_in_place else self._call_many
        replies: list[Any] = self._through_outages(lambda: gather(held_calls, first))
        return replies

    def _call_each(self, calls: Sequence[Call], first: Sequence[Arg]) -> list[Any]:
        """``_call_many`` with error replies in their calls' places; a call a redirection
        answered is sent again alone (the redirection says it did not run)."""
        replies = self._call_many(calls, first, errors_in_place=True)
        for index, reply in enumerate(replies):
            if isinstance(reply, REDIRECTS):
                replies[index] = self._own_reply(calls[index])
        return replies

    def _own_reply(self, one: Call) -> Any:
        """``one``'s reply, sent alone: its error reply returned, not raised."""
        try:
            return self._call(*one)
        except redis.ResponseError as error:
            if isinstance(error, REDIRECTS):  # it kept moving: as when raised
                raise
            return error

    def _call_many(
        self, calls: Sequence[Call], first: Sequence[Arg], *, errors_in_place: bool = False
    ) -> list[Any]:
        groups: dict[str, list[int]] = {}
        for index, (_, keys, _) in enumerate(calls):
            groups.setdefault(self._master_of(slot_of(keys)).name, []).append(index)
        head = self._master_of(slot_of([str(first[1])])).name if first else None
        replies: list[Any] = [None] * len(calls)
        # The master with the blocking command in front is written to last.
        for master in sorted(groups, key=lambda name: name == head):
            indexes = groups[master]
            runner = self._masters_runner(master)
            try:
                front = first if master == head else ()
                group = [calls[i] for i in indexes]
                got = runner.call_many(group, first=front, errors_in_place=errors_in_place)
            except REDIRECTS:
                got = [self._call(*calls[i]) for i in indexes]  # each follows its own
            except (redis.ConnectionError, redis.TimeoutError):
                if not self._moved_away(slot_of(calls[indexes[0]][1]), runner):
                    raise
                resend = self._own_reply if errors_in_place else lambda one: self._call(*one)
                got = [resend(calls[i]) for i in indexes]
            for index, reply in zip(indexes, got, strict=True):
                replies[index] = reply
        return replies

    def load(self) -> list[str]:
        """Load the library on every master; the other Foundry libraries any of them holds."""
        others: set[str] = set()
        for node in self.cluster.get_primaries():  # type: ignore[no-untyped-call]
            others.update(self._node_runner(node).load())
        return sorted(others)

    def _follow(self, error: Exception, slot: int, attempt: int) -> ClusterNode | None:
        """Act on a redirection; the master to send the call to once behind ``ASKING``, or
        ``None``: the call goes to the slot's master again."""
        nodes = self.cluster.nodes_manager
        if isinstance(error, MovedError):  # before AskError: redis-py derives it from that
            nodes.move_slot(error)
            if nodes.get_node_from_slot(slot).redis_connection is None:
                self._refresh()
            return None
        if isinstance(error, AskError):
            node = nodes.get_node(host=error.host, port=error.port)
            if node is not None and node.redis_connection is not None:
                return node
        time.sleep(pause_s(attempt))  # TRYAGAIN, CLUSTERDOWN, ASK
        if isinstance(error, ClusterDownError | AskError):
            self._refresh()
        return None

    def _moved_away(self, slot: int, runner: FunctionRunner) -> bool:
        """After ``runner``'s master could not be reached: read the slot map again and say
        whether another master serves ``slot`` now."""
        try:
            self._refresh()
        except redis.RedisError:
            return False
        return self._runner(slot) is not runner

    def _refresh(self) -> None:
        with self._lock:
            try:
                self.cluster.nodes_manager.initialize()
            except RedisClusterException as error:
                raise as_driver_error(error) from error

    def _runner(self, slot: int) -> FunctionRunner:
        return self._node_runner(self._master_of(slot))

    def _master_of(self, slot: int) -> ClusterNode:
        try:
            return self.cluster.nodes_manager.get_node_from_slot(slot)
        except RedisClusterException as error:  # a slot no master serves
            raise as_driver_error(error) from error

    def _masters_runner(self, name: str) -> FunctionRunner:
        node = self.cluster.nodes_manager.get_node(node_name=name)
        assert node is not None
        return self._node_runner(node)

    def _node_runner(self, node: ClusterNode) -> FunctionRunner:
        runner = self._masters.get(node.name)
        client = node.redis_connection
        if runner is None or runner.client is not client:
            if client is None:
                self._refresh()
                client = self.cluster.nodes_manager.get_node(node_name=node.name)
                client = None if client is None else client.redis_connection
                if client is None:
                    raise redis.ConnectionError(f"no connection to cluster node {node.name}")
            runner = self._masters[node.name] = FunctionRunner(client, self.durability)
        return runner
