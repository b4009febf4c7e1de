"""Everything one sandbox knows: the practices and their clock, OAuth, faults,
statistics, settings."""

from __future__ import annotations

import threading

from drchrono_sandbox.clock import SandboxClock
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

    Attributes are meant to be used directly by tests: `practices` (the
    `config.practices` practices, by index: records and mutations), `practice` (the
    first one, practice 0), `clock` (all the practices' one clock: `now()`,
    `local_now()`; in evolving mode, when `clock` is given, `advance(timedelta)` and
    `set(datetime)` move it forward), `oauth` (tokens, each of one practice), `faults`
    (fault injection), `stats` (request counts, in total and by practice), `latency_ms`
    (sleep before every `/api/` and `/o/` answer; may be changed live), `budget` (the
    hourly request budget of the one application, all practices together; None when
    off) and `chaos` (the rates of random faults, None when off; setting it restarts the
    draws from its seed). `config` is what it was set up with (`latency_ms` and `chaos`
    start from it).
    """

    def __init__(self, config: SandboxConfig = DEFAULTS) -> None:
        self.config = config
        self.clock = SandboxClock.from_config(config)
        self.practices = [
            Practice(config, index, clock=self.clock) for index in range(config.practices)
        ]
        self.practice = self.practices[0]
        self.oauth = OAuthState(config)
        self.faults = FaultInjector()
        self.stats = RequestStats(clock=self.clock.timestamp)
        self.latency_ms = config.latency_ms
        self.budget = (
            HourlyBudget(config.requests_per_hour, clock=self.clock.timestamp)
            if config.requests_per_hour
            else None
        )
        self.chaos = config.chaos
        #: Set when the server stops: cuts sleeps short so shutdown is not held up.
        self.closing = threading.Event()

    def practice_at(self, index: int) -> Practice:
        """Practice `index`; `KeyError` if the sandbox has no such practice."""
        if not 0 <= index < len(self.practices):
            raise KeyError(f"practice {index}")
        return self.practices[index]

    def set_base_url(self, base_url: str) -> None:
        """Make every practice's document URLs absolute under the server's URL."""
        for practice in self.practices:
            practice.set_base_url(base_url)

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
