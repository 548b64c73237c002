"""Events addressed to a user reach the user's connections on every instance, over one Redis
server, the master a Sentinel names and a Redis Cluster; a revocation holds on all of them."""

from __future__ import annotations

import time

import pytest

from tests.chat_client import new_room
from tests.cluster.test_cluster import shared_redis_url
from tests.functional.test_app_identity import connect
from tests.functional.test_user_events import backend, connected


@pytest.fixture(params=["redis", "sentinel", "cluster"])
def pair(request, start_server):
    url = shared_redis_url(request, request.param)
    return [start_server(REDIS_URL=url) for _ in range(2)]


async def test_notify_and_revoke_reach_the_user_on_every_instance(pair):
    a, b = pair
    user = f"roaming-{time.time_ns()}"
    on_a, on_b = await connected(a.url, user), await connected(b.url, user)
    watcher = await connected(a.url, f"watcher-{time.time_ns()}")
    room = new_room("user-events")
    for client in (on_a, on_b, watcher):
        await client.join(room)

    status, _ = await backend(a.url, f"/api/users/{user}/events", {"data": {"n": 1}})
    assert status == 202
    for client in (on_a, on_b):
        await client.wait_for("notify", lambda got: got == [{"data": {"n": 1}}])

    status, _ = await backend(b.url, f"/api/users/{user}/disconnect", {"revoke": True})
    assert status == 202
    for client in (on_a, on_b):
        await client.wait_for("disconnected", lambda got: got == [{"reason": "revoked"}])
        await client.wait_for("disconnect", lambda got: len(got) == 1)
    await watcher.wait_for("presence", lambda got: any(p["status"] == "left" and p["user"]["id"] == user for p in got))
    for server in (a, b):
        client, refusal = await connect(server.url, on_a.token)
        assert client is None and refusal is not None and refusal["data"]["code"] == "unauthorized"
    await watcher.close()
