"""An hourly request budget, as drchrono enforces per API application."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class HourlyBudget:
    """At most `requests_per_hour` requests per clock hour (reset at the top of the
    hour, as the real service reportedly does); thread-safe.

    Requests refused for being over the budget do not use it up.
    """

    def __init__(self, requests_per_hour: int, clock: Callable[[], float] = time.time) -> None:
        if requests_per_hour < 1:
            raise ValueError("requests_per_hour must be >= 1")
        self.requests_per_hour = requests_per_hour
        self._clock = clock
        self._lock = threading.Lock()
        self._hour = -1
        self._used = 0

    def allow(self) -> bool:
        """Spend one request of this hour's budget; False if none is left."""
        with self._lock:
            hour = int(self._clock() // 3600)
            if hour != self._hour:
                self._hour, self._used = hour, 0
            if self._used >= self.requests_per_hour:
                return False
            self._used += 1
            return True

    def remaining(self) -> int:
        """Requests left in the current hour."""
        with self._lock:
            if int(self._clock() // 3600) != self._hour:
                return self.requests_per_hour
            return self.requests_per_hour - self._used
