"""The shared clock: stepped virtual time wakes sleepers in deadline order; accelerated time runs faster."""

from __future__ import annotations

import asyncio
import time

import pytest

from aihpa.clock import Clock, SystemClock, VirtualClock


async def test_stepped_clock_wakes_sleepers_in_deadline_order_only_when_advanced() -> None:
    clock = VirtualClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 30), ("early", 10), ("mid", 20))]
    for _ in range(5):
        await asyncio.sleep(0)
    assert woke == []
    assert clock.next_deadline() == 110.0

    clock.advance(15)
    await asyncio.sleep(0)
    assert [n for n, _ in woke] == ["early"]

    clock.advance(100)
    await asyncio.gather(*tasks)
    assert [n for n, _ in woke] == ["early", "mid", "late"]
    assert clock.now() == 215.0


async def test_run_for_lets_a_periodic_task_see_every_tick() -> None:
    clock = VirtualClock(start=0.0)
    ticks: list[float] = []

    async def every_15s() -> None:
        while True:
            await clock.sleep(15)
            ticks.append(clock.now())

    task = asyncio.create_task(every_15s())
    await asyncio.sleep(0)
    await clock.run_for(60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticks == [15.0, 30.0, 45.0, 60.0]


async def test_accelerated_clock_runs_faster_than_the_loop() -> None:
    clock = VirtualClock(start=0.0, speed=1000.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await clock.sleep(50.0)  # 50 virtual seconds = 0.05 real seconds
    real = loop.time() - began
    assert clock.now() >= 50.0
    assert real < 2.0


async def test_accelerated_clock_still_jumps_when_advanced() -> None:
    clock = VirtualClock(start=0.0, speed=1.0)
    task = asyncio.create_task(clock.sleep(3600))
    await asyncio.sleep(0)
    clock.advance(3600)
    await asyncio.wait_for(task, 1.0)
    assert clock.now() >= 3600


async def test_cancelled_sleepers_are_forgotten() -> None:
    clock = VirtualClock()
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.next_deadline() is None


def test_both_clocks_satisfy_the_protocol_and_reject_bad_arguments() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(VirtualClock(), Clock)
    assert abs(SystemClock().now() - time.time()) < 5
    with pytest.raises(ValueError, match="speed"):
        VirtualClock(speed=0)
    with pytest.raises(ValueError, match="back"):
        VirtualClock().advance(-1)
