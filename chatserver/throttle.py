"""A token bucket: how often one connection may do something cheap but broadcast."""

from __future__ import annotations


class TokenBucket:
    """Up to `burst` events at once, then `rate` per second."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")  # one per connection

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """Count one event and return 0 if it may happen at `now`; otherwise count
        nothing and return the seconds until it may."""
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate
