"""A first-come, first-served gate in front of a connection pool.

asyncpg's pool waits on an ``asyncio.Queue``, which lets a newcomer take a connection that was
just released for a waiter; the waiter goes back to the end of the line. Under overload (1,000
clients on 5 connections) that starves some requests for seconds. The gate admits at most
``size`` holders and hands a released place directly to the oldest waiter, so waiting is
bounded by the queue ahead, never by luck.
"""

from __future__ import annotations

import asyncio
from collections import deque


class FairGate:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a gate needs at least one place")
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a place was handed over as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place goes to the oldest waiter, not to a newcomer
                return
        self._free += 1
