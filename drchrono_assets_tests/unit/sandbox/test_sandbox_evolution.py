"""The evolving practice: records exist from their first version, appointments are booked
then settled or moved, line items adjudicated weeks later, documents and patients change,
and ``since`` fetches exactly what changed."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import requests

from drchrono_assets_tests.support.evolving import (
    END,
    FIRST,
    START,
    VERSIONED,
    ZONE,
    History,
    days_after,
    detail,
    evolving,
    fetch_every,
    fetch_since,
    relative,
    visit_day,
)
from drchrono_assets_tests.support.sandbox import bearer
from drchrono_sandbox import SandboxConfig
from drchrono_sandbox.charges import is_consistent
from drchrono_sandbox.evolution import history_end
from drchrono_sandbox.generate.calendar import PAST_STATUS_WEIGHTS
from drchrono_sandbox.practice import Practice

# The evolving practice -----------------------------------------------------------------


def test_records_exist_only_from_their_first_version(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    with evolving() as server:
        practice, headers = server.state.practice, bearer(http, server)
        assert practice.clock.local_now() == FIRST
        upcoming: list[tuple[datetime, str, Any]] = []
        for name in VERSIONED:
            born = {key: history[0][0] for key, history in histories[name].items()}
            existing = {key for key, when in born.items() if when <= FIRST}
            assert existing, name
            assert {r["id"] for r in practice.current(name)} == existing
            served = fetch_since(http, server, headers, name, datetime(2000, 1, 1))
            assert {r["id"] for r in served} == existing
            later = [(when, name, key) for key, when in born.items() if when > FIRST]
            # Patients are all registered before the start; the rest keeps coming.
            assert bool(later) == (name != "patients")
            upcoming += sorted(later)[:1]
        for when, name, key in sorted(upcoming):
            practice.clock.set(when - timedelta(seconds=1))
            assert detail(http, server, headers, name, key) is None
            assert key not in {r["id"] for r in practice.current(name)}
            practice.clock.set(when)
            served = detail(http, server, headers, name, key)
            assert served is not None and relative(served, server) == histories[name][key][0][1]
    early = datetime(2023, 6, 1)
    early_config = SandboxConfig(start=START, end=END, clock=early, timezone=ZONE)
    registered = Practice(early_config).current("patients")
    born = {key: history[0][0] for key, history in histories["patients"].items()}
    assert {p["id"] for p in registered} == {key for key, when in born.items() if when <= early}
    assert 0 < len(registered) < len(born)


def test_appointments_are_booked_then_settled_at_the_visit(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    visits = {k: h for k, h in histories["appointments"].items() if h[-1][1]["patient"]}
    for history in visits.values():
        booked_at, booked = history[0]
        start = datetime.fromisoformat(booked["scheduled_time"])
        assert booked["status"] in ("", "Confirmed") and booked["icd9_codes"] == ""
        assert timedelta(days=1) <= start - booked_at <= timedelta(days=30)
        assert all(history[i][0] < history[i + 1][0] for i in range(len(history) - 1))
    settled = [h[-1][1]["status"] for h in visits.values()]
    assert 0.7 < settled.count("Complete") / len(settled) < 0.9
    assert set(settled) <= set(PAST_STATUS_WEIGHTS)
    late = [h for h in visits.values() if days_after(h[-1][0], visit_day(h[-1][1])) > 13]
    assert 0.02 < len(late) / len(visits) < 0.09  # about 5% edited weeks after the visit
    assert all(days_after(h[-1][0], visit_day(h[-1][1])) <= 61 for h in late)

    key, history = next(
        (k, h)
        for k, h in sorted(visits.items(), key=lambda kv: kv[1][0][0])
        if h[0][0] > FIRST
        and [v["status"] for _, v in h] == ["Confirmed", "Complete"]
        and h[0][1]["scheduled_time"] == h[1][1]["scheduled_time"]
    )
    (booked_at, booked), (checked_out_at, complete) = history
    with evolving(booked_at) as server:
        headers = bearer(http, server)
        day = booked["scheduled_time"][:10]
        on_day = fetch_every(http, f"{server.url}/api/appointments", headers, date=day)
        assert [a for a in on_day if a["id"] == key] == [booked]
        start = datetime.fromisoformat(booked["scheduled_time"])
        assert start < checked_out_at <= start + timedelta(hours=4)
        server.state.clock.set(checked_out_at - timedelta(seconds=1))
        assert detail(http, server, headers, "appointments", key) == booked
        server.state.clock.set(checked_out_at)
        served = detail(http, server, headers, "appointments", key)
        assert served == complete and served["blood_pressure"]


def test_a_rescheduled_appointment_leaves_its_old_day(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    moved = {
        k: h
        for k, h in histories["appointments"].items()
        if len({v["scheduled_time"] for _, v in h}) > 1
    }
    visits = [h for h in histories["appointments"].values() if h[-1][1]["patient"]]
    assert 0.015 < len(moved) / len(visits) < 0.05
    for history in moved.values():
        (booked_at, first), (moved_at, second) = history[:2]
        first_start = datetime.fromisoformat(first["scheduled_time"])
        second_start = datetime.fromisoformat(second["scheduled_time"])
        assert abs(first_start - second_start) in (timedelta(weeks=1), timedelta(weeks=2))
        assert booked_at < moved_at < min(first_start, second_start)
    key, history = next((k, h) for k, h in moved.items() if h[0][0] > FIRST)
    (booked_at, first), (moved_at, second) = history[:2]
    old_day, new_day = first["scheduled_time"][:10], second["scheduled_time"][:10]
    with evolving(booked_at) as server:
        headers = bearer(http, server)

        def on(day: str) -> set[str]:
            url = f"{server.url}/api/appointments"
            return {a["id"] for a in fetch_every(http, url, headers, date=day)}

        assert key in on(old_day) and key not in on(new_day)
        server.state.clock.set(moved_at)
        assert key not in on(old_day) and key in on(new_day)
        recent = fetch_since(http, server, headers, "appointments", moved_at)
        assert key in {a["id"] for a in recent}


def test_line_items_are_posted_then_adjudicated_weeks_or_months_later(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    adjudication_days: list[float] = []
    paid_later = 0
    for history in histories["transactions"].values():
        (posted_at, posted), *changes = history
        visit = datetime.fromisoformat(posted["date"])
        assert timedelta(0) <= posted_at - visit <= timedelta(days=3)
        assert Decimal(posted["paid_total"]) == 0 < Decimal(posted["billed"])
        assert posted["billing_status"] == "" and is_consistent(posted)
        if Decimal(posted["balance_ins"]) == 0:
            continue  # self-pay: nothing to adjudicate, the patient pays (or not)
        if changes:
            adjudication_days.append(days_after(changes[0][0], visit.date()))
        if len(changes) == 2:
            paid_later += 1
            (_, adjudicated), (_, paid) = changes
            assert Decimal(paid["pt_paid"]) > Decimal(adjudicated["pt_paid"])
            assert Decimal(paid["balance_pt"]) == 0
    assert len(adjudication_days) > 0.8 * len(histories["transactions"])
    assert min(adjudication_days) >= 14 and max(adjudication_days) < 121
    late = sum(days > 60 for days in adjudication_days) / len(adjudication_days)
    assert 0.2 <= late < 0.45
    assert paid_later > 50

    key, history = next(
        (k, h)
        for k, h in histories["transactions"].items()
        if h[0][0] > FIRST and len(h) > 1 and Decimal(h[1][1]["ins1_paid"]) > 0
    )
    (posted_at, posted), (adjudicated_at, adjudicated) = history[:2]
    doctor = posted["doctor"]
    with evolving() as server:
        headers, url = bearer(http, server), f"{server.url}/api/transactions"
        assert key not in {t["id"] for t in fetch_every(http, url, headers, doctor=doctor)}
        server.state.clock.set(posted_at)
        served = [t for t in fetch_every(http, url, headers, doctor=doctor) if t["id"] == key]
        assert served == [posted] and served[0]["ins1_paid"] == "0.00"
        server.state.clock.set(adjudicated_at)
        since = fetch_every(http, url, headers, doctor=doctor, since=adjudicated_at.isoformat())
        assert key in {t["id"] for t in since}
        assert detail(http, server, headers, "transactions", key) == adjudicated


def test_documents_appear_0_to_10_days_after_their_date(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    delays = []
    for history in histories["documents"].values():
        [(uploaded_at, document)] = history
        delays.append(days_after(uploaded_at, date.fromisoformat(document["date"])))
    assert min(delays) >= 0 and max(delays) < 11
    assert min(delays) < 1 and max(delays) > 10  # the whole range is used
    key, (uploaded_at, document) = next(
        (k, h[0]) for k, h in histories["documents"].items() if h[0][1]["date"] > "2024-02-01"
    )
    patient = document["patient"].rsplit("/", 1)[1]
    with evolving(datetime.combine(date.fromisoformat(document["date"]), time())) as server:
        headers, url = bearer(http, server), f"{server.url}/api/documents"
        assert key not in {d["id"] for d in fetch_every(http, url, headers, patient=patient)}
        server.state.clock.set(uploaded_at - timedelta(seconds=1))
        assert key not in {d["id"] for d in fetch_every(http, url, headers, patient=patient)}
        server.state.clock.set(uploaded_at)
        assert key in {d["id"] for d in fetch_every(http, url, headers, patient=patient)}


def test_patients_get_new_addresses_and_phones(
    histories: dict[str, dict[Any, History]],
) -> None:
    edits = 0
    for history in histories["patients"].values():
        for (_, before), (when, after) in itertools.pairwise(history):
            changed = {k for k in after if after[k] != before[k]}
            assert changed and changed <= {"address", "city", "zip_code", "cell_phone"}
            assert START <= when.date() <= history_end(END).date()
            edits += 1
    assert 0.5 < edits / len(histories["patients"]) < 3


def test_since_fetches_exactly_what_changed_and_syncs_to_the_current_practice(
    http: requests.Session,
) -> None:
    with evolving() as server:
        practice, headers = server.state.practice, bearer(http, server)
        mirror = {
            name: {r["id"]: r for r in fetch_since(http, server, headers, name, datetime.min)}
            for name in VERSIONED
        }
        previous = practice.clock.local_now()
        seen = dict.fromkeys(VERSIONED, 0)
        for step in (timedelta(hours=5), timedelta(days=3), timedelta(days=40)):
            server.state.clock.advance(step)
            now = practice.clock.local_now()
            for name in VERSIONED:
                changed = fetch_since(http, server, headers, name, previous)
                expected = practice.versions_between(name, previous, now)
                seen[name] += len(expected)
                # Transactions come doctor by doctor: compare as sets of records.
                by_id = {r["id"]: r for r in changed}
                assert len(by_id) == len(changed)
                assert by_id == {r["id"]: r for r in expected}
                mirror[name].update(by_id)
                current = practice.current(name)
                assert mirror[name] == {r["id"]: r for r in current}
            previous = now
        assert all(seen.values()), seen
