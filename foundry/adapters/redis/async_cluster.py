"""Redis Cluster's asyncio client (see ``cluster``), in a module of its own so that a sync
worker never imports redis-py's asyncio client."""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from foundry.adapters.redis.async_tls import AsyncTlsConnection
from foundry.adapters.redis.cluster import ClusterTarget, cluster_options


class AsyncClusterClient(AsyncRedisCluster):
    """redis-py's asyncio cluster client, which can make a twin of itself for another event
    loop (its connections serve only the loop that opened them)."""

    def __init__(self, target: ClusterTarget, options: dict[str, Any]) -> None:
        self.recipe = (target, options)
        nodes = [AsyncClusterNode(host, port) for host, port in target.nodes]
        # redis-py refuses a command once a node has max_connections: the runner keeps
        # its calls within it (``AsyncFunctionRunner.slots``).
        limit = (
            {"max_connections": options["max_connections"]} if "max_connections" in options else {}
        )
        super().__init__(startup_nodes=nodes, **cluster_options(target, options), **limit)
        if target.tls:  # redis-py takes no connection class with ssl: set in its place
            self.connection_kwargs["connection_class"] = AsyncTlsConnection
            for node in self.startup_nodes:
                node.connection_class = AsyncTlsConnection

    def again(self) -> AsyncClusterClient:
        """A new client with the same nodes and settings, connecting on first use."""
        return AsyncClusterClient(*self.recipe)
