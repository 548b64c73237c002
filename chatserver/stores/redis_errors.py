"""Redis being away, as the `StoreUnavailable` a client sees as `internal`."""

from __future__ import annotations

import logging
from types import TracebackType

from redis.exceptions import RedisClusterException, RedisError

from ..errors import StoreUnavailable

log = logging.getLogger(__name__)

REDIS_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


class RedisAway:
    """`async with away:` a failure of Redis (an error of redis-py, of the socket, or a
    timeout) inside the block leaves it as `StoreUnavailable`, with one warning line that
    says `what` was unavailable. It holds no state of a call, so one serves them all; a
    class, not a generator: it wraps every store call, and `asynccontextmanager` cost
    3 µs a call against 0.25 µs here."""

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> bool:
        if isinstance(error, REDIS_FAILURES):
            log.warning(self._what, extra={"error": f"{type(error).__name__}: {error}"})
            raise StoreUnavailable() from None
        return False
