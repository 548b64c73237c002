"""The store under test: every contract test runs against each implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from chatserver.stores.memory import MemoryStore


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory"])
async def store(request: pytest.FixtureRequest, clock: Callable[[], float]) -> AsyncIterator[MemoryStore]:
    instance = MemoryStore(clock=clock)
    yield instance
    await instance.close()
