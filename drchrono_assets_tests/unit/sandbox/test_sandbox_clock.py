"""The sandbox clock: frozen mode stays the default and unchanged; an evolving practice's
clock dates answers, moves forward only, is the same for the same seed, versions writes, and
can follow the real time (the practice's records over time: test_sandbox_evolution.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from drchrono_assets_tests.support.evolving import (
    FIRST,
    START,
    VERSIONED,
    History,
    detail,
    evolving,
    fetch_since,
)
from drchrono_assets_tests.support.sandbox import authorization_code_token, bearer
from drchrono_sandbox import SandboxConfig, SandboxServer, SandboxState
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.charges import is_consistent
from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.resource_table import RESOURCES

#: sha256 of the frozen practice below: evolving mode must leave it as it is. (Last changed
#: on purpose when recurring visits began to be billed.)
FROZEN_DIGEST = "8e6062a5918ccfe342bef710854132105b36d0aa5c2d80864a25107f7eebe275"


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


# The clock -----------------------------------------------------------------------------


def date_header(response: requests.Response) -> datetime:
    """The response's one `Date` header, parsed."""
    [value] = response.raw.headers.getlist("date")
    return parsedate_to_datetime(value)


def test_date_header_follows_the_clock(http: requests.Session) -> None:
    with evolving() as server:
        headers = bearer(http, server)
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
        answer = http.get(f"{frozen.url}/api/doctors", headers=bearer(http, frozen))
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
    headers = bearer(http, server)
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
        practice, headers = server.state.practice, bearer(http, server)
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
