"""Several practices behind one sandbox and one API application, as drchrono connects a
billing company's application to many: each with its own data, ids, grants and refresh
chain, all under one hourly budget and one clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from drchrono_assets_tests.support.sandbox import (
    REDIRECT_URI,
    authorization_code_token,
    authorize_redirect,
    bearer,
    fresh_refresh_token,
    get_json,
    redirect_query,
    refresh,
)
from drchrono_sandbox import SandboxServer, SandboxState
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.oauth_server import OAuthState
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.resource_table import RESOURCES

START = DEFAULTS.start
#: Two weeks: little to generate, every resource present.
SHORT = SandboxConfig(seed=5, start=START, end=START + timedelta(days=13))
REFERENCE = re.compile(r"^/api/(?P<resource>[a-z_]+)/(?P<id>[^/]+)$")


@pytest.fixture(scope="module")
def two_practices() -> Iterator[SandboxServer]:
    """A sandbox of the module's own serving two practices."""
    with SandboxServer(replace(SHORT, practices=2)) as server:
        yield server


def _ids(practice: Practice) -> set[tuple[str, Any]]:
    return {(name, record["id"]) for name in RESOURCES for record in practice.current(name)}


def _first(practice: Practice, resource: str) -> int | str:
    return practice.current(resource)[0]["id"]


# Data ------------------------------------------------------------------------------------


def test_each_practice_has_its_own_data_and_ids() -> None:
    state = SandboxState(replace(SHORT, practices=3))
    assert state.practice is state.practices[0] and len(state.practices) == 3
    _, second, third = state.practices
    names = [[(p["first_name"], p["last_name"]) for p in q.patients] for q in state.practices]
    assert names[0] != names[1] != names[2]
    ids = [_ids(practice) for practice in state.practices]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert [d["id"] for d in second.doctors] == [10_000_101, 10_000_102, 10_000_103]
    assert third.account_user_id == 20_000_301
    for practice in state.practices:
        # Every reference, by path or (line items) by number, names a record of its own.
        for name in RESOURCES:
            for record in practice.current(name):
                for value in record.values():
                    match = REFERENCE.match(value) if isinstance(value, str) else None
                    if match is not None:
                        assert practice.get(match["resource"], match["id"]) is not None, value
        for line in practice.transactions:
            assert practice.get("doctors", line["doctor"]) is not None
            assert practice.get("offices", line["location"]) is not None
        reminders = {r["id"] for a in practice.appointments for r in a["reminders"]}
        assert reminders and all(r // 10_000_000 == practice.index for r in reminders)
    # Series instances keep their shape, their series number moved.
    recurring = [a["id"] for a in second.appointments if "_" in a["id"]]
    assert recurring and all(re.fullmatch(r"1000\d{4}_\d{8}", i) for i in recurring)


def test_practice_zero_is_the_single_practice_sandbox() -> None:
    alone, state = Practice(SHORT), SandboxState(replace(SHORT, practices=2))
    for name in RESOURCES:
        assert state.practice.current(name) == alone.current(name), name
        assert state.practice.updated_at_map(name) == alone.updated_at_map(name), name
    assert state.practice.account_user_id == alone.account_user_id == 301


def test_practices_share_one_clock() -> None:
    at = datetime(2024, 1, 8, 12)
    state = SandboxState(replace(SHORT, clock=at, practices=2))
    assert all(practice.clock is state.clock for practice in state.practices)
    before = [len(practice.appointments) for practice in state.practices]
    state.clock.advance(timedelta(days=3))
    after = [len(practice.appointments) for practice in state.practices]
    assert all(later > earlier for earlier, later in zip(before, after, strict=True))


# OAuth and the API -----------------------------------------------------------------------


def test_a_token_of_practice_one_reads_and_writes_practice_one(
    http: requests.Session, two_practices: SandboxServer
) -> None:
    url, (zero, one) = two_practices.url, two_practices.state.practices
    headers = bearer(http, two_practices, practice=1)
    doctors = get_json(http, f"{url}/api/doctors", headers)["results"]
    assert doctors == one.current("doctors") != zero.current("doctors")
    patient = _first(one, "patients")
    assert get_json(http, f"{url}/api/patients/{patient}", headers) == one.get("patients", patient)
    other = http.get(f"{url}/api/patients/{_first(zero, 'patients')}", headers=headers)
    assert other.status_code == 404
    current = http.get(f"{url}/api/users/current", headers=headers, allow_redirects=False)
    assert current.headers["Location"].endswith(f"/api/users/{one.account_user_id}")
    document = one.documents[0]["document"]
    assert http.get(document).status_code == 200 and "/10070001/" in document

    booked = http.post(
        f"{url}/api/appointments",
        headers=headers,
        json={
            "doctor": f"/api/doctors/{_first(one, 'doctors')}",
            "office": f"/api/offices/{_first(one, 'offices')}",
            "scheduled_time": "2024-01-10T17:30:00",
            "duration": 30,
        },
    )
    assert booked.status_code == 201, booked.text
    assert int(booked.json()["id"]) > 10_000_000
    assert one.get("appointments", booked.json()["id"]) is not None
    assert zero.get("appointments", booked.json()["id"]) is None
    foreign = {"doctor": "/api/doctors/101", "office": "/api/offices/201", "duration": 30}
    refused = http.post(
        f"{url}/api/appointments",
        headers=headers,
        json={**foreign, "scheduled_time": "2024-01-10T17:30:00"},
    )
    assert refused.status_code == 400 and "doctor" in refused.json()


def test_the_authorization_request_picks_the_practice(
    http: requests.Session, two_practices: SandboxServer
) -> None:
    zero = authorization_code_token(http, two_practices)
    assert two_practices.state.oauth.practice_of(zero["access_token"]) == 0
    one = authorization_code_token(http, two_practices, practice=1)
    assert two_practices.state.oauth.practice_of(one["access_token"]) == 1
    for unknown in ("2", "-1", "one"):
        redirect = authorize_redirect(http, two_practices, unknown)
        assert redirect.status_code == 302
        query = redirect_query(redirect)
        assert query["error"] == ["invalid_request"] and "code" not in query
        assert query["state"] == ["xyz"]


def test_each_practice_refresh_chain_rotates_on_its_own(
    http: requests.Session, two_practices: SandboxServer
) -> None:
    oauth = two_practices.state.oauth
    started = fresh_refresh_token(two_practices, practice=1)
    rotated = refresh(http, two_practices, started).json()
    assert oauth.practice_of(rotated["access_token"]) == 1
    again = refresh(http, two_practices, rotated["refresh_token"]).json()
    assert oauth.practice_of(again["access_token"]) == 1
    assert refresh(http, two_practices, started).json()["error"] == "invalid_grant"
    # Practice 0's chains, the initial one included, are untouched by practice 1's.
    initial = refresh(http, two_practices, two_practices.initial_refresh_token)
    assert initial.status_code == 200
    assert oauth.practice_of(initial.json()["access_token"]) == 0
    assert refresh(http, two_practices, again["refresh_token"]).status_code == 200

    state = OAuthState(SandboxConfig(practices=2))
    code = state.authorize(state.client_id, REDIRECT_URI, practice=1)
    grant = state.exchange_code(code, REDIRECT_URI)
    assert grant.practice == 1 and "practice" not in grant.as_json()
    assert state.refresh(grant.refresh_token).practice == 1
    assert state.refresh(state.initial_refresh_token).practice == 0
    assert state.use_access_token(grant.access_token) == 1


def test_admin_payments_name_their_practice(
    http: requests.Session, two_practices: SandboxServer
) -> None:
    line = two_practices.state.practices[1].transactions[0]
    post = f"{two_practices.url}/_sandbox/post-payment"
    paid = http.post(post, json={"transaction_id": line["id"], "pt_paid": "0.01", "practice": 1})
    assert paid.status_code == 200 and paid.json()["id"] == line["id"]
    # Practice 0, the default, has no such line item; practice 2 does not exist.
    for elsewhere in ({}, {"practice": 2}):
        missing = http.post(post, json={"transaction_id": line["id"], **elsewhere})
        assert missing.status_code == 404


def test_one_hourly_budget_for_every_practice(http: requests.Session) -> None:
    config = replace(SHORT, practices=2, requests_per_hour=4)
    with SandboxServer(config) as server:
        tokens = [bearer(http, server, practice=index) for index in (0, 1, 0, 1, 1)]
        codes = [http.get(f"{server.url}/api/doctors", headers=h).status_code for h in tokens]
        assert codes == [200, 200, 200, 200, 429]
        assert server.state.stats.by_practice == {0: 2, 1: 3}  # the refused one too


def test_the_hours_of_the_budget_and_the_counts_are_the_sandbox_clocks(
    http: requests.Session,
) -> None:
    """A simulation's hour passes when its clock moves, however little real time went by."""
    morning = datetime(2024, 1, 5, 4, 30)
    config = replace(SHORT, practices=2, requests_per_hour=2, clock=morning)
    with SandboxServer(config) as server:
        tokens = [bearer(http, server, practice=index) for index in (0, 1)]

        def codes() -> list[int]:
            url = f"{server.url}/api/doctors"
            return [http.get(url, headers=headers).status_code for headers in tokens]

        assert codes() == [200, 200] and codes() == [429, 429]
        server.state.clock.advance(timedelta(hours=1))
        assert codes() == [200, 200]
        arrivals = [moment for moment, path, _ in server.state.stats.snapshot()["arrivals"]]
        assert arrivals[-1] - arrivals[0] == 3600  # on the clock, to the second
        assert server.state.stats.max_in_window(3599) == 4


def test_stats_count_requests_by_practice(
    http: requests.Session, two_practices: SandboxServer
) -> None:
    stats, url = two_practices.state.stats, two_practices.url
    zero, one = bearer(http, two_practices), bearer(http, two_practices, practice=1)
    stats.reset()
    for headers in (zero, one, zero, zero, one, {}):
        http.get(f"{url}/api/offices", headers=headers)
    two_practices.state.faults.add(path_prefix="/api/offices", status=503)
    assert http.get(f"{url}/api/offices", headers=one).status_code == 503  # counted too
    assert stats.by_practice == {0: 3, 1: 3}
    served = http.get(f"{url}/_sandbox/stats").json()
    assert served == stats.snapshot()
    assert served["by_practice"] == {"0": 3, "1": 3} and served["api_requests"] == 7
    assert served["by_status"] == {"200": 5, "401": 1, "503": 1}
    stats.reset()
    assert stats.by_practice == {} and stats.snapshot()["by_practice"] == {}


def test_the_number_of_practices_is_a_setting() -> None:
    assert config_from_args(parse_args(["--practices", "3"])).practices == 3
    assert config_from_args(parse_args([])).practices == 1 == DEFAULTS.practices
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parse_args(["--practices", bad])
    with pytest.raises(ValueError, match="practices"):
        SandboxConfig(practices=0)
