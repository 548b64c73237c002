"""Posting events to the app's backend: one at a time per room, many rooms at once.

A room's events go in the order they happened: the next leaves only when the one before
was delivered (a `2xx` within `WEBHOOK_TIMEOUT`) or dropped. A failed attempt is retried
after a delay that doubles from 1 s up to 5 min, stretched by a random half at most (so
that rooms that failed together do not retry together), until the event is
`WEBHOOK_RETRY_HOURS` old; then it is dropped. Nothing here is awaited by the chat: the
store records an event and wakes a room's worker, which runs on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from ..errors import StoreUnavailable
from ..tasks import Background
from .events import HookEvent
from .queue import DropReason, HookQueue
from .signing import headers

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0  # seconds
LAST_RETRY = 300.0  # the longest wait between two attempts
JITTER = 0.5  # each wait is stretched by up to this share, at random
SWEEP_INTERVAL = 1.0  # seconds between looks for rooms whose events nobody is delivering
PARALLEL_REQUESTS = 100  # rooms whose events are being posted at once
DROP_WARNING_EVERY = 10.0  # seconds between warnings of dropped events (each warning counts them all)


@dataclass(frozen=True, slots=True)
class Receiver:
    """Where and how events are posted."""

    url: str
    secret: str
    timeout: float  # seconds for an answer
    retry_for: float  # seconds after an event happened that it is still retried


class DeliveryStats:
    """Counts of what delivery did, read by the metrics at scrape time."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()  # by result: delivered, refused, timeout, unreachable
        self.retries = 0
        self.dropped: Counter[DropReason] = Counter()
        self.queue_length = 0  # as the last sweep read it
        self.oldest_age = 0.0  # seconds, likewise


def retry_delay(attempt: int, jitter: float) -> float:
    """Seconds before retrying after failed attempt number `attempt` (0 for the first);
    `jitter` in [0, 1) picks the stretch."""
    return min(LAST_RETRY, FIRST_RETRY * 2.0 ** min(attempt, 16) * (1 + JITTER * jitter))


class Reachability:
    """Whether the receiver answers at all. A refused connection or no answer in time is
    the receiver's trouble, not a room's: then every room waits, and one attempt at a
    time (of whichever room) probes it, after waits that grow as a room's retries do,
    until one gets an answer. An answer of any status means it is back; a status other
    than `2xx` is the trouble of that room's event, which that room alone retries."""

    def __init__(self, clock: Callable[[], float], jitter: Callable[[], float], attempt_time: float) -> None:
        self._clock = clock
        self._jitter = jitter
        self._attempt_time = attempt_time  # seconds a probe may take before another may go
        self._failures = 0
        self._probe_at = 0.0  # Unix seconds from which the next probe may go
        self._probing_until = 0.0  # a probe is out until then
        self._back = asyncio.Event()
        self._back.set()

    @property
    def reachable(self) -> bool:
        return self._back.is_set()

    async def turn(self) -> bool:
        """While the receiver does not answer: True when this caller is to probe it now,
        else wait until the next probe is due or the receiver answers again, and return
        whether it does."""
        now = self._clock()
        if now >= self._probe_at and now >= self._probing_until:
            self._probing_until = now + self._attempt_time
            return True
        next_look = max(self._probe_at, self._probing_until) - now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._back.wait(), max(next_look, FIRST_RETRY))
        return self._back.is_set()

    def answered(self) -> None:
        self._probing_until = 0.0
        if not self._back.is_set():
            log.info("webhook receiver answers again", extra={"failures": self._failures})
            self._back.set()
        self._failures = 0

    def unanswered(self) -> float:
        """An attempt got no answer; returns when (Unix seconds) the next probe may go."""
        self._probing_until = 0.0
        if self._back.is_set():
            log.warning("webhook receiver does not answer: all rooms wait while one attempt at a time probes it")
            self._back.clear()
        self._probe_at = self._clock() + retry_delay(self._failures, self._jitter())
        self._failures += 1
        return self._probe_at


class WebhookDelivery:
    """Workers that deliver the events of `queue` to `receiver`, one worker per room
    with events, woken by each event recorded and by a sweep every second."""

    def __init__(self, queue: HookQueue, receiver: Receiver, *, clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = random.random) -> None:
        self._queue = queue
        self._receiver = receiver
        self._clock = clock
        self._jitter = jitter
        self.stats = DeliveryStats()
        self._reachability = Reachability(clock, jitter, receiver.timeout + 1.0)
        self._working: set[str] = set()
        self._unreported: dict[DropReason, int] = {}  # drops since the last warning, by reason
        self._last_drop_warning = -math.inf
        self._workers = Background("webhook delivery")
        self._session: aiohttp.ClientSession | None = None
        self._sweeper: asyncio.Task[None] | None = None
        queue.listen(self.wake, self._dropped)

    async def start(self) -> None:
        """Open the HTTP client and start sweeping."""
        connector = aiohttp.TCPConnector(limit=PARALLEL_REQUESTS)
        self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(
            total=self._receiver.timeout), headers={"User-Agent": "chatserver-webhooks"})
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        """Stop every worker (what is waiting stays in the queue) and close the client."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self._workers.cancel_all()
        if self._session is not None:
            await self._session.close()

    def wake(self, room: str) -> None:
        """The room has an event waiting: make sure a worker delivers it."""
        if room not in self._working and self._session is not None:
            self._working.add(room)
            self._workers.start(self._work(room))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                await self._queue.trim()
                self._report_drops()
                for room in await self._queue.waiting_rooms():
                    self.wake(room)
                length, oldest = await self._queue.size()
                self.stats.queue_length = length
                self.stats.oldest_age = max(0.0, self._clock() - oldest / 1000) if oldest is not None else 0.0
            except Exception as error:  # keep sweeping: the queue's store may come back
                log.warning("webhook sweep failed", extra={"error": f"{type(error).__name__}: {error}"})

    async def _work(self, room: str) -> None:
        """Deliver the room's events until none waits (or another instance holds the room).
        Where the queue is away, stop: the sweep wakes the room again."""
        try:
            event = await self._queue.claim(room)
            attempt = 0
            while event is not None:
                if self._clock() * 1000 - event.ts > self._receiver.retry_for * 1000:
                    self._dropped(event, "expired")
                    event, attempt = await self._queue.settle(room, event), 0
                    continue
                if not self._reachability.reachable:
                    await self._queue.retry_at(room, self._clock() + LAST_RETRY)  # held here meanwhile
                    if not await self._reachability.turn():
                        continue  # still no answer: wait on, unless the event expired
                    event = await self._queue.claim(room)  # after a wait it may have been dropped
                    if event is None:
                        break
                result = await self._post(event, attempt)
                if result == "delivered":
                    event, attempt = await self._queue.settle(room, event), 0
                elif result == "refused":  # the room's trouble: this room waits
                    delay = retry_delay(attempt, self._jitter())
                    await self._queue.retry_at(room, self._clock() + delay)
                    await asyncio.sleep(delay)
                    event, attempt = await self._queue.claim(room), attempt + 1
                else:  # the receiver's: every room waits for a probe to get through
                    await self._queue.retry_at(room, self._reachability.unanswered())
                    attempt += 1
        except StoreUnavailable:
            pass  # logged by the queue
        finally:
            self._working.discard(room)

    async def _post(self, event: HookEvent, attempt: int) -> str:
        """One attempt: `delivered`, `refused` (an answer other than `2xx`), `timeout` or
        `unreachable`."""
        assert self._session is not None
        if attempt:
            self.stats.retries += 1
        sent = headers(self._receiver.secret, int(self._clock()), event.id, event.type, event.body)
        try:
            async with self._session.post(self._receiver.url, data=event.body, headers=sent,
                                          allow_redirects=False) as response:
                self._reachability.answered()
                if 200 <= response.status < 300:
                    self.stats.attempts["delivered"] += 1
                    return "delivered"
                result, detail = "refused", f"HTTP {response.status}"
        except TimeoutError:
            result, detail = "timeout", f"no answer within {self._receiver.timeout:g} s"
        except aiohttp.ClientError as error:
            result, detail = "unreachable", f"{type(error).__name__}: {error}"
        self.stats.attempts[result] += 1
        log.info("webhook attempt failed", extra={"event": event.id, "type": event.type, "room": event.room,
                                                  "attempt": attempt + 1, "result": result, "detail": detail})
        return result

    def _dropped(self, event: HookEvent, reason: DropReason) -> None:
        """Count a drop; warn of it, and of those that follow within `DROP_WARNING_EVERY`
        seconds in one line after that, so that a dead receiver past the bound does not
        flood the log."""
        self.stats.dropped[reason] += 1
        self._unreported[reason] = self._unreported.get(reason, 0) + 1
        self._report_drops({"event": event.id, "type": event.type, "room": event.room})

    def _report_drops(self, latest: dict[str, str] | None = None) -> None:
        """The warning of drops not reported yet, unless one went out within `DROP_WARNING_EVERY`."""
        now = self._clock()
        if not self._unreported or now - self._last_drop_warning < DROP_WARNING_EVERY:
            return
        self._last_drop_warning = now
        counts = {f"dropped_{reason}": count for reason, count in self._unreported.items()}
        log.warning("webhook events dropped", extra={**(latest or {}), **counts})
        self._unreported.clear()
