"""Events named like the libraries' own (connect, disconnect, ...) are unknown events:
an `invalid_payload` ack when one is asked for, and nothing changes."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.chat_client import NAMESPACE, new_room, new_session
from tests.conftest import ServerProcess
from tests.raw_socket import RawSocket

RESERVED = ["connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"]


@pytest.mark.parametrize("with_ack", [True, False], ids=["with-ack", "without-ack"])
@pytest.mark.parametrize("name", RESERVED)
async def test_a_reserved_event_name_changes_nothing(shared_server: ServerProcess, make_client, name: str,
                                                     with_ack: bool) -> None:
    log_before = len(shared_server.log())
    room = new_room()
    observer = await make_client("Olga")
    await observer.join(room)
    session = await new_session(shared_server.url, "Mallory")
    raw = await RawSocket.connect(shared_server.url, session["token"])
    try:
        assert (await raw.call("join", {"room": room}, ack_id=1))["ok"]
        payload = {"room": room, "token": session["token"]}
        if with_ack:
            ack = await raw.call(name, payload, ack_id=2)
            assert ack["ok"] is False and ack["error"]["code"] == "invalid_payload", ack
        else:
            await raw.send(f"42{NAMESPACE}," + json.dumps([name, payload]))
        # Still connected, still joined, still a member that others see.
        sent = await raw.call("message", {"room": room, "text": f"after {name}"}, ack_id=3)
        assert sent["ok"] is True, sent
        members = await raw.call("members", {"room": room}, ack_id=4)
        assert session["user"] in members["members"]
        await observer.wait_for("message", lambda got: len(got) == 1)
        await asyncio.sleep(0.1)
        assert [p["status"] for p in observer.received["presence"] if p["user"] == session["user"]] == ["joined"]
    finally:
        await raw.close()
    log = shared_server.log()[log_before:]
    assert "Traceback" not in log, log
