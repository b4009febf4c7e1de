"""One request budget per API application, shared by every thread, step, run and process.

drchrono counts requests per API application, so the ledger of sent requests lives where
the tokens live (a file beside the token file, or a PostgreSQL table) and every process of
every practice of the application draws from it, in turns (``fair_share``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drchrono_assets.api.fair_share import (
    TURN_SECONDS,
    Claimant,
    listed,
    live_waiters,
    my_turn,
)
from drchrono_assets.api.shared_documents import (
    FileDocument,
    MemoryDocument,
    PostgresDocument,
    SharedDocument,
)
from drchrono_assets.api.token_store import is_database_url

LEDGER_TABLE = "drchrono_request_ledger"
# Longer than any request's timeouts and retries' single attempt: a request unanswered for
# this long was lost with its process, and stops holding its slot.
IN_FLIGHT_SECONDS = 300.0

#: The time every budget goes by and how it waits, unless given its own: a simulation moves
#: both onto its clock (as ``drchrono_assets.sync.sensor.clock``), so its hours pass when
#: the simulated day does.
clock: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep


def _now() -> float:
    return clock()


def _sleep(seconds: float) -> None:
    sleep(seconds)


def open_request_ledger(
    token_store_location: str, key: str, log: logging.Logger | None = None
) -> SharedDocument:
    """The ledger lives beside the tokens: a file next to the token file, or a table in its
    database. One per API application, as drchrono counts."""
    if is_database_url(token_store_location):
        return PostgresDocument(token_store_location, LEDGER_TABLE, "ledger", key)
    token_file = Path(token_store_location).expanduser()
    # Disposable: a damaged ledger costs at most a window of counting, never every request.
    return FileDocument(
        token_file.with_suffix(".requests.json"),
        durable=False,
        disposable=True,
        log=log,
        kind="request ledger",
    )


class RequestBudget:
    """At most ``per_hour`` requests in any rolling hour and ``per_second`` in any second.

    A request's slot is stamped when ``acquire`` admits it and stamped again by ``release``
    (its answer), so it ages from the answer: a server counting arrivals then never sees more
    than the budget in a window, however late a request arrived. Until answered it counts
    as sent now (up to ``IN_FLIGHT_SECONDS``: its process died), however long ago it was
    admitted.
    ``pause`` stops every user of the ledger for a while: after a 429, which the real API
    answers without ``Retry-After``, nobody should send until it has passed.
    A stamp later than now means the clock went back: it counts as now, so a clock set back
    costs at most one window (a pause: its own length), never the time it went back.
    """

    def __init__(
        self,
        per_hour: int,
        per_second: float,
        *,
        clock: Callable[[], float] = _now,
        sleep: Callable[[float], None] = _sleep,
        on_wait: Callable[[float], None] | None = None,
        ledger: SharedDocument | None = None,
        window_seconds: float = 3600.0,
        claimant: Claimant | None = None,
    ) -> None:
        self._limits = [(window_seconds, max(1, per_hour)), (1.0, max(1, int(per_second)))]
        self._clock = clock
        self._sleep = sleep
        self._on_wait = on_wait
        self._ledger = ledger or MemoryDocument()
        self._claimant = claimant or Claimant()
        self._id = uuid.uuid4().hex  # this budget's name among the ledger's waiters
        self._used_lock = threading.Lock()
        self.used = 0  # requests this process sent

    def acquire(self) -> str:
        """Block until a request may go out; returns the ticket to ``release`` when answered."""
        ticket = uuid.uuid4().hex
        while True:
            wait = 0.0

            def admit(state: dict[str, Any] | None) -> dict[str, Any]:
                nonlocal wait
                now = self._clock()
                state = self._pruned(state, now)
                wait = self._wait(state, now)
                claimant = self._claimant
                if wait <= 0 and not my_turn(state, self._id, claimant, now):
                    wait = TURN_SECONDS  # a better-ranked waiter takes this slot
                if wait <= 0:
                    state["sent"].append([ticket, now, None, claimant.practice])
                    state["waiting"][self._id] = listed(claimant, now, served=True)
                else:  # listed until it looks again: a better rank holds the slot for it
                    state["waiting"][self._id] = listed(claimant, now + wait, served=False)
                return state

            self._ledger.update(admit)
            if wait <= 0:
                break
            if self._on_wait and wait > 1:
                self._on_wait(wait)
            self._sleep(wait)
        with self._used_lock:
            self.used += 1
        return ticket

    def release(self, ticket: str) -> None:
        """The request's answer arrived: its slot runs a window from now."""

        def answered(state: dict[str, Any] | None) -> dict[str, Any]:
            now = self._clock()
            state = self._pruned(state, now)
            for entry in state["sent"]:
                if entry[0] == ticket:
                    entry[2] = now
            return state

        self._ledger.update(answered)

    def cancel(self, ticket: str) -> None:
        """No request used the ticket's slot (another process had refreshed): give it back."""

        def unused(state: dict[str, Any] | None) -> dict[str, Any]:
            state = self._pruned(state, self._clock())
            state["sent"] = [entry for entry in state["sent"] if entry[0] != ticket]
            return state

        self._ledger.update(unused)
        with self._used_lock:
            self.used -= 1

    def pause(self, seconds: float) -> None:
        """No user of the ledger sends for ``seconds`` (a 429 answered someone)."""

        def paused(state: dict[str, Any] | None) -> dict[str, Any]:
            now = self._clock()
            state = self._pruned(state, now)
            state["paused_until"] = max(state["paused_until"], now + seconds)
            state["paused_at"] = now
            return state

        self._ledger.update(paused)

    def _pruned(self, state: dict[str, Any] | None, now: float) -> dict[str, Any]:
        """A fresh copy of the ledger without requests older than the longest window, no
        stamp later than ``now``."""
        longest = max(window for window, _ in self._limits)
        state = state or {}
        paused_at = state.get("paused_at", 0.0)
        # Moved back with the clock, the pause keeps its length from now.
        paused_until = state.get("paused_until", 0.0) - max(0.0, paused_at - now)
        sent = (
            [
                ticket,
                min(sent_at, now),
                None if answered_at is None else min(answered_at, now),
                *practice,  # absent in a ledger written before practices had names
            ]
            for ticket, sent_at, answered_at, *practice in state.get("sent", [])
        )
        return {
            "paused_until": paused_until,
            "paused_at": min(paused_at, now),
            "sent": [entry for entry in sent if self._slot_end(entry, now) > now - longest],
            "waiting": live_waiters(state, now),
        }

    @staticmethod
    def _slot_end(entry: list[Any], now: float) -> float:
        """When a request's slot starts to age: its answer; now while it is in flight."""
        _, sent_at, answered_at, *_ = entry
        if answered_at is None:
            return min(now, sent_at + IN_FLIGHT_SECONDS)
        return answered_at

    def _wait(self, state: dict[str, Any], now: float) -> float:
        """Seconds until one more request fits every window (0 when it fits now)."""
        wait = state["paused_until"] - now
        for window, limit in self._limits:
            ends = sorted(
                end
                for end in (self._slot_end(entry, now) for entry in state["sent"])
                if end > now - window
            )
            if len(ends) >= limit:
                # The slot whose ageing lets one more request in.
                wait = max(wait, ends[len(ends) - limit] + window - now)
        return wait
