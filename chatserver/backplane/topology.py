"""Where the instances' shared state lives, worked out once from `REDIS_URL`.

Embedded, one Redis, the master a Sentinel names, or a Redis Cluster: `topology_of` parses
the URL into one `Topology`, whose traits come from one table (`TRAITS`). The stores, the
pub/sub manager and the server read those traits; nothing else looks at the URL or at the
kind of client to decide how to work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .urls import (
    SINGLE_SCHEMES,
    ClusterURL,
    SentinelURL,
    is_cluster_url,
    is_sentinel_url,
    parse_cluster_url,
    parse_sentinel_url,
)

Kind = Literal["embedded", "single", "sentinel", "cluster"]


@dataclass(frozen=True)
class Traits:
    """What differs between the kinds of deployment."""

    shared: bool  # state in Redis, shared with other instances; else in this process
    # One connection's messages may be in flight at once: the append script fixes their
    # order before anything is awaited (`ChatSocketServer`'s pipelining). Not on a Cluster,
    # where the rate limit is a round trip of its own before the append.
    pipelined: bool
    # Keys live on several nodes: a user's rate window is checked in its own slot before the
    # append, every script's calls are batched per node, operations take turns for the
    # nodes' connections, readiness is the cluster's state, and room channels are heard on
    # the master that owns each (`ShardSubscriber`).
    spread: bool


TRAITS: dict[Kind, Traits] = {
    "embedded": Traits(shared=False, pipelined=False, spread=False),
    "single": Traits(shared=True, pipelined=True, spread=False),
    "sentinel": Traits(shared=True, pipelined=True, spread=False),
    "cluster": Traits(shared=True, pipelined=False, spread=True),
}


@dataclass(frozen=True)
class Topology:
    """One deployment's kind, its `REDIS_URL` (None when embedded), and the URL parsed."""

    kind: Kind
    url: str | None = None
    sentinel: SentinelURL | None = None
    cluster: ClusterURL | None = None

    @property
    def traits(self) -> Traits:
        return TRAITS[self.kind]


EMBEDDED = Topology("embedded")


def topology_of(url: str | None) -> Topology:
    """The topology `REDIS_URL` names (None: embedded). Raises `ValueError` with a one-line
    reason for a URL of no known form."""
    if url is None:
        return EMBEDDED
    if is_sentinel_url(url):
        return Topology("sentinel", url, sentinel=parse_sentinel_url(url))
    if is_cluster_url(url):
        return Topology("cluster", url, cluster=parse_cluster_url(url))
    if url.startswith(tuple(f"{scheme}://" for scheme in SINGLE_SCHEMES)):
        return Topology("single", url)
    raise ValueError("must be redis://, rediss://, unix://, redis+sentinel://host:port[,host:port]/service_name"
                     " or redis+cluster://host:port[,host:port]")
