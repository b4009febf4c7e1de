"""Fault injection and request statistics.

Tests arm faults to see how a client copes with throttling, server errors, bad
bodies, lost connections, slow answers and lost tokens, or let seeded random faults
("chaos") hit a share of requests, then read the statistics to check what the client
actually sent (how many requests, when, refreshes, reused refresh tokens).
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from itertools import accumulate
from typing import Any


def json_fields(body: Any, fields: Iterable[str]) -> dict[str, Any]:
    """`body` as keyword arguments: a JSON object with only known `fields` (else ValueError)."""
    if not isinstance(body, dict):
        raise ValueError("Expected a JSON object.")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ValueError(f"Unknown fields: {', '.join(unknown)}.")
    return body


@dataclass
class Fault:
    """One armed fault: the next `times` requests under `path_prefix` (after skipping
    `skip` of them) get its effect.

    Effects combine: `delay_seconds` delays the answer, then one of: `status` answers
    with that error (a `Retry-After` header only if `retry_after` is given; 502, 503 and
    504 with a proxy's HTML page, others with JSON), `invalid_json` with a 200 whose body
    is cut short (an honest Content-Length), `malformed_page` with a 200 JSON lacking
    `results`, `cut_body` with a 200 whose Content-Length promises more body than is sent
    before the connection closes, `drop_connection` closes the connection without a
    byte. A delay alone answers normally, late.
    """

    path_prefix: str = "/api/"
    times: int = 1
    status: int | None = None
    retry_after: float | None = None
    invalid_json: bool = False
    delay_seconds: float = 0.0
    malformed_page: bool = False
    skip: int = 0
    cut_body: bool = False
    drop_connection: bool = False

    def __post_init__(self) -> None:
        """Refuse a fault with no effect, or with two exclusive ones."""
        times, skip, delay_seconds, status = self.times, self.skip, self.delay_seconds, self.status
        effects = (
            status is not None,
            self.invalid_json,
            self.malformed_page,
            self.cut_body,
            self.drop_connection,
        )
        if times < 1 or skip < 0 or delay_seconds < 0:
            raise ValueError("times must be >= 1, skip and delay_seconds >= 0")
        if status is not None and not 100 <= status <= 599:
            raise ValueError(f"status {status} is not an HTTP status")
        if not (any(effects) or delay_seconds):
            raise ValueError(
                "a fault needs status, invalid_json, malformed_page, cut_body, "
                "drop_connection or delay_seconds"
            )
        if sum(effects) > 1:
            raise ValueError(
                "status, invalid_json, malformed_page, cut_body and drop_connection are exclusive"
            )

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

    def add(self, **settings: Any) -> Fault:
        """Arm a fault of ``settings`` (``Fault``'s fields, ``FAULT_FIELDS``); ``ValueError``
        for a fault with no effect."""
        fault = Fault(**settings)
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


#: What a random server error answers: the app's 500, or a proxy's 502 or 503.
SERVER_ERROR_STATUSES = (500, 502, 503)
#: The rates of `FaultRates`, in the order a draw tries them.
RATE_FIELDS = ("server_error", "drop_connection", "cut_body", "invalid_json", "throttle_burst")


@dataclass(frozen=True)
class FaultRates:
    """Random faults ("chaos"): the share of requests under `paths` each fault hits.

    `server_error` answers 500 (JSON), 502 or 503 (HTML), picked at random;
    `drop_connection`, `cut_body` and `invalid_json` are `Fault`'s effects;
    `throttle_burst` is the chance a request starts a burst of `throttle_burst_length`
    bare 429s (no Retry-After), itself the first. The rates add up to at most 1. Draws
    depend on `seed` and each request's path and query (see `RandomFaults`), so a run
    meets the same faults again.
    """

    seed: int
    server_error: float = 0.0
    drop_connection: float = 0.0
    cut_body: float = 0.0
    invalid_json: float = 0.0
    throttle_burst: float = 0.0
    throttle_burst_length: int = 3
    paths: tuple[str, ...] = ("/api/",)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        rates = [getattr(self, name) for name in RATE_FIELDS]
        for name, rate in zip(RATE_FIELDS, rates, strict=True):
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        # Slack for float sums: 0.1 + 0.2 + 0.7 is 1.0000000000000002.
        if sum(rates) > 1 + 1e-9:
            raise ValueError(f"the rates add up to {sum(rates):g}, more than 1")
        length = self.throttle_burst_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError("throttle_burst_length must be an integer >= 1")
        paths = self.paths
        if not (isinstance(paths, tuple) and paths and all(isinstance(p, str) for p in paths)):
            raise ValueError("paths must be a non-empty list of path prefixes")

    @classmethod
    def from_json(cls, body: Any) -> FaultRates:
        """Rates from a JSON object (`POST /_sandbox/chaos`, `--chaos`); ValueError if bad."""
        fields = json_fields(body, cls.__dataclass_fields__)
        if "seed" not in fields:
            raise ValueError("seed is required.")
        if isinstance(fields.get("paths"), list):
            fields = {**fields, "paths": tuple(fields["paths"])}
        return cls(**fields)

    def as_json(self) -> dict[str, Any]:
        """The rates as JSON-ready data (what `GET /_sandbox/chaos` shows)."""
        return {**asdict(self), "paths": list(self.paths)}


class RandomFaults:
    """Draws the faults of `FaultRates` request by request; thread-safe.

    The n-th request with the same `key` (its path and query) always meets the same fault,
    whatever other requests came in between, so runs of several concurrent clients
    reproduce fault for fault.
    """

    def __init__(self, rates: FaultRates) -> None:
        self.rates = rates
        self._lock = threading.Lock()
        self._burst_left = 0
        self._seen: Counter[str] = Counter()
        # Each effect owns a slice of [0, 1): it fires when a roll is below its upper edge.
        rates_in_order = (getattr(rates, name) for name in RATE_FIELDS)
        self._edges = list(zip(RATE_FIELDS, accumulate(rates_in_order), strict=True))

    def draw(self, path: str, key: str | None = None) -> Fault | None:
        """The fault a request to `path` meets, if any; other paths draw nothing."""
        if not path.startswith(self.rates.paths):
            return None
        key = key or path
        with self._lock:
            if self._burst_left:
                self._burst_left -= 1
                return Fault(path, status=429)
            occurrence = self._seen[key]
            self._seen[key] += 1
            rolls = random.Random(f"{self.rates.seed}|{key}|{occurrence}")
            roll = rolls.random()
            effect = next((name for name, edge in self._edges if roll < edge), None)
            if effect is None:
                return None
            if effect == "server_error":
                return Fault(path, status=rolls.choice(SERVER_ERROR_STATUSES))
            if effect == "throttle_burst":
                self._burst_left = self.rates.throttle_burst_length - 1
                return Fault(path, status=429)
            return Fault(path, **{effect: True})


@dataclass(slots=True)
class Arrival:
    """One counted request: when it arrived (`RequestStats`' clock), its path, and the
    status it was answered with: None until answered, and for a dropped connection."""

    time: float
    path: str
    status: int | None = None


class RequestStats:
    """Counts and arrivals of the `/api/` and `/o/` requests the sandbox answered;
    thread-safe. `clock` must not go backwards (the sandbox gives its own clock's; the
    default is `time.monotonic`).

    Besides the totals, `by_practice` counts the `/api/` requests of each practice: those
    whose bearer token was issued for it (requests with no such token count for none).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._requests = 0
            self._api_requests = 0
            self._by_path: Counter[str] = Counter()
            self._by_status: Counter[str] = Counter()
            self._by_practice: Counter[int] = Counter()
            self._arrivals: list[Arrival] = []
            self._faulted = 0
            self._refresh_grants = 0
            self._refresh_token_reuse = 0
            self._authorization_code_grants = 0

    def record_request(self, path: str, practice: int | None = None) -> Arrival:
        """Count a request as it arrives (whatever answers it, a fault included), and for
        `practice` if it is an `/api/` request with a token of one; the returned arrival
        is what `record_status` completes."""
        with self._lock:
            self._requests += 1
            self._by_path[path] += 1
            if path.startswith("/api/"):
                self._api_requests += 1
                if practice is not None:
                    self._by_practice[practice] += 1
            # Read under the lock so arrivals stay in time order for `max_in_window`.
            arrival = Arrival(self._clock(), path)
            self._arrivals.append(arrival)
            return arrival

    def record_status(self, arrival: Arrival, status: int) -> None:
        """Count the status a request was answered with (a dropped one never is)."""
        with self._lock:
            arrival.status = status
            self._by_status[str(status)] += 1

    def record_fault(self) -> None:
        """Count a request a fault answered in the API's stead (a delay alone is none)."""
        with self._lock:
            self._faulted += 1

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

    @property
    def by_practice(self) -> dict[int, int]:
        """The `/api/` requests counted so far, by practice index (practices without one
        left out)."""
        with self._lock:
            return dict(self._by_practice)

    def snapshot(self) -> dict[str, Any]:
        """The counts as JSON-ready data (what `GET /_sandbox/stats` answers);
        `arrivals` lists `[time, path, status]` per request, oldest first,
        `by_practice` is keyed by the practice index as a string, and `faulted` counts the
        requests a fault answered."""
        with self._lock:
            return {
                "requests": self._requests,
                "api_requests": self._api_requests,
                "by_path": dict(self._by_path),
                "by_status": dict(self._by_status),
                "by_practice": {str(index): count for index, count in self._by_practice.items()},
                "arrivals": [[a.time, a.path, a.status] for a in self._arrivals],
                "faulted": self._faulted,
                "refresh_grants": self._refresh_grants,
                "refresh_token_reuse": self._refresh_token_reuse,
                "authorization_code_grants": self._authorization_code_grants,
            }

    def max_in_window(self, seconds: float, prefix: str = "/api/") -> int:
        """The most arrivals under `prefix` within any `seconds` long window, both ends
        included: the strict worst case a rolling-window rate limit would see."""
        with self._lock:
            times = [a.time for a in self._arrivals if a.path.startswith(prefix)]
        return max(
            (last - bisect.bisect_left(times, t - seconds) + 1 for last, t in enumerate(times)),
            default=0,
        )
