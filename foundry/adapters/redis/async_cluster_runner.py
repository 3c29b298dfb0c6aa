"""Redis Cluster from asyncio: ``AsyncClusterFunctionRunner`` (see ``cluster_runner``, whose
redirection rules and bound it follows), in a module of its own so that a sync worker never
imports redis-py's asyncio cluster client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Sequence
from functools import partial
from typing import Any, cast

import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    ResponseError,
)

from foundry.adapters.redis.async_cluster import AsyncClusterClient
from foundry.adapters.redis.async_loop_end import at_loop_end
from foundry.adapters.redis.async_runner import AsyncFunctionRunner
from foundry.adapters.redis.cluster import as_driver_error
from foundry.adapters.redis.cluster_runner import (
    MAX_REDIRECTS,
    REDIRECTS,
    SlotKeptMoving,
    held,
    pause_s,
    slot_of,
)
from foundry.adapters.redis.durability import DURABLE, Durability
from foundry.adapters.redis.runner import Arg, library, missing


class AsyncClusterFunctionRunner(AsyncFunctionRunner):
    """The asyncio runner on a cluster: each call goes to its slot's master and follows its
    redirections (``_routed``); where a master lacks the library it is loaded (on every
    master) and the call sent again.

    An asyncio cluster client belongs to the event loop that first used it: another loop (or
    a forked child) gets a client of its own, made from the first one's nodes and settings
    (``cluster.AsyncClusterClient``, as ``connection.connect_async`` makes). Each one has its
    connections closed when its loop is shut down (``async_loop_end``), so a loop per request
    (async views under WSGI) leaves none open.

    With ``durability`` a durable call and its ``WAIT`` go together on one connection of the
    call's master (``_durable``).
    """

    def __init__(self, client: redis.asyncio.Redis, durability: Durability | None = None) -> None:
        super().__init__(client)
        self._first = cast(AsyncRedisCluster, client)  # typed as redis.asyncio.Redis
        self._here: tuple[asyncio.AbstractEventLoop, int] | None = None
        #: By the id of each loop's client: that loop, and what closes the client at its end.
        self._closings: dict[int, tuple[asyncio.AbstractEventLoop, AsyncGenerator[None, None]]]
        self._closings = {}
        self._durability = durability or Durability()
        self._wait = self._durability.wait_command()
        self.waits_for_replicas = self._wait is not None

    @property
    def cluster(self) -> AsyncRedisCluster:
        """The cluster client of the running loop."""
        here = (asyncio.get_running_loop(), os.getpid())
        if self._here is None:
            self._here = here
        elif self._here != here and isinstance(self._first, AsyncClusterClient):
            self.client = cast(redis.asyncio.Redis, self._first.again())
            self._here = here
        return cast(AsyncRedisCluster, self.client)

    async def call(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """FCALL ``name`` on the master of ``keys``' slot."""
        if id(self.cluster) not in self._closings:
            await self._close_at_loop_end(self.cluster)
        keys = held(name, keys)
        command = ("FCALL", self.library.function[name], len(keys), *keys, *args)
        if self._wait is not None and name in DURABLE:
            return await self._durable(command, keys[0], self._wait)
        return await self._routed(command)

    async def _routed(self, command: Sequence[Arg]) -> Any:
        """``command`` sent to its slot's master, following redirections as the sync runner
        does (``cluster_runner``): ``MOVED`` updates the slot map, ``ASK`` sends it once to the
        importing master behind ``ASKING``, ``TRYAGAIN`` and ``CLUSTERDOWN`` wait (``pause_s``),
        ``MAX_REDIRECTS`` times at most, then ``SlotKeptMoving``. Not through the cluster
        client's own redirections: it sends a ``TRYAGAIN`` again 16 times in 0.4 s and then
        says only "TTL exhausted". Where a master lacks the library it is loaded on every
        master and the command sent again; a master that cannot be reached leaves the
        command to the cluster client (its retry policy reads the slot map again)."""
        slot = slot_of([str(command[3])])  # FCALL function numkeys key...
        asked: AsyncClusterNode | None = None
        loaded = False
        waits = moves = 0
        while waits < MAX_REDIRECTS and moves < 2 * MAX_REDIRECTS:
            try:
                if asked is not None:
                    return (await self._sent(asked, (("ASKING",), command)))[1]
                return (await self._sent(await self._master_of(slot), (command,)))[0]
            except REDIRECTS as error:
                asked = await self._follow(error, waits)
                if isinstance(error, MovedError) or asked is not None:
                    moves += 1  # sent on at once
                else:
                    waits += 1
            except ResponseError as error:
                if loaded or not missing(error):
                    raise
                await self._load_everywhere()
                loaded, asked = True, None
            except (redis.ConnectionError, redis.TimeoutError):
                return await self._execute(*command)
        raise SlotKeptMoving.after(slot, waits, moves)

    async def _sent(self, node: AsyncClusterNode, commands: Sequence[Sequence[Arg]]) -> Any:
        """``commands`` on one connection of ``node``, within the runner's connections."""
        async with self.slots():
            return await _pair(node, commands)

    async def _master_of(self, slot: int) -> AsyncClusterNode:
        cluster = self.cluster
        try:
            await cluster.initialize()  # at once unless the slot map is due to be read
            return cluster.nodes_manager.get_node_from_slot(slot)
        except RedisClusterException as error:  # unreachable, or a slot no master serves
            raise as_driver_error(error) from error

    async def _follow(self, error: Exception, attempt: int) -> AsyncClusterNode | None:
        """Act on a redirection; the master to send the call to once behind ``ASKING``, or
        ``None``: the call goes to the slot's master again."""
        nodes = self.cluster.nodes_manager
        if isinstance(error, MovedError):  # before AskError: redis-py derives it from that
            await nodes.move_slot(error)
            return None
        if isinstance(error, AskError):
            node = self.cluster.get_node(*nodes.remap_host_port(error.host, error.port))
            if node is not None:
                return node
        await asyncio.sleep(pause_s(attempt))  # TRYAGAIN, CLUSTERDOWN, an unknown ASK
        if isinstance(error, ClusterDownError | AskError):
            self.cluster._request_refresh()  # read by the next call's initialize()
        return None

    async def _load_everywhere(self) -> None:
        """Load the library on every master (one that cannot take it is left)."""
        load = ("FUNCTION", "LOAD", "REPLACE", library().text)
        masters = self.cluster.get_primaries()
        await asyncio.gather(
            *(self._execute(*load, target_nodes=master) for master in masters),
            return_exceptions=True,
        )

    async def _durable(self, command: Sequence[Arg], key: str, wait: Sequence[Arg]) -> Any:
        """``command`` then ``WAIT`` in one write on one connection of ``key``'s master. A
        redirection, a missing library or a lost connection: the call goes through ``_routed``
        (which follows the redirection, loads the library) and the pair is sent again to
        the master that now serves the key (a durable call is safe to send again)."""
        for _ in range(MAX_REDIRECTS):
            node = self.cluster.get_node_from_key(key)
            try:
                reply, acknowledged = await _pair(node, (command, wait))
            except (ResponseError, redis.ConnectionError, redis.TimeoutError) as error:
                if isinstance(error, ResponseError) and not (
                    isinstance(error, REDIRECTS) or missing(error)
                ):
                    raise
                await self._routed(command)
                continue
            self._durability.check(acknowledged)
            return reply
        raise redis.ConnectionError(f"{key} kept moving after {MAX_REDIRECTS} redirections")

    async def _execute(self, *args: Arg, **options: Any) -> Any:
        cluster = self.cluster
        try:
            async with self.slots():
                return await cluster.execute_command(*args, **options)
        except RedisClusterException as error:  # unreachable, or a slot no master serves
            raise as_driver_error(error) from error

    async def call_many(
        self,
        calls: Sequence[tuple[str, Sequence[str], Sequence[Arg]]],
        *,
        errors_in_place: bool = False,
    ) -> list[Any]:
        """Several calls, concurrently; the first error reply is raised once all arrived, or
        with ``errors_in_place`` returned in its call's place (other errors are raised)."""
        replies = await asyncio.gather(
            *(self.call(name, keys, args) for name, keys, args in calls), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException) and not (
                errors_in_place and isinstance(reply, ResponseError)
            ):
                raise reply
        return list(replies)

    async def command(self, *args: Arg) -> Any:
        """One plain command, routed by its key."""
        if id(self.cluster) not in self._closings:
            await self._close_at_loop_end(self.cluster)
        return await self._execute(*args)

    async def _close_at_loop_end(self, cluster: AsyncRedisCluster) -> None:
        """Have ``cluster``, the running loop's client, closed when the loop is shut down;
        forget those of loops closed without that step."""
        for key in [key for key, (loop, _) in self._closings.items() if loop.is_closed()]:
            del self._closings[key]
        ending = await at_loop_end(partial(self._loop_ends, cluster))
        self._closings[id(cluster)] = (asyncio.get_running_loop(), ending)

    async def _loop_ends(self, cluster: AsyncRedisCluster) -> None:
        self._closings.pop(id(cluster), None)
        await cluster.aclose()

    async def aclose(self) -> None:
        """Close the client this runner made for another loop (the first one is the
        caller's to close)."""
        if self.client is not cast(redis.asyncio.Redis, self._first) and self._here == (
            asyncio.get_running_loop(),
            os.getpid(),
        ):
            await self.cluster.aclose()


async def _pair(node: Any, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    """``commands`` in one write on one connection of ``node`` (an asyncio ``ClusterNode``),
    their replies in order; the first error reply is raised once every reply was read."""
    conn = node.acquire_connection()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as error:
                replies.append(error)
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        node.release(conn)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
