"""Practices of one API application share its request budget in turns: a daily sweep before
any backfill, and backfills of several practices evenly (``fair_share``)."""

from __future__ import annotations

import dagster as dg
import pytest

from drchrono_assets.api.fair_share import (
    STALE_SECONDS,
    TURN_SECONDS,
    Claimant,
    listed,
    live_waiters,
)
from drchrono_assets.api.rate_budget import RequestBudget
from drchrono_assets.api.shared_documents import MemoryDocument
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.resources.drchrono_api import SWEEP_TAG
from drchrono_assets_tests.support.resources import api_for

WINDOW = 100.0


class Waited(Exception):
    """Raised by a budget's sleep: the budget would have waited ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def budgets(clock: Clock, per_hour: int, **claimants: Claimant) -> dict[str, RequestBudget]:
    """One budget per claimant on one ledger; each raises ``Waited`` where it would sleep."""
    ledger = MemoryDocument()

    def sleep(seconds: float) -> None:
        raise Waited(seconds)

    return {
        name: RequestBudget(
            per_hour, 1000, clock=clock, sleep=sleep, ledger=ledger, window_seconds=WINDOW,
            claimant=claimant,
        )
        for name, claimant in claimants.items()
    }  # fmt: skip


def admitted(budget: RequestBudget) -> bool:
    """Whether ``budget`` gets a slot now (else it is listed as waiting); its request is
    answered at once."""
    try:
        ticket = budget.acquire()
    except Waited:
        return False
    budget.release(ticket)
    return True


def test_a_backfill_yields_a_free_slot_to_a_waiting_sweep() -> None:
    clock = Clock()
    by = budgets(clock, 2, backfill=Claimant("clinic_a"), sweep=Claimant("clinic_b", sweep=True))
    assert admitted(by["backfill"]) and admitted(by["backfill"])  # the window is full
    assert not admitted(by["sweep"])  # waits, listed in the ledger
    clock.now += WINDOW + 1  # both slots free again
    with pytest.raises(Waited) as waited:
        by["backfill"].acquire()
    assert waited.value.seconds == TURN_SECONDS  # not its turn: it looks again soon
    assert admitted(by["sweep"])
    # The sweep's next request likely follows at once: the free slot is held for it a turn.
    assert not admitted(by["backfill"])
    clock.now += TURN_SECONDS + 0.1  # the sweep did not come back: the backfill's turn
    assert admitted(by["backfill"])


def test_backfills_of_several_practices_share_the_budget_evenly() -> None:
    clock = Clock()
    by = budgets(clock, 4, a=Claimant("clinic_a"), b=Claimant("clinic_b"))
    for _ in range(4):  # a alone fills the window, a slot every 10 seconds
        assert admitted(by["a"])
        clock.now += 10
    assert not admitted(by["b"])  # b starts waiting
    turns = []
    clock.now = 1000.0 + WINDOW - 10
    for _ in range(4):  # a's slots age out one every 10 seconds: whose turn is each?
        clock.now += 10
        for name in ("a", "b"):
            if admitted(by[name]):
                turns.append(name)
                # One slot: both go on waiting for their next request, listed.
                assert not admitted(by["a"]) and not admitted(by["b"])
                break
    # b, behind by 4 slots, goes first until the window holds as many of each.
    assert turns == ["b", "b", "a", "a"]


def test_a_waiter_whose_process_died_blocks_nobody_for_long() -> None:
    clock = Clock()
    by = budgets(clock, 1, backfill=Claimant("clinic_a"), sweep=Claimant("clinic_b", sweep=True))
    assert admitted(by["backfill"])
    assert not admitted(by["sweep"])  # and then its process dies
    clock.now += WINDOW + 1
    assert not admitted(by["backfill"])  # the sweep may still come
    clock.now += STALE_SECONDS + 1
    assert admitted(by["backfill"])


def test_alone_a_claimant_waits_only_for_the_budget() -> None:
    clock = Clock()
    by = budgets(clock, 1, sweep=Claimant("clinic_b", sweep=True))
    assert admitted(by["sweep"])
    with pytest.raises(Waited) as waited:
        by["sweep"].acquire()
    assert waited.value.seconds == pytest.approx(WINDOW)


@pytest.mark.parametrize(
    ("tags", "sweep"), [({SWEEP_TAG: "2024-03-06T043000-1f2e3d"}, True), ({}, False)]
)
def test_the_sensor_s_runs_claim_the_sweep_turn_and_others_the_backfill_turn(
    sandbox_env, tags, sweep
) -> None:
    seen: dict[str, bool] = {}

    @dg.asset
    def probe(drchrono: DrchronoApiResource) -> None:
        seen["sweep"] = drchrono.client.sweep

    assert dg.materialize([probe], resources={"drchrono": api_for(sandbox_env)}, tags=tags).success
    assert seen == {"sweep": sweep}


def test_a_served_client_is_listed_as_older_versions_read_waiters() -> None:
    """Processes of the last version share the ledger during a rolling upgrade."""
    entry = listed(Claimant("clinic_a", sweep=True), 1000.0, served=True)
    practice, sweep, _ = entry  # the three fields every version unpacks
    assert (practice, sweep) == ("clinic_a", True)
    state = {"waiting": {"served": entry}}
    assert live_waiters(state, 1000.0 + TURN_SECONDS)  # live one turn
    assert not live_waiters(state, 1000.0 + TURN_SECONDS + 0.01)
