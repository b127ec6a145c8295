"""One injectable source of time for every part of aihpa that waits or timestamps.

Production code reads time through a `Clock` so that tests can drive it (`VirtualClock` stepped) and the demo can
replay a day in minutes (`VirtualClock` accelerated), while the controller, the webhook and the simulated cluster share
the same notion of "now" when they run in one process.

This module is pure: standard library only; it never reads the wall clock except in `SystemClock`, and it never starts
a task or a thread of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """Seconds since the Unix epoch, and a way to wait on them."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time; `sleep` is `asyncio.sleep`."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Time that moves only when told to (stepped), or `speed` times faster than the event loop's clock (accelerated).

    Stepped (`speed=None`): `now()` stays put until `advance()`; sleepers wake when an advance passes their deadline.
    Accelerated (`speed=60.0`): `now()` runs at 60 virtual seconds per monotonic second, and `advance()` still jumps.
    Sleepers always wake in deadline order; a zero or negative sleep yields once to the loop and returns.
    """

    def __init__(self, start: float = 0.0, *, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._start = float(start)
        self._speed = speed
        # the loop's clock is time.monotonic(); anchoring here makes now() valid before any loop runs
        self._anchor = time.monotonic()
        self._offset = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def speed(self) -> float | None:
        """Virtual seconds per real second, or None when stepped."""
        return self._speed

    def now(self) -> float:
        t = self._start + self._offset
        if self._speed is not None:
            t += (time.monotonic() - self._anchor) * self._speed
        return t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self.now() + seconds, next(self._seq), fut))
        self._reschedule()
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()  # a cancelled sleeper is dropped lazily when it reaches the heap's top

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake, in deadline order, every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        self._offset += seconds
        self._wake_due()

    def next_deadline(self) -> float | None:
        """The earliest pending sleeper's deadline, or None."""
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def run_for(self, seconds: float, *, settle: int = 20) -> None:
        """Advance by `seconds` in jumps from one sleeper's deadline to the next, letting woken tasks run in between.

        A periodic task that sleeps 15 s then sees every tick of a 60 s `run_for`, which one `advance(60)` would
        collapse into a single wake-up. `settle` is how many loop turns woken tasks get after each jump.
        """
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        end = self.now() + seconds
        while True:
            nxt = self.next_deadline()
            if nxt is None or nxt > end:
                break
            self.advance(max(0.0, nxt - self.now()))
            for _ in range(settle):
                await asyncio.sleep(0)
        self.advance(max(0.0, end - self.now()))
        for _ in range(settle):
            await asyncio.sleep(0)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    def _wake_due(self) -> None:
        now = self.now()
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        self._reschedule()

    def _reschedule(self) -> None:
        """In accelerated mode, keep one loop timer armed for the earliest deadline."""
        if self._speed is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._drop_cancelled()
        if not self._sleepers:
            return
        delay = max(0.0, (self._sleepers[0][0] - self.now()) / self._speed)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # advanced from outside a loop: the next sleep() arms the timer
            return
        self._timer = loop.call_later(delay, self._wake_due)
