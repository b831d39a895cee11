"""Requests per project over the last 24 hours, counted in memory on the hot path (one dict
increment per request; hourly buckets). Restarting the node starts the count again."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

_HOUR = 3600
_WINDOW_HOURS = 24


class RequestCounter:
    """One per node (``core.service(RequestCounter)``)."""

    def __init__(self, _core: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, dict[int, int]] = defaultdict(dict)

    def hit(self, project_id: str) -> None:
        hour = int(self._clock()) // _HOUR
        buckets = self._buckets[project_id]
        buckets[hour] = buckets.get(hour, 0) + 1
        if len(buckets) > _WINDOW_HOURS + 1:
            for old in [h for h in buckets if h <= hour - _WINDOW_HOURS]:
                del buckets[old]

    def last_24h(self, project_id: str) -> int:
        hour = int(self._clock()) // _HOUR
        return sum(n for h, n in self._buckets.get(project_id, {}).items() if h > hour - _WINDOW_HOURS)
