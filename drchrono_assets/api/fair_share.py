"""Who goes first when practices of one API application wait for its request budget.

Every client waiting for a slot is listed in the ledger with its practice, whether it runs a
daily sweep, and when it will look again. When a slot is free, the waiter with the best rank
takes it: a sweep before any backfill, then the practice that used the fewest slots of the
window. So a backfill yields its slots while a sweep waits, and the backfills of several
practices share what is left evenly. A client just served stays listed for
``TURN_SECONDS``: its next request usually follows at once, and a waiter of a worse rank
must not take the slot in between (slots that age together would all go to whoever
looks first). A waiter ``STALE_SECONDS`` late to look again (its process died) is
forgotten, so it blocks nobody for longer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

# How long a waiter that is not first waits before it looks again.
TURN_SECONDS = 0.5
STALE_SECONDS = 20.0


@dataclasses.dataclass(frozen=True)
class Claimant:
    """A client drawing from the budget: its practice (None: the one), and whether its run
    is part of a daily sweep (the sensor's runs) rather than a backfill."""

    practice: str | None = None
    sweep: bool = False

    def rank(self, used: dict[str | None, int]) -> tuple[int, int]:
        """Lower goes first: sweeps, then the practice with fewer slots in the window."""
        return (0 if self.sweep else 1, used.get(self.practice, 0))


def used_by_practice(sent: Iterable[list[Any]]) -> dict[str | None, int]:
    """Slots in the window per practice (entries: ticket, sent, answered, practice)."""
    used: dict[str | None, int] = {}
    for entry in sent:
        practice = entry[3] if len(entry) > 3 else None
        used[practice] = used.get(practice, 0) + 1
    return used


def listed(claimant: Claimant, at: float, served: bool) -> list[Any]:
    """A client's entry among the ledger's waiters (practice, sweep, next look): waiting
    until ``at``, when it looks again, or ``served`` at ``at``. A served client's next look
    is overdue by all but ``TURN_SECONDS`` of ``STALE_SECONDS``: it stays live one turn, for
    this version's readers and for older ones alike (a rolling upgrade shares the ledger)."""
    look = at - STALE_SECONDS + TURN_SECONDS if served else at
    return [claimant.practice, claimant.sweep, look]


def live_waiters(state: dict[str, Any], now: float) -> dict[str, list[Any]]:
    """The ledger's waiters (id -> ``listed``) not late to look again."""
    return {
        waiter: entry
        for waiter, entry in state.get("waiting", {}).items()
        if entry[2] + STALE_SECONDS >= now
    }


def my_turn(state: dict[str, Any], me: str, claimant: Claimant, now: float) -> bool:
    """Whether ``me`` may take a free slot: no live waiter ranks before it."""
    used = used_by_practice(state["sent"])
    mine = claimant.rank(used)
    for waiter, (practice, sweep, _) in live_waiters(state, now).items():
        if waiter != me and Claimant(practice, sweep).rank(used) < mine:
            return False
    return True
