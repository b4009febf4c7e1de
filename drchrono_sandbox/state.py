"""Everything one sandbox knows: the practice and its clock, OAuth, faults, statistics,
settings."""

from __future__ import annotations

import threading

from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.faults import (
    Fault,
    FaultInjector,
    FaultRates,
    RandomFaults,
    RequestStats,
)
from drchrono_sandbox.oauth_server import OAuthState
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.throttle import HourlyBudget


class SandboxState:
    """The shared state behind one sandbox app.

    Attributes are meant to be used directly by tests: `practice` (records and
    mutations), `clock` (the practice's: `now()`, `local_now()`; in evolving mode, when
    `clock` is given, `advance(timedelta)` and `set(datetime)` move it forward), `oauth`
    (tokens), `faults` (fault injection), `stats` (request counts),
    `latency_ms` (sleep before every `/api/` and `/o/` answer; may be changed live),
    `budget` (the hourly request budget, None when off) and `chaos` (the rates of random
    faults, None when off; setting it restarts the draws from its seed). `config` is
    what it was set up with (`latency_ms` and `chaos` start from it).
    """

    def __init__(self, config: SandboxConfig = DEFAULTS) -> None:
        self.config = config
        self.practice = Practice(config)
        self.clock = self.practice.clock
        self.oauth = OAuthState(config)
        self.faults = FaultInjector()
        self.stats = RequestStats()
        self.latency_ms = config.latency_ms
        self.budget = HourlyBudget(config.requests_per_hour) if config.requests_per_hour else None
        self.chaos = config.chaos
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
