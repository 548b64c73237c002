"""A webhook receiver for the chat server that turns each new message into a push
notification for every member who was offline when it arrived.

It checks what every receiver must check: the signature over the raw body (so nobody
else can post events), the timestamp (so a recorded request cannot be replayed later),
and the event id (so a retried event is handled once). The push provider is a stub that
writes each notification as a JSON line; put APNs or FCM in its place.

    WEBHOOK_SECRET=... python docs/examples/push_receiver.py --port 9000
    # and run the chat server with WEBHOOK_URL=http://127.0.0.1:9000/hooks and the same secret
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict
from typing import Any, TextIO

from aiohttp import web

TOLERANCE = 300  # seconds a request's timestamp may be off; older requests are replays
REMEMBERED = 100_000  # event ids kept to drop repeats (several receivers: Redis SET NX EX instead)


def verified(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is the server's: HMAC-SHA256 of "<timestamp>.<raw body>"."""
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


class StubPushProvider:
    """Stands in for APNs or FCM: one JSON line per notification."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def send(self, user_id: str, title: str, text: str, data: dict[str, Any]) -> None:
        print(json.dumps({"to": user_id, "title": title, "text": text, "data": data}), file=self._out, flush=True)


class Receiver:
    def __init__(self, secret: str, push: StubPushProvider) -> None:
        self._secret = secret.encode()
        self._push = push
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()  # the raw bytes: parsing and re-encoding would change them
        timestamp = request.headers.get("X-Chat-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE:
            return web.Response(status=401, text="stale or missing timestamp")
        if not verified(self._secret, timestamp, body, request.headers.get("X-Chat-Signature", "")):
            return web.Response(status=401, text="bad signature")
        event = json.loads(body)
        if event["id"] in self._seen:
            return web.Response(status=204)  # a retry of an event handled already
        await self._on(event)
        self._seen[event["id"]] = None  # only once handled: a failure above answers 500, and it is retried
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        return web.Response(status=204)

    async def _on(self, event: dict[str, Any]) -> None:
        if event["type"] != "message.created":
            return  # message.updated, member.*, moderation: keep your copy of the room here
        message = event["data"]["message"]
        for user_id in event["data"]["offline"]:
            if user_id == message["user"]["id"]:
                continue  # the backend published in this user's name: no push of one's own words
            await self._push.send(user_id, title=message["user"]["name"], text=message["text"][:200],
                                  data={"room": message["room"], "seq": message["seq"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if len(secret) < 32:
        sys.exit("WEBHOOK_SECRET must be set, as on the chat server (at least 32 characters)")
    app = web.Application()
    app.router.add_post("/hooks", Receiver(secret, StubPushProvider(sys.stdout)).handle)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
