"""Everything one sandbox knows: the practice and its clock, OAuth, faults, statistics,
settings."""

from __future__ import annotations

import threading
from datetime import date, datetime

from drchrono_assets.sandbox.faults import (
    Fault,
    FaultInjector,
    FaultRates,
    RandomFaults,
    RequestStats,
)
from drchrono_assets.sandbox.oauth_server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    OAuthState,
)
from drchrono_assets.sandbox.practice import Practice
from drchrono_assets.sandbox.synthetic import SMALL, PracticeSize
from drchrono_assets.sandbox.throttle import HourlyBudget


class SandboxState:
    """The shared state behind one sandbox app.

    Attributes are meant to be used directly by tests: `practice` (records and
    mutations), `clock` (the practice's: `now()`, `local_now()`; in evolving mode, when
    `clock` is given, `advance(timedelta)` and `set(datetime)` move it forward), `oauth`
    (tokens), `faults` (fault injection), `stats` (request counts),
    `latency_ms` (sleep before every `/api/` and `/o/` answer; may be changed live),
    `budget` (the hourly request budget, None when off) and `chaos` (the rates of random
    faults, None when off; setting it restarts the draws from its seed). `size` says how
    big the practice is (default: the small one).
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        start: date = date(2024, 1, 1),
        end: date = date(2024, 6, 30),
        today: date | None = None,
        latency_ms: float = 0,
        access_token_ttl: float = 172800,
        requests_per_hour: int | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str | None = None,
        base_url: str = "",
        access_token_max_uses: int | None = None,
        chaos: FaultRates | None = None,
        clock: datetime | None = None,
        timezone: str = "UTC",
        size: PracticeSize = SMALL,
    ) -> None:
        self.practice = Practice(
            seed,
            start,
            end,
            today=today,
            base_url=base_url,
            clock=clock,
            timezone=timezone,
            size=size,
        )
        self.clock = self.practice.clock
        self.oauth = OAuthState(
            client_id=client_id,
            client_secret=client_secret,
            access_token_ttl=access_token_ttl,
            refresh_token=refresh_token,
            access_token_max_uses=access_token_max_uses,
        )
        self.faults = FaultInjector()
        self.stats = RequestStats()
        self.latency_ms = latency_ms
        self.budget = HourlyBudget(requests_per_hour) if requests_per_hour else None
        self.chaos = chaos
        #: Set when the server stops: cuts sleeps short so shutdown is not held up.
        self.closing = threading.Event()

    @property
    def chaos(self) -> FaultRates | None:
        """The rates of random faults (None when off)."""
        random_faults = self._random_faults
        return random_faults.rates if random_faults is not None else None

    @chaos.setter
    def chaos(self, rates: FaultRates | None) -> None:
        self._random_faults = RandomFaults(rates) if rates is not None else None

    def chaos_fault(self, path: str, key: str | None = None) -> Fault | None:
        """The random fault a request to `path` (`key`: with its query) meets, if chaos is
        on and one is drawn."""
        random_faults = self._random_faults  # one read: chaos may be switched meanwhile
        return random_faults.draw(path, key) if random_faults is not None else None
