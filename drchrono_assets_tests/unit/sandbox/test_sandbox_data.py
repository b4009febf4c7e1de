"""The practice the sandbox serves: the same for the same seed, a realistic mix of calendar
and billing data, exact money, and the sizes of practice it can be."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from starlette.datastructures import QueryParams

from drchrono_assets_tests.support.sandbox import (
    authorization_code_token,
    fetch_all,
    refresh,
)
from drchrono_sandbox import SandboxServer, SandboxState, filters
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.charges import MONEY_FIELDS, is_consistent
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.generate.base import ref
from drchrono_sandbox.generate.size import PracticeSize
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.resource_table import BY_NAME

START, END = DEFAULTS.start, DEFAULTS.end
MONEY = re.compile(r"^-?\d+\.\d{2}$")


# Data -----------------------------------------------------------------------------------


def served_practice(http: requests.Session, server: SandboxServer) -> dict[str, Any]:
    """Everything a server serves, fetched over HTTP, with its own URL blanked out."""
    token = refresh(http, server, server.initial_refresh_token).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    data: dict[str, Any] = {}
    for resource in ("appointment_profiles", "appointment_templates", "doctors", "documents",
                     "offices", "patients", "reminder_profiles", "users"):  # fmt: skip
        data[resource] = fetch_all(http, f"{server.url}/api/{resource}", auth, page_size=250)
    span = f"{server.config.start}/{server.config.end}"
    data["appointments"] = fetch_all(
        http, f"{server.url}/api/appointments", auth, date_range=span, page_size=250
    )
    data["transactions"] = [
        fetch_all(http, f"{server.url}/api/transactions", auth, doctor=doctor, page_size=250)
        for doctor in (101, 102, 103)
    ]
    return json.loads(json.dumps(data).replace(server.url, "<sandbox>"))


def test_same_seed_serves_identical_data(http: requests.Session) -> None:
    end = START + timedelta(days=41)
    with (
        SandboxServer(SandboxConfig(seed=11, start=START, end=end)) as one,
        SandboxServer(SandboxConfig(seed=11, start=START, end=end)) as two,
    ):
        assert one.url != two.url
        assert one.initial_refresh_token != two.initial_refresh_token
        first, second = served_practice(http, one), served_practice(http, two)
        assert first == second
        assert len(first["appointments"]) > 500 and sum(map(len, first["transactions"])) > 300
        assert first["documents"][0]["document"].startswith("<sandbox>/")
        # The hidden timestamps behind `since` are reproducible too.
        assert one.state.practice.updated_at_map("transactions") == (
            two.state.practice.updated_at_map("transactions")
        )
    with SandboxServer(SandboxConfig(seed=12, start=START, end=end)) as other:
        assert other.state.practice.patients != one.state.practice.patients


def test_calendar_and_billing_data_mix(sandbox: SandboxServer) -> None:
    practice = sandbox.state.practice
    appointments = [a for a in practice.appointments if a["scheduled_time"] <= "2024-06-30T23"]
    assert all(datetime.fromisoformat(a["scheduled_time"]).weekday() < 5 for a in appointments)
    assert {a["status"] for a in appointments} == {
        "", "Arrived", "Cancelled", "Complete", "Confirmed", "In Session", "No Show",
        "Not Confirmed", "Rescheduled",
    }  # fmt: skip
    visits = [a for a in appointments if a["patient"]]
    recurring = [a for a in visits if "_" in a["id"]]
    assert 0.02 < len(recurring) / len(visits) < 0.08
    per_day = len(visits) / (3 * len({a["scheduled_time"][:10] for a in visits}))
    assert 7.5 < per_day < 8.5
    assert any(a["reminders"] for a in visits) and any(not a["reminders"] for a in visits)

    lines = practice.transactions
    billed = {t["appointment"] for t in lines}
    numeric_ids = {int(a["id"]) for a in practice.appointments if a["id"].isdigit()}
    complete = [a for a in visits if a["status"] == "Complete" and a["id"].isdigit()]
    unbilled = [a for a in complete if int(a["id"]) not in billed]
    assert 0.02 < len(unbilled) / len(complete) < 0.09
    series = {int(a["id"].split("_")[0]) for a in recurring}
    orphans = [t for t in lines if t["appointment"] not in numeric_ids | series]
    assert 12 <= len(orphans) <= 24  # two to four a month
    # A recurring visit's lines carry its series' number, which names no appointment.
    assert series & billed and not series & numeric_ids
    per_visit: dict[tuple[int, str], int] = {}  # a series' number bills one visit a week
    for line in lines:
        visit = (line["appointment"], line["date"])
        per_visit[visit] = per_visit.get(visit, 0) + 1
    assert set(per_visit.values()) <= {1, 2, 3} and len(set(per_visit.values())) == 3
    assert {t["quantity"] for t in lines} == {0.5, 1.0, 2.0}
    assert {t["procedure_type"] for t in lines} == {"CPT", "HCPCS", "Custom"}
    assert {type(t["appointment"]) for t in lines} == {int} == {type(t["location"]) for t in lines}

    hidden = practice.updated_at_map("transactions")
    for line in lines:
        date_ = datetime.fromisoformat(line["date"])
        assert date_ <= hidden[line["id"]] <= date_ + timedelta(days=46)
        assert len(line["modifiers"]) == 4 and len(line["diagnosis_pointers"]) == 4
        assert line["units"] == "UN"


def test_money_strings_are_exact_and_mostly_consistent(sandbox: SandboxServer) -> None:
    lines = sandbox.state.practice.transactions
    for line in lines:
        for name in MONEY_FIELDS:
            assert isinstance(line[name], str) and MONEY.match(line[name]), (name, line[name])
    broken = [t for t in lines if not is_consistent(t)]
    assert 0.003 < len(broken) / len(lines) < 0.025
    for line in lines:
        if line in broken:
            continue
        a = {name: Decimal(line[name]) for name in MONEY_FIELDS}
        assert a["ins_total"] == a["ins1_paid"] + a["ins2_paid"] + a["ins3_paid"]
        assert a["paid_total"] == a["ins_total"] + a["pt_paid"]
        assert a["balance_total"] == a["balance_ins"] + a["balance_pt"]
        assert a["balance_total"] == a["billed"] - a["adjustment"] - a["paid_total"]
    denied = [t for t in lines if t["denied_flag"]]
    assert denied
    assert all(t["billing_status"] in ("ERA Denied", "Rejected Payer") for t in denied)
    assert all(Decimal(t["paid_total"]) == 0 for t in denied if t not in broken)
    assert any(Decimal(t["ins2_paid"]) > 0 for t in lines)
    assert any(Decimal(t["ins3_paid"]) > 0 for t in lines)


def test_post_payment_updates_consistently_and_shows_in_since(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    practice = sandbox.state.practice
    line = next(
        t
        for t in reversed(practice.transactions)
        if t["billing_status"] == "In Process Payer"
        and is_consistent(t)
        and Decimal(t["billed"]) > 20
    )
    before = {name: Decimal(line[name]) for name in MONEY_FIELDS}
    mark = datetime.now()
    updated = practice.post_payment(line["id"], ins1_paid=Decimal("10.00"), pt_paid=Decimal("0"))
    assert is_consistent(updated)
    assert Decimal(updated["ins1_paid"]) == before["ins1_paid"] + Decimal("10.00")
    assert Decimal(updated["balance_total"]) == before["balance_total"] - Decimal("10.00")
    assert updated["billing_status"] == "Partially Paid"
    served = fetch_all(
        http,
        f"{sandbox.url}/api/transactions",
        headers,
        doctor=line["doctor"],
        since=mark.isoformat(timespec="seconds"),
    )
    assert [t["id"] for t in served] == [line["id"]] and served[0] == updated

    over_http = http.post(
        f"{sandbox.url}/_sandbox/post-payment",
        json={"transaction_id": line["id"], "pt_paid": "0.01"},
    )
    assert over_http.status_code == 200 and over_http.json()["pt_paid"] == "0.01"
    assert is_consistent(over_http.json())


# Practice size -------------------------------------------------------------------------

#: Two working weeks of the large practice: the first one past, the second to come.
LARGE_START, LARGE_END, LARGE_TODAY = date(2024, 3, 4), date(2024, 3, 15), date(2024, 3, 11)


@pytest.fixture(scope="module")
def large() -> Practice:
    return Practice(
        SandboxConfig(start=LARGE_START, end=LARGE_END, today=LARGE_TODAY, size=PracticeSize.LARGE)
    )


def test_large_practice_has_the_size_asked_for(large: Practice) -> None:
    doctors = large.doctors
    doctor_ids = [d["id"] for d in doctors]
    assert doctor_ids == list(range(101, 109))
    assert len({d["npi_number"] for d in doctors}) == 8
    # The named three are those of the small practice.
    small = Practice(SandboxConfig(start=LARGE_START, end=LARGE_START, today=LARGE_TODAY))
    assert doctors[:3] == small.doctors

    users = large.users
    assert len({u["id"] for u in users}) == len(users) == 10
    assert len({u["username"] for u in users}) == len(users)
    assert [u["id"] for u in users if u["is_staff"]] == [304, 305]
    doctor_users = [u for u in users if u["is_doctor"]]
    assert sorted(u["doctor"] for u in doctor_users) == [ref("doctors", d) for d in doctor_ids]
    assert large.get("users", large.account_user_id)["doctor"] == ref("doctors", 101)

    patients = large.patients
    assert len({p["id"] for p in patients}) == len(patients) == 5000
    assert {p["doctor"] for p in patients} == {ref("doctors", d) for d in doctor_ids}

    appointments = large.appointments
    assert len({a["id"] for a in appointments}) == len(appointments)
    per_day: dict[str, int] = {}
    for appointment in appointments:
        day = appointment["scheduled_time"][:10]
        per_day[day] = per_day.get(day, 0) + 1
    assert len(per_day) == 10 and all(90 <= count <= 110 for count in per_day.values())
    assert {a["doctor"] for a in appointments} == {ref("doctors", d) for d in doctor_ids}
    offices = {ref("offices", o["id"]): o for o in large.offices}
    for appointment in appointments:
        rooms = {room["index"] for room in offices[appointment["office"]]["exam_rooms"]}
        assert appointment["exam_room"] in rooms
    assert any("_" in a["id"] for a in appointments)  # recurring series too

    lines = large.transactions
    assert {line["doctor"] for line in lines} == set(doctor_ids)
    assert all(line["date"] < LARGE_TODAY.isoformat() for line in lines)


def test_practice_size_presets_and_cli() -> None:
    assert PracticeSize() == PracticeSize.SMALL
    assert PracticeSize.from_name("large") is PracticeSize.LARGE
    assert PracticeSize.from_name("Small") is PracticeSize.SMALL
    assert PracticeSize(doctors=8, patients=5000, visits_per_day=12) == PracticeSize.LARGE
    with pytest.raises(ValueError, match="unknown practice size"):
        PracticeSize.from_name("huge")
    with pytest.raises(ValueError, match="doctors"):
        PracticeSize(doctors=0)
    assert parse_args([]).size == PracticeSize.SMALL
    assert parse_args(["--size", "large"]).size == PracticeSize.LARGE
    with pytest.raises(SystemExit):
        parse_args(["--size", "huge"])
    doubled = config_from_args(parse_args(["--size", "large", "--patients", "10000"]))
    assert SandboxState(doubled).practice.config.size == PracticeSize(
        doctors=8, patients=10000, visits_per_day=12
    )
    # A smaller size works too: one doctor, whom the staff then both point at.
    tiny = PracticeSize(doctors=1, patients=20, visits_per_day=3)
    practice = Practice(
        SandboxConfig(start=LARGE_START, end=LARGE_START + timedelta(days=4), size=tiny)
    )
    assert [d["id"] for d in practice.doctors] == [101] and len(practice.patients) == 20
    assert {u["doctor"] for u in practice.users} == {ref("doctors", 101)}


def test_large_evolving_practice_filters_and_pages_like_a_scan(http: requests.Session) -> None:
    clock = datetime(2024, 3, 13, 9, 0)
    server = SandboxServer(
        SandboxConfig(
            seed=3, start=LARGE_START, end=LARGE_END, clock=clock, size=PracticeSize.LARGE
        )
    )
    with server:
        practice = server.state.practice
        auth = {"Authorization": f"Bearer {authorization_code_token(http, server)['access_token']}"}
        url = f"{server.url}/api/appointments"

        def ids(records: list[dict[str, Any]]) -> list[str]:
            return [record["id"] for record in records]

        served = practice.current("appointments")
        day = [a for a in served if a["scheduled_time"].startswith("2024-03-12")]
        assert 90 <= len(day) <= 110
        assert ids(fetch_all(http, url, auth, date="2024-03-12", page_size=30)) == ids(day)
        span = [
            a
            for a in served
            if "2024-03-06" <= a["scheduled_time"][:10] <= "2024-03-11"
            and a["doctor"] == ref("doctors", 105)
        ]
        got = fetch_all(http, url, auth, date_range="2024-03-06/2024-03-11", doctor=105)
        assert span and ids(got) == ids(span)
        # A `since` sync pages through one selection; a clock move makes a new one.
        since = practice.clock.local_now() - timedelta(days=1)
        for _ in range(2):
            wanted = practice.versions_between("appointments", since, practice.clock.local_now())
            got = fetch_all(http, url, auth, since=since.isoformat(), page_size=50)
            assert len(got) > 50 and ids(got) == ids(wanted)
            practice.clock.advance(timedelta(days=1))


def test_list_selections_are_remembered_until_a_write() -> None:
    practice = Practice(
        SandboxConfig(start=LARGE_START, end=LARGE_START + timedelta(days=2), today=LARGE_TODAY)
    )
    day = LARGE_START.isoformat()

    def select(resource: str, query: str) -> list[str]:
        with practice.lock:
            selected = filters.select(practice, BY_NAME[resource], QueryParams(query))
            return [r["id"] for r in selected]

    first = select("appointments", f"date={day}")
    assert first and select("appointments", f"date={day}&page_size=5&cursor=bzo1") == first
    new = practice.create_appointment(
        {
            "doctor": ref("doctors", 102),
            "office": ref("offices", 201),
            "scheduled_time": f"{day}T17:30:00",
            "duration": 30,
        }
    )
    assert select("appointments", f"date={day}") == [*first, new["id"]]
    line = practice.transactions[0]
    mark = datetime.now().isoformat(timespec="seconds")
    query = f"doctor={line['doctor']}&since={mark}"
    assert select("transactions", query) == []
    practice.post_payment(line["id"], pt_paid=Decimal("0.01"))  # updated now: after `mark`
    assert select("transactions", query) == [line["id"]]
