"""Clients for a Redis Cluster named by `redis+cluster://` seed nodes."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection

from .urls import ClusterURL, HostPort


def cluster_client(target: ClusterURL, options: dict[str, Any]) -> RedisCluster:
    """redis-py's cluster client: it learns the slot map from the first seed that
    answers, sends each command to the node holding its keys' slot, and follows
    MOVED/ASK redirections and failovers by itself. `max_connections` is per node."""
    options = {key: value for key, value in options.items() if key != "timeout"}  # a pool option
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                        username=target.username, password=target.password, **options)


def seed_client(target: ClusterURL, options: dict[str, Any]) -> Redis:
    """A plain client to one node of the cluster, for python-socketio's manager and its
    classic pub/sub: Redis forwards a PUBLISH on any node to the subscribers on every
    node. (Sharded room channels live on their own master: `ShardSubscriber`.) Each new
    connection tries the seeds in order, so after a node goes away the next connection
    lands on one that answers."""
    return Redis(connection_pool=BlockingConnectionPool(
        connection_class=SeedConnection, seeds=target.nodes,
        username=target.username, password=target.password, **options))


class SeedConnection(Connection):
    """A connection to the first of `seeds` that accepts it."""

    def __init__(self, *, seeds: tuple[HostPort, ...], **options: Any) -> None:
        host, port = seeds[0]
        super().__init__(host=host, port=port, **options)
        self._seeds = seeds

    async def _connect(self) -> None:
        failure: Exception | None = None
        for host, port in self._seeds:
            self.host, self.port = host, port
            try:
                await super()._connect()  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as error:
                failure = error
                continue
            return
        assert failure is not None  # a ClusterURL has at least one node
        raise failure
