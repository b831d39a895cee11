"""The gate in front of each pool serves waiters in arrival order and loses no place on cancel."""

from __future__ import annotations

import asyncio

import pytest

from appliance.pg.fairgate import FairGate


async def test_a_released_place_goes_to_the_oldest_waiter_not_to_a_newcomer() -> None:
    gate = FairGate(1)
    await gate.acquire()
    order: list[str] = []

    async def take(name: str) -> None:
        await gate.acquire()
        order.append(name)

    first = asyncio.create_task(take("first"))
    await asyncio.sleep(0)
    gate.release()  # handed to "first", which has not run yet
    newcomer = asyncio.create_task(take("newcomer"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["first"]  # the newcomer did not take the place released for "first"
    assert not newcomer.done() and gate.waiting == 1
    gate.release()
    await asyncio.wait_for(newcomer, 1)
    await first
    assert order == ["first", "newcomer"]


async def test_waiters_are_served_in_arrival_order_under_load() -> None:
    gate = FairGate(2)
    served: list[int] = []

    async def request(i: int) -> None:
        await gate.acquire()
        try:
            served.append(i)
            await asyncio.sleep(0)
        finally:
            gate.release()

    await asyncio.gather(*(request(i) for i in range(200)))
    assert served == list(range(200))


async def test_a_cancelled_waiter_passes_its_place_on() -> None:
    gate = FairGate(1)
    await gate.acquire()
    cancelled = asyncio.create_task(gate.acquire())
    behind = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # the place is handed to ``cancelled``...
    cancelled.cancel()  # ...which is cancelled before it runs: the place must reach ``behind``
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await asyncio.wait_for(behind, 1)
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # and the count is right afterwards


async def test_a_waiter_cancelled_while_queued_leaves_the_line() -> None:
    gate = FairGate(1)
    await gate.acquire()
    queued = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert gate.waiting == 0
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)


def test_a_gate_needs_a_place() -> None:
    with pytest.raises(ValueError):
        FairGate(0)
