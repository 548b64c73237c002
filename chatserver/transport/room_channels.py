"""Which per-room channels this instance listens on, and the commands that keep it so."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

log = logging.getLogger(__name__)


class ChannelCommands(NamedTuple):
    """How to (un)subscribe room channels where the listener hears them: SUBSCRIBE or
    SSUBSCRIBE on its one connection, or SSUBSCRIBE on each Cluster master (`ShardSubscriber`)."""

    subscribe: Callable[..., Awaitable[Any]]
    unsubscribe: Callable[..., Awaitable[Any]]


class RoomChannels:
    """An instance hears a room's channel while any of its connections is in the room.

    `want(channel)` subscribes when a room gets its first local connection, and waits
    until Redis has confirmed it, so a join that reads history afterwards misses nothing.
    `release(channel)` unsubscribes `linger` seconds after the room's last local
    connection left, unless someone joined meanwhile (a reconnecting client comes
    back within a second or two; re-subscribing each time would be churn).

    Commands go out in the order they were decided, through one writer task, so an
    unsubscribe decided before a subscribe is never sent after it.
    """

    def __init__(self, *, linger: float, confirm_timeout: float) -> None:
        self._linger = linger
        self._confirm_timeout = confirm_timeout
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._commands: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()

    @property
    def channels(self) -> list[str]:
        """The channels this instance should be subscribed to now."""
        return list(self._confirmed)

    async def want(self, channel: str) -> None:
        """Subscribe to `channel` unless already subscribed; return once Redis confirmed
        it (or after `confirm_timeout`, with a warning: the listener subscribes every
        wanted channel again when it reconnects)."""
        self._cancel_linger(channel)
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
            self._commands.put_nowait((True, channel))
        if confirmed.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(confirmed), self._confirm_timeout)
        except TimeoutError:
            log.warning("room channel not confirmed in time", extra={"channel": channel})

    def release(self, channel: str, still_wanted: Callable[[], bool]) -> None:
        """The room's last local connection left: unsubscribe after the linger, unless
        `still_wanted()` says a connection joined meanwhile."""
        if channel not in self._confirmed or channel in self._lingering:
            return
        self._lingering[channel] = asyncio.get_running_loop().call_later(
            self._linger, self._drop, channel, still_wanted)

    def confirm(self, channel: str) -> None:
        """Redis confirmed a subscription to `channel`."""
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    async def subscribe_all(self, commands: ChannelCommands) -> None:
        """On a new listener connection: subscribe again to every wanted channel."""
        if self._confirmed:
            await commands.subscribe(*self.channels)

    async def write(self, commands: Callable[[], ChannelCommands | None], ready: asyncio.Event) -> None:
        """Send the decided (un)subscribe commands, in order, through the listener's
        `commands`; runs for the manager's lifetime. A command lost with a broken
        connection needs no retry: the listener re-subscribes to what is wanted when it
        reconnects."""
        while True:
            subscribe, channel = await self._commands.get()
            await ready.wait()
            listener = commands()
            if listener is None:
                continue
            try:
                if subscribe:
                    if channel in self._confirmed:
                        await listener.subscribe(channel)
                else:
                    await listener.unsubscribe(channel)
            except Exception as error:  # the listener logs the broken connection and reconnects
                log.debug("room channel command failed", extra={"channel": channel, "error": repr(error)})

    def _drop(self, channel: str, still_wanted: Callable[[], bool]) -> None:
        del self._lingering[channel]
        if still_wanted():
            return
        if self._confirmed.pop(channel, None) is not None:
            self._commands.put_nowait((False, channel))

    def _cancel_linger(self, channel: str) -> None:
        timer = self._lingering.pop(channel, None)
        if timer is not None:
            timer.cancel()
