"""What the billing report must hold, computed from the sandbox's served records in plain
Python, independently of the product's SQL."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from drchrono_assets_tests.support.assets import read_partition, served
from drchrono_sandbox import SandboxServer

# Spelled out here rather than imported, so a change in the product's lists shows up.
MONEY = (
    "price", "billed", "allowed", "adjustment", "ins1_paid", "ins2_paid", "ins3_paid",
    "ins_total", "pt_paid", "paid_total", "balance_ins", "balance_pt", "balance_total",
)  # fmt: skip
VISITS = ("Complete", "Arrived", "In Session")
ZERO = Decimal("0.00")


def numeric_id(appointment_id: str) -> int | None:
    """The integer a transaction would carry for this appointment, None if not a number."""
    return int(appointment_id) if re.fullmatch(r"[0-9]+", appointment_id) else None


def path_id(path: str | None) -> int | None:
    """The id at the end of an API path such as ``/api/doctors/101``, None for none."""
    return int(path.rsplit("/", 1)[1]) if path else None


def doctor_names(sandbox: SandboxServer, practice: int = 0) -> dict[int, str]:
    """Each doctor's full name by id (of the sandbox's ``practice``, its index)."""
    doctors = sandbox.state.practices[practice].doctors
    return {d["id"]: f"{d['first_name']} {d['last_name']}" for d in doctors}


def money_sums(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    """The sum of each money column over ``lines``."""
    return {name: sum((Decimal(line[name]) for line in lines), ZERO) for name in MONEY}


def line_owners(sandbox: SandboxServer, day: str, practice: int = 0) -> dict[int, str | None]:
    """Transaction id -> the id of the appointment it bills (None: an orphan), in the
    sandbox's ``practice`` (its index). A line's ``appointment`` number names a numeric
    appointment of its day; failing that, the one non-numeric appointment with its doctor,
    start time and office (what the reference documents beside it)."""
    numbers: dict[int, str] = {}
    slots: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for appointment in served(sandbox, "appointments", day, practice):
        number = numeric_id(appointment["id"])
        if number is not None:
            numbers[number] = appointment["id"]
        else:
            start = dt.datetime.fromisoformat(appointment["scheduled_time"])
            doctor, office = path_id(appointment["doctor"]), path_id(appointment["office"])
            slots[(doctor, start, office)].append(appointment["id"])
    owners: dict[int, str | None] = {}
    for line in served(sandbox, "transactions", day, practice):
        slot = (line["doctor"], dt.datetime.fromisoformat(line["date"]), line["location"])
        same_slot = slots.get(slot, [])
        fallback = same_slot[0] if len(same_slot) == 1 else None
        owners[line["id"]] = numbers.get(line["appointment"], fallback)
    return owners


def orphan_days(sandbox: SandboxServer, days: tuple[str, ...]) -> dict[str, set[int]]:
    """Days with line items that bill no appointment: the numbers those lines carry."""
    found = {}
    for day in days:
        owners = line_owners(sandbox, day)
        lines = served(sandbox, "transactions", day)
        orphans = {line["appointment"] for line in lines if owners[line["id"]] is None}
        if orphans:
            found[day] = orphans
    return found


def line_fields(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's line-item columns for a visit's (or an orphan's) ``lines``."""
    return {
        "line_items": len(lines),
        "procedure_codes": sorted(line["code"] for line in lines),
        **money_sums(lines),
        "denied_line_items": sum(1 for line in lines if line["denied_flag"]),
        "billing_statuses": sorted({line["billing_status"] for line in lines}),
    }


def expected_rows(sandbox: SandboxServer, day: str, practice: int = 0) -> dict[str, dict[str, Any]]:
    """The report rows of ``day`` by appointment id (orphans: by the number they carry), of
    the sandbox's ``practice`` (its index)."""
    owners = line_owners(sandbox, day, practice)
    billed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    orphaned: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in served(sandbox, "transactions", day, practice):
        owner = owners[line["id"]]
        if owner is None:
            orphaned[line["appointment"]].append(line)
        else:
            billed[owner].append(line)
    rows: dict[str, dict[str, Any]] = {}
    for appointment in served(sandbox, "appointments", day, practice):
        lines = billed.get(appointment["id"], [])
        visit = appointment["status"] in VISITS and appointment["patient"] is not None
        if not lines and not visit:
            continue
        rows[appointment["id"]] = {
            "doctor_id": path_id(appointment["doctor"]),
            "office_id": path_id(appointment["office"]),
            "patient_id": path_id(appointment["patient"]),
            "status": appointment["status"],
            "scheduled_time": dt.datetime.fromisoformat(appointment["scheduled_time"]),
            **line_fields(lines),
            "is_orphan": False,
            "is_unbilled": not lines,
        }
    for number, lines in orphaned.items():
        rows[str(number)] = {
            "doctor_id": lines[0]["doctor"],
            "office_id": lines[0]["location"],
            "patient_id": None,
            "status": None,
            "scheduled_time": min(dt.datetime.fromisoformat(line["date"]) for line in lines),
            **line_fields(lines),
            "is_orphan": True,
            "is_unbilled": False,
        }
    return rows


def report_rows(data_root: Path, day: str) -> dict[str, dict[str, Any]]:
    """The stored report of ``day`` by appointment id (ids are unique within a day)."""
    rows = read_partition(data_root, "billing_report", day).to_pylist()
    by_id = {row["appointment_id"]: row for row in rows}
    assert len(by_id) == len(rows), day
    return by_id
