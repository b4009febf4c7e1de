"""A request budget shared by every thread of a process: the API's hourly quota and burst limit."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RequestBudget:
    """At most ``per_hour`` requests in any rolling hour and ``per_second`` in any rolling second.

    ``acquire`` blocks until a request may go out. Waiting here is cheaper than a 429: the real
    API answers 429 without ``Retry-After``, so a client that overruns can only guess.
    """

    def __init__(
        self,
        per_hour: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._windows = [
            (3600.0, max(1, per_hour), deque[float]()),
            (1.0, max(1, int(per_second)), deque[float]()),
        ]
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._lock = threading.Lock()
        self.used = 0

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self._clock()
                wait = 0.0
                for length, limit, sent in self._windows:
                    while sent and sent[0] <= now - length:
                        sent.popleft()
                    if len(sent) >= limit:
                        wait = max(wait, sent[0] + length - now)
                if wait <= 0:
                    break
                if self._on_wait and wait > 1:
                    self._on_wait(wait)
                self._sleep(wait)
            for _, _, sent in self._windows:
                sent.append(now)
            self.used += 1
