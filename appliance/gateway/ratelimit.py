"""Token buckets, per project (public API) or per any key (login attempts by IP or email)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from appliance.errors import RateLimited


class TokenBuckets:
    """``rate`` tokens per second up to ``burst``; bounded memory (least recently used keys go)."""

    def __init__(
        self, rate: float, burst: float, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._max = max_keys
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take tokens; returns 0.0 when allowed, else the seconds to wait before retrying."""
        now = self._clock()
        tokens, last = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._state[key] = (tokens - cost, now)
            self._state.move_to_end(key)
            if len(self._state) > self._max:
                self._state.popitem(last=False)
            return 0.0
        self._state[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def check(self, key: str, what: str = "requests", cost: float = 1.0) -> None:
        wait = self.take(key, cost)
        if wait > 0:
            raise RateLimited(f"too many {what}; retry later", retry_after=wait)
