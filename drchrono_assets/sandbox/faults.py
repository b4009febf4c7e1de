"""Fault injection and request statistics.

Tests arm faults to see how a client copes with throttling, server errors, bad
bodies, slow answers and lost tokens, then read the statistics to check what the
client actually sent (how many requests, refreshes, reused refresh tokens).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    """One armed fault: the next `times` requests under `path_prefix` (after skipping
    `skip` of them) get its effect.

    Effects combine: `delay_seconds` delays the answer, then `status` answers with that
    error (a `Retry-After` header only if `retry_after` is given), `invalid_json` with
    a 200 whose body is not JSON, `malformed_page` with a 200 JSON lacking `results`.
    A delay alone answers normally, late.
    """

    path_prefix: str = "/api/"
    times: int = 1
    status: int | None = None
    retry_after: float | None = None
    invalid_json: bool = False
    delay_seconds: float = 0.0
    malformed_page: bool = False
    skip: int = 0

    def as_json(self) -> dict[str, Any]:
        """The fault's settings (what `/_sandbox/faults` accepts and lists)."""
        return asdict(self)


#: Keyword names `FaultInjector.add` (and `POST /_sandbox/faults`) accept.
FAULT_FIELDS: tuple[str, ...] = tuple(Fault.__dataclass_fields__)


class FaultInjector:
    """Armed faults, matched in insertion order and consumed per match; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        path_prefix: str = "/api/",
        times: int = 1,
        status: int | None = None,
        retry_after: float | None = None,
        invalid_json: bool = False,
        delay_seconds: float = 0.0,
        malformed_page: bool = False,
        skip: int = 0,
    ) -> Fault:
        """Arm a fault; see `Fault`. Raises `ValueError` for a fault with no effect."""
        if times < 1 or skip < 0 or delay_seconds < 0:
            raise ValueError("times must be >= 1, skip and delay_seconds >= 0")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status")
        if status is None and not (invalid_json or malformed_page or delay_seconds):
            raise ValueError("a fault needs status, invalid_json, malformed_page or delay_seconds")
        if sum((status is not None, invalid_json, malformed_page)) > 1:
            raise ValueError("status, invalid_json and malformed_page are exclusive")
        fault = Fault(
            path_prefix=path_prefix,
            times=times,
            status=status,
            retry_after=retry_after,
            invalid_json=invalid_json,
            delay_seconds=delay_seconds,
            malformed_page=malformed_page,
            skip=skip,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def match(self, path: str) -> Fault | None:
        """The fault that fires for a request to `path`, if any, consuming one use.

        A fault still skipping counts the request and lets later faults be considered.
        """
        with self._lock:
            for fault in self._faults:
                if not path.startswith(fault.path_prefix):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[Fault]:
        """Faults still armed (copies)."""
        with self._lock:
            return [Fault(**fault.as_json()) for fault in self._faults]

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()


class RequestStats:
    """Counts of the `/api/` and `/o/` requests the sandbox answered; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._requests = 0
            self._api_requests = 0
            self._by_path: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._refresh_grants = 0
            self._refresh_token_reuse = 0
            self._authorization_code_grants = 0

    def record_request(self, path: str) -> None:
        """Count a request as it arrives (whatever answers it, a fault included)."""
        with self._lock:
            self._requests += 1
            self._by_path[path] += 1
            if path.startswith("/api/"):
                self._api_requests += 1

    def record_status(self, status: int) -> None:
        """Count the status a request was answered with."""
        with self._lock:
            self._by_status[str(status)] += 1

    def record_refresh_grant(self) -> None:
        """Count a successful `grant_type=refresh_token`."""
        with self._lock:
            self._refresh_grants += 1

    def record_refresh_token_reuse(self) -> None:
        """Count a refresh attempt with an already spent refresh token."""
        with self._lock:
            self._refresh_token_reuse += 1

    def record_authorization_code_grant(self) -> None:
        """Count a successful `grant_type=authorization_code`."""
        with self._lock:
            self._authorization_code_grants += 1

    def snapshot(self) -> dict[str, Any]:
        """The counts as JSON-ready data (what `GET /_sandbox/stats` answers)."""
        with self._lock:
            return {
                "requests": self._requests,
                "api_requests": self._api_requests,
                "by_path": dict(self._by_path),
                "by_status": dict(self._by_status),
                "refresh_grants": self._refresh_grants,
                "refresh_token_reuse": self._refresh_token_reuse,
                "authorization_code_grants": self._authorization_code_grants,
            }
