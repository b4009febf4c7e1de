"""An evolving sandbox practice: where it starts and what it versions, a server on its clock,
and a client's view of its records' versions over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import Any

import requests

from drchrono_assets_tests.support.sandbox import fetch_all
from drchrono_sandbox import SandboxConfig, SandboxServer

START, END = date(2024, 1, 1), date(2024, 3, 29)
ZONE = "America/Chicago"
#: Where evolving sandboxes start: naive, so in ZONE (18:00 UTC).
FIRST = datetime(2024, 2, 1, 12, 0)
VERSIONED = ("appointments", "documents", "patients", "transactions")
#: A record's versions: when each began, and the record as it was then.
History = list[tuple[datetime, dict[str, Any]]]


@contextmanager
def evolving(clock: datetime = FIRST, seed: int = 7) -> Iterator[SandboxServer]:
    """A sandbox whose practice evolves from ``clock``."""
    with SandboxServer(
        SandboxConfig(seed=seed, start=START, end=END, clock=clock, timezone=ZONE)
    ) as server:
        yield server


def detail(
    http: requests.Session, server: SandboxServer, headers: dict[str, str], name: str, key: Any
) -> dict[str, Any] | None:
    """The record ``key`` of ``name`` as served now, or None where there is none (yet)."""
    response = http.get(f"{server.url}/api/{name}/{key}", headers=headers)
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


def fetch_every(
    http: requests.Session, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every result of a list, in pages of 250 (the most the API gives)."""
    return fetch_all(http, url, headers, page_size=250, **params)


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
    """Every record of ``name`` changed since ``since``, in pages of 250."""
    url = f"{server.url}/api/{name}"
    return [
        record
        for params in since_params(name)
        for record in fetch_every(http, url, headers, since=since.isoformat(), **params)
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
    """The day an appointment is scheduled on."""
    return date.fromisoformat(record["scheduled_time"][:10])
