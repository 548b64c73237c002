"""The signature on each webhook request, as a receiver checks it.

`X-Chat-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with `WEBHOOK_SECRET`, of
`<X-Chat-Timestamp>.<raw body>`; the timestamp is the attempt's, in Unix seconds, so a
receiver can refuse old requests (replays) as well as forged ones.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Chat-Signature` value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def headers(secret: str, timestamp: int, event_id: str, event_type: str, body: bytes) -> dict[str, str]:
    """Every header of one attempt to deliver an event."""
    return {
        "Content-Type": "application/json",
        "X-Chat-Event": event_type,
        "X-Chat-Delivery": event_id,
        "X-Chat-Timestamp": str(timestamp),
        "X-Chat-Signature": signature(secret, timestamp, body),
    }
