"""Tests of the sandbox clock and of the evolving practice; frozen mode stays the default."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from drchrono_assets_tests.conftest import authorization_code_token
from drchrono_sandbox import SandboxConfig, SandboxServer, SandboxState
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.charges import is_consistent
from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.evolution import history_end
from drchrono_sandbox.generate.calendar import PAST_STATUS_WEIGHTS
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.resource_table import RESOURCES

START, END = date(2024, 1, 1), date(2024, 3, 29)
ZONE = "America/Chicago"
#: Where evolving sandboxes start: naive, so in ZONE (18:00 UTC).
FIRST = datetime(2024, 2, 1, 12, 0)
VERSIONED = ("appointments", "documents", "patients", "transactions")
#: sha256 of the frozen practice below: evolving mode must leave it as it is. (Last changed
#: on purpose when recurring visits began to be billed.)
FROZEN_DIGEST = "8e6062a5918ccfe342bef710854132105b36d0aa5c2d80864a25107f7eebe275"

History = list[tuple[datetime, dict[str, Any]]]


@pytest.fixture(scope="module")
def histories() -> dict[str, dict[Any, History]]:
    """Every versioned record's history, from a practice whose clock is past them all."""
    practice = Practice(SandboxConfig(start=START, end=END, clock=history_end(END), timezone=ZONE))
    return {
        name: {r["id"]: practice.history(name, r["id"]) for r in practice.current(name)}
        for name in VERSIONED
    }


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@contextmanager
def evolving(clock: datetime = FIRST, seed: int = 7) -> Iterator[SandboxServer]:
    with SandboxServer(
        SandboxConfig(seed=seed, start=START, end=END, clock=clock, timezone=ZONE)
    ) as server:
        yield server


def auth(http: requests.Session, server: SandboxServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {authorization_code_token(http, server)['access_token']}"}


def fetch_all(
    http: requests.Session, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every result of a list, following `next` until it is null."""
    response = http.get(url, headers=headers, params={"page_size": 250, **params})
    results: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        results += page["results"]
        if page["next"] is None:
            return results
        response = http.get(page["next"], headers=headers)


def detail(
    http: requests.Session, server: SandboxServer, headers: dict[str, str], name: str, key: Any
) -> dict[str, Any] | None:
    response = http.get(f"{server.url}/api/{name}/{key}", headers=headers)
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


def since_params(name: str) -> list[dict[str, Any]]:
    """The queries whose union is a whole resource (transactions need a doctor)."""
    return [{"doctor": d} for d in (101, 102, 103)] if name == "transactions" else [{}]


def fetch_since(
    http: requests.Session,
    server: SandboxServer,
    headers: dict[str, str],
    name: str,
    since: datetime,
) -> list[dict[str, Any]]:
    url = f"{server.url}/api/{name}"
    return [
        record
        for params in since_params(name)
        for record in fetch_all(http, url, headers, since=since.isoformat(), **params)
    ]


def relative(record: dict[str, Any], server: SandboxServer) -> dict[str, Any]:
    """A served record with document URLs relative, as a practice without a server has them."""
    if "document" in record:
        return {**record, "document": record["document"].removeprefix(server.url)}
    return record


def days_after(later: datetime, day: date) -> float:
    """How many days `later` is after the start of `day`."""
    return (later - datetime.combine(day, time())) / timedelta(days=1)


def visit_day(record: dict[str, Any]) -> date:
    return date.fromisoformat(record["scheduled_time"][:10])


# Frozen mode -------------------------------------------------------------------------


def test_frozen_mode_is_the_default_and_unchanged() -> None:
    # Every input pinned: the digest is of this exact practice, whatever the defaults.
    pinned = SandboxConfig(
        seed=7, start=date(2024, 1, 1), end=date(2024, 3, 31), today=date(2024, 3, 1)
    )
    practice = Practice(pinned)
    data = {
        "records": {n: practice.resource(n) for n in RESOURCES},
        "updated": {
            n: {str(k): v.isoformat() for k, v in practice.updated_at_map(n).items()}
            for n in RESOURCES
        },
    }
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    assert digest == FROZEN_DIGEST
    state = SandboxState(SandboxConfig(end=date(2024, 1, 5)))
    assert not state.clock.evolving
    assert abs(state.clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="frozen"):
        state.clock.advance(timedelta(seconds=1))


# The evolving practice -----------------------------------------------------------------


def test_records_exist_only_from_their_first_version(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    with evolving() as server:
        practice, headers = server.state.practice, auth(http, server)
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
        headers = auth(http, server)
        day = booked["scheduled_time"][:10]
        on_day = fetch_all(http, f"{server.url}/api/appointments", headers, date=day)
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
        headers = auth(http, server)

        def on(day: str) -> set[str]:
            url = f"{server.url}/api/appointments"
            return {a["id"] for a in fetch_all(http, url, headers, date=day)}

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
        headers, url = auth(http, server), f"{server.url}/api/transactions"
        assert key not in {t["id"] for t in fetch_all(http, url, headers, doctor=doctor)}
        server.state.clock.set(posted_at)
        served = [t for t in fetch_all(http, url, headers, doctor=doctor) if t["id"] == key]
        assert served == [posted] and served[0]["ins1_paid"] == "0.00"
        server.state.clock.set(adjudicated_at)
        since = fetch_all(http, url, headers, doctor=doctor, since=adjudicated_at.isoformat())
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
        headers, url = auth(http, server), f"{server.url}/api/documents"
        assert key not in {d["id"] for d in fetch_all(http, url, headers, patient=patient)}
        server.state.clock.set(uploaded_at - timedelta(seconds=1))
        assert key not in {d["id"] for d in fetch_all(http, url, headers, patient=patient)}
        server.state.clock.set(uploaded_at)
        assert key in {d["id"] for d in fetch_all(http, url, headers, patient=patient)}


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
        practice, headers = server.state.practice, auth(http, server)
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


# The clock -----------------------------------------------------------------------------


def date_header(response: requests.Response) -> datetime:
    """The response's one `Date` header, parsed."""
    [value] = response.raw.headers.getlist("date")
    return parsedate_to_datetime(value)


def test_date_header_follows_the_clock(http: requests.Session) -> None:
    with evolving() as server:
        headers = auth(http, server)
        doctors = http.get(f"{server.url}/api/doctors", headers=headers)
        assert doctors.raw.headers.getlist("date") == ["Thu, 01 Feb 2024 18:00:00 GMT"]
        server.state.clock.advance(timedelta(seconds=90.7))
        assert date_header(http.get(f"{server.url}/api/doctors", headers=headers)) == datetime(
            2024, 2, 1, 18, 1, 30, tzinfo=UTC
        )
        http.post(f"{server.url}/_sandbox/clock", json={"to": "2024-02-03T09:15:00-06:00"})
        token = authorization_code_token(http, server)  # /o/ answers are dated too
        assert token["access_token"]
        missing = http.get(f"{server.url}/api/doctors/1", headers=headers)
        assert missing.status_code == 404
        assert date_header(missing) == datetime(2024, 2, 3, 15, 15, tzinfo=UTC)
    with SandboxServer(SandboxConfig(start=START, end=date(2024, 1, 5))) as frozen:
        answer = http.get(f"{frozen.url}/api/doctors", headers=auth(http, frozen))
        assert abs(date_header(answer) - datetime.now(UTC)) < timedelta(seconds=5)


def test_clock_admin_route_moves_forward_only_and_is_not_counted(
    http: requests.Session,
) -> None:
    with evolving() as server:
        url = f"{server.url}/_sandbox/clock"
        server.state.stats.reset()
        assert http.get(url).json() == {
            "now": "2024-02-01T18:00:00+00:00",
            "local_now": "2024-02-01T12:00:00",
            "evolving": True,
            "live": False,
        }
        moved = http.post(url, json={"advance_seconds": 3600.5})
        assert moved.status_code == 200
        assert moved.json()["local_now"] == "2024-02-01T13:00:00.500000"
        assert http.post(url, json={"to": "2024-02-02T08:00:00"}).json()["now"] == (
            "2024-02-02T14:00:00+00:00"  # naive: practice-local
        )
        for body in (
            {"to": "2024-02-02T07:59:59"},
            {"to": "2024-02-02T13:59:59Z"},
            {"advance_seconds": -1},
            {"advance_seconds": 1, "to": "2024-03-01"},
            {},
            {"to": "soon"},
            {"advance_seconds": "x"},
            [1],
        ):
            refused = http.post(url, json=body)
            assert refused.status_code == 400, body
            assert isinstance(refused.json()["detail"], str)
        assert server.state.clock.local_now() == datetime(2024, 2, 2, 8, 0)
        assert server.state.stats.snapshot()["requests"] == 0
        assert http.get(f"{server.url}/_sandbox/stats").json()["requests"] == 0
        with pytest.raises(ValueError, match="forward"):
            server.state.clock.set(FIRST)
    with SandboxServer(SandboxConfig(start=START, end=date(2024, 1, 5))) as frozen:
        url = f"{frozen.url}/_sandbox/clock"
        assert http.get(url).json()["evolving"] is False
        refused = http.post(url, json={"advance_seconds": 60})
        assert refused.status_code == 400 and "frozen" in refused.json()["detail"]


def served_practice(http: requests.Session, server: SandboxServer) -> dict[str, Any]:
    """Everything a client can list, with the server's URL masked."""
    headers = auth(http, server)
    data = {
        name: fetch_since(http, server, headers, name, datetime.min)
        for name in (*VERSIONED, "doctors", "offices", "users")
    }
    return json.loads(json.dumps(data).replace(server.url, "<sandbox>"))


def test_same_seed_and_clock_serve_the_same_practice(http: requests.Session) -> None:
    with evolving() as one, evolving() as two, evolving(FIRST + timedelta(days=1)) as later:
        first = served_practice(http, one)
        assert first == served_practice(http, two)
        assert first != served_practice(http, later)
        for server in (one, two):
            server.state.clock.advance(timedelta(days=1))
        assert served_practice(http, one) == served_practice(http, later)
        assert served_practice(http, two) == served_practice(http, later)
    with evolving(seed=8) as other:
        assert served_practice(http, other) != first


# Writes and the command line -------------------------------------------------------------


def test_writes_add_versions_at_the_clock(
    http: requests.Session, histories: dict[str, dict[Any, History]]
) -> None:
    # A line posted before FIRST and adjudicated after it, with a patient share to pay.
    key, history = next(
        (k, h)
        for k, h in histories["transactions"].items()
        if len(h) == 2 and h[0][0] < FIRST < h[1][0] and Decimal(h[1][1]["balance_pt"]) > 5
    )
    adjudicated_at, adjudicated = history[1]
    with evolving() as server:
        practice, headers = server.state.practice, auth(http, server)
        paid = http.post(
            f"{server.url}/_sandbox/post-payment", json={"transaction_id": key, "pt_paid": "5"}
        )
        assert paid.status_code == 200 and paid.json()["pt_paid"] == "5.00"
        assert [when for when, _ in practice.history("transactions", key)] == [
            history[0][0],
            FIRST,
            adjudicated_at,
        ]
        assert practice.versions_between("transactions", FIRST, FIRST) == [paid.json()]
        # The adjudication still comes, on top of the payment.
        practice.clock.set(adjudicated_at)
        line = detail(http, server, headers, "transactions", key)
        assert line is not None and is_consistent(line)
        assert Decimal(line["pt_paid"]) == Decimal(adjudicated["pt_paid"]) + 5
        assert line["ins1_paid"] == adjudicated["ins1_paid"]

        created = http.post(
            f"{server.url}/api/appointments",
            headers=headers,
            json={
                "doctor": "/api/doctors/101",
                "office": "/api/offices/201",
                "patient": "/api/patients/10001",
                "scheduled_time": "2024-04-02T16:30:00",
                "duration": 30,
            },
        ).json()
        now = practice.clock.local_now()
        assert practice.history("appointments", created["id"]) == [(now, created)]
        assert [a["id"] for a in fetch_since(http, server, headers, "appointments", now)] == [
            created["id"]
        ]


def test_cli_clock_and_timezone(capsys: pytest.CaptureFixture[str]) -> None:
    short = ["--end", "2024-01-05"]
    args = parse_args([*short, "--clock", "2024-01-03T09:00", "--timezone", "Europe/Berlin"])
    clock = SandboxState(config_from_args(args)).clock
    assert clock.evolving and clock.now() == datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
    assert not SandboxState(config_from_args(parse_args(short))).clock.evolving
    with pytest.raises(SystemExit):
        parse_args(["--timezone", "Mars/Olympus"])
    assert "unknown time zone" in capsys.readouterr().err


def test_a_live_clock_evolves_on_the_real_time_and_cannot_be_moved() -> None:
    """``make ui``'s sandbox: the practice is served as of the real time, to the second."""
    config = SandboxConfig(start=date(2024, 1, 1), end=date(2024, 3, 31), live=True)
    with SandboxServer(config) as server:
        clock = server.state.clock
        before = datetime.now(UTC).replace(microsecond=0)
        assert clock.evolving and clock.live and before <= clock.now() <= datetime.now(UTC)
        assert clock.now().microsecond == 0
        with pytest.raises(ValueError, match="live"):
            clock.advance(timedelta(hours=1))
    with pytest.raises(ValueError, match="live"):
        SandboxClock(datetime(2024, 1, 1), live=True)
