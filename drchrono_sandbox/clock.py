"""The sandbox's clock: the instant the practice is served as of.

Frozen mode (no start instant, the default) follows the real time and cannot be moved:
the practice does not change by itself. Evolving mode starts at a given instant and
stands still until told to move (`advance`, `set`, or `POST /_sandbox/clock`), forward
only, so what the sandbox serves at a given reading is reproducible. Live mode evolves on
the real time (to the second) and cannot be moved: the practice changes as a real one
would, so a real daemon's sensor can follow it.

The API's timestamps are naive and local to the practice's time zone (`timezone`, an
IANA name); `now()` is aware UTC, `local_now()` the same instant as the practice's naive
local time, which is what record timestamps and `since` filters compare with.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from drchrono_sandbox.config import SandboxConfig


class SandboxClock:
    """Real time when frozen or live; a stopped clock that only moves forward when evolving.

    `lock` (a new one if not given) is held while the clock moves: the practices it
    serves read their records under it too, so a request that reads a practice under
    that lock sees a single instant throughout.
    """

    def __init__(
        self,
        start: datetime | None = None,
        timezone: str = "UTC",
        *,
        lock: threading.RLock | None = None,
        live: bool = False,
    ) -> None:
        if live and start is not None:
            raise ValueError("a live sandbox clock follows the real time: give no start")
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.live = live
        self.lock = lock if lock is not None else threading.RLock()
        self._now = self.aware(start) if start is not None else None

    @classmethod
    def from_config(cls, config: SandboxConfig) -> SandboxClock:
        """The clock `config` asks for: its `clock`, `timezone` and `live`."""
        return cls(config.clock, config.timezone, live=config.live)

    @property
    def evolving(self) -> bool:
        """Whether the practice changes with the clock: started at an instant, or live."""
        return self._now is not None or self.live

    def aware(self, when: datetime) -> datetime:
        """`when` in UTC; a naive `when` is the practice's local time."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.zone)
        return when.astimezone(UTC)

    def local(self, when: datetime) -> datetime:
        """An aware instant as the practice's naive local time."""
        return when.astimezone(self.zone).replace(tzinfo=None)

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        if self._now is not None:
            return self._now
        # Live: whole seconds, so the pages of one list query read one instant's practice.
        return datetime.now(UTC).replace(microsecond=0) if self.live else datetime.now(UTC)

    def timestamp(self) -> float:
        """Now as seconds since the epoch: what the hourly budget and the request counts
        go by, so a simulation's hours are the clock's, not the machine's."""
        return self.now().timestamp()

    def local_now(self) -> datetime:
        """The current instant as the practice's naive local time."""
        return self.local(self.now())

    def set(self, when: datetime) -> datetime:
        """Move the clock to `when` (naive: practice-local); `ValueError` when frozen or
        when `when` is before now. Returns the new now."""
        with self.lock:
            if self._now is None:
                mode = "live (it follows the real time)" if self.live else "frozen"
                raise ValueError(f"the sandbox clock is {mode}: start the sandbox with a clock")
            target = self.aware(when)
            if target < self._now:
                raise ValueError(
                    f"the sandbox clock only moves forward: {target.isoformat()} is before "
                    f"{self._now.isoformat()}"
                )
            self._now = target
            return target

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta`; see `set`."""
        with self.lock:
            return self.set(self.now() + delta)

    def http_date(self) -> str:
        """Now as an HTTP `Date` value (RFC 7231): `Tue, 05 Mar 2024 14:00:00 GMT`."""
        return format_datetime(self.now().replace(microsecond=0), usegmt=True)

    def as_json(self) -> dict[str, Any]:
        """What `GET /_sandbox/clock` answers."""
        now = self.now()
        return {
            "now": now.isoformat(),
            "local_now": self.local(now).isoformat(),
            "evolving": self.evolving,
            "live": self.live,
        }
