"""Tests of the bundled drchrono sandbox API server, over real HTTP."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from starlette.datastructures import QueryParams

from drchrono_assets.catalog import RESOURCES as CATALOG
from drchrono_assets_tests.conftest import authorization_code_token
from drchrono_sandbox import SandboxServer, SandboxState, filters
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.charges import MONEY_FIELDS, is_consistent
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.faults import (
    Fault,
    FaultInjector,
    FaultRates,
    RandomFaults,
    RequestStats,
)
from drchrono_sandbox.generate.base import ref
from drchrono_sandbox.generate.size import PracticeSize
from drchrono_sandbox.oauth_server import OAuthState
from drchrono_sandbox.practice import Practice
from drchrono_sandbox.resource_table import BY_NAME

START, END = DEFAULTS.start, DEFAULTS.end
MONEY = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def _disarm(sandbox: SandboxServer) -> Iterator[None]:
    yield
    sandbox.state.faults.clear()
    sandbox.state.latency_ms = 0
    sandbox.state.chaos = None


@pytest.fixture()
def headers(http: requests.Session, sandbox: SandboxServer) -> dict[str, str]:
    token = authorization_code_token(http, sandbox)
    return {"Authorization": f"Bearer {token['access_token']}", "X-DRC-API-Version": "v2014_08"}


def get_json(
    http: requests.Session, url: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = http.get(url, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def fetch_all(
    http: requests.Session, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every result of a list, following `next` until it is null."""
    results: list[dict[str, Any]] = []
    page = get_json(http, url, headers, **params)
    while True:
        results += page["results"]
        if page["next"] is None:
            return results
        page = get_json(http, page["next"], headers)


@contextmanager
def uvicorn_errors() -> Iterator[list[str]]:
    """Errors uvicorn logs meanwhile (attach after the server starts: its logging
    configuration drops earlier handlers)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def refresh(http: requests.Session, sandbox: SandboxServer, token: str) -> requests.Response:
    return http.post(
        f"{sandbox.url}/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
    )


# OAuth -------------------------------------------------------------------------------


def test_refresh_tokens_rotate_and_reuse_is_rejected_and_counted(
    http: requests.Session, sandbox: SandboxServer
) -> None:
    before = sandbox.state.stats.snapshot()
    first = refresh(http, sandbox, sandbox.initial_refresh_token)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 172800
    assert body["refresh_token"] != sandbox.initial_refresh_token and body["scope"]
    assert first.headers["Cache-Control"] == "no-store"

    reused = refresh(http, sandbox, sandbox.initial_refresh_token)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    second = refresh(http, sandbox, body["refresh_token"])
    assert second.status_code == 200
    unknown = refresh(http, sandbox, "never-issued")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"

    after = sandbox.state.stats.snapshot()
    assert after["refresh_grants"] - before["refresh_grants"] == 2
    assert after["refresh_token_reuse"] - before["refresh_token_reuse"] == 1

    bad_client = http.post(
        f"{sandbox.url}/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second.json()["refresh_token"],
            "client_id": sandbox.client_id,
            "client_secret": "wrong",
        },
    )
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    access = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert http.get(f"{sandbox.url}/api/doctors", headers=access).status_code == 200


def test_expired_access_token_is_rejected() -> None:
    with SandboxServer(
        SandboxConfig(seed=1, start=START, end=START + timedelta(days=6), access_token_ttl=1)
    ) as sb:
        token = refresh(requests.Session(), sb, sb.initial_refresh_token).json()
        assert token["expires_in"] == 1
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert requests.get(f"{sb.url}/api/doctors", headers=auth).status_code == 200
        time.sleep(1.1)
        expired = requests.get(f"{sb.url}/api/doctors", headers=auth)
        assert expired.status_code == 401
        assert "detail" in expired.json()


def test_access_token_expires_after_max_uses() -> None:
    with SandboxServer(
        SandboxConfig(seed=1, start=START, end=START + timedelta(days=6), access_token_max_uses=2)
    ) as sb:
        http = requests.Session()
        token = refresh(http, sb, sb.initial_refresh_token).json()
        assert token["expires_in"] == 172800  # the use limit is not announced
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        codes = [http.get(f"{sb.url}/api/doctors", headers=auth) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 401]
        assert codes[-1].json() == {"detail": "Token expired."}
        assert "WWW-Authenticate" in codes[-1].headers
        fresh = refresh(http, sb, token["refresh_token"]).json()["access_token"]
        again = http.get(f"{sb.url}/api/doctors", headers={"Authorization": f"Bearer {fresh}"})
        assert again.status_code == 200

    oauth = OAuthState(SandboxConfig(access_token_max_uses=1))
    access = oauth.refresh(oauth.initial_refresh_token).access_token
    assert oauth.check_access_token("bogus") == "Invalid token."  # rejections use nothing
    assert oauth.check_access_token(access) is None
    assert oauth.check_access_token(access) == "Token expired."
    with pytest.raises(ValueError):
        OAuthState(SandboxConfig(access_token_max_uses=0))


def test_authorization_code_flow(http: requests.Session, sandbox: SandboxServer) -> None:
    params = {
        "response_type": "code",
        "client_id": sandbox.client_id,
        "redirect_uri": "http://127.0.0.1:9/cb?keep=1",
        "scope": "user:read",
        "state": "s-123",
    }
    redirect = http.get(f"{sandbox.url}/o/authorize/", params=params, allow_redirects=False)
    assert redirect.status_code == 302
    location = urlparse(redirect.headers["Location"])
    query = parse_qs(location.query)
    assert location.path == "/cb" and query["state"] == ["s-123"] and query["keep"] == ["1"]
    exchange = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": params["redirect_uri"],
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }
    wrong_redirect = http.post(
        f"{sandbox.url}/o/token/", data={**exchange, "redirect_uri": "http://127.0.0.1:9/other"}
    )
    assert wrong_redirect.status_code == 400  # and the code is spent by the attempt
    redirect = http.get(f"{sandbox.url}/o/authorize/", params=params, allow_redirects=False)
    exchange["code"] = parse_qs(urlparse(redirect.headers["Location"]).query)["code"][0]
    token = http.post(f"{sandbox.url}/o/token/", data=exchange)
    assert token.status_code == 200
    assert token.json()["scope"] == "user:read" and token.json()["refresh_token"]
    again = http.post(f"{sandbox.url}/o/token/", data=exchange)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    unknown = http.get(
        f"{sandbox.url}/o/authorize/", params={**params, "client_id": "nope"}, allow_redirects=False
    )
    assert unknown.status_code == 400

    sandbox.state.oauth.code_ttl = -1  # every new code is born expired
    try:
        redirect = http.get(f"{sandbox.url}/o/authorize/", params=params, allow_redirects=False)
        exchange["code"] = parse_qs(urlparse(redirect.headers["Location"]).query)["code"][0]
        expired = http.post(f"{sandbox.url}/o/token/", data=exchange)
        assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"
    finally:
        sandbox.state.oauth.code_ttl = 60.0


def test_api_requires_a_live_bearer_token(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    assert http.get(f"{sandbox.url}/api/doctors").status_code == 401
    bogus = http.get(f"{sandbox.url}/api/doctors", headers={"Authorization": "Bearer bogus"})
    assert bogus.status_code == 401 and bogus.json() == {"detail": "Invalid token."}
    assert http.get(f"{sandbox.url}/api/doctors", headers=headers).status_code == 200

    revoked = http.post(f"{sandbox.url}/_sandbox/revoke-access-tokens")
    assert revoked.status_code == 200 and revoked.json()["revoked"] >= 1
    assert http.get(f"{sandbox.url}/api/doctors", headers=headers).status_code == 401

    fresh = authorization_code_token(http, sandbox)["access_token"]
    sandbox.state.oauth.revoke_access_tokens()
    gone = http.get(f"{sandbox.url}/api/doctors", headers={"Authorization": f"Bearer {fresh}"})
    assert gone.status_code == 401


# Lists, pagination and details --------------------------------------------------------


def test_pagination_absolute_cursor_urls_and_page_size_cap(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    first = get_json(http, f"{sandbox.url}/api/patients", headers, gender="Female")
    assert len(first["results"]) == 25 and first["previous"] is None
    next_url = urlparse(first["next"])
    assert first["next"].startswith(sandbox.url + "/api/patients?")
    next_query = parse_qs(next_url.query)
    assert next_query["gender"] == ["Female"] and next_query["cursor"]
    second = get_json(http, first["next"], headers)
    assert second["previous"] is not None and second["previous"].startswith(sandbox.url)
    assert get_json(http, second["previous"], headers)["results"] == first["results"]

    everyone = fetch_all(http, f"{sandbox.url}/api/patients", headers, page_size=40)
    ids = [patient["id"] for patient in everyone]
    assert len(ids) == 300 == len(set(ids)) and ids == sorted(ids)
    assert ids == [p["id"] for p in sandbox.state.practice.patients]

    capped = get_json(http, f"{sandbox.url}/api/patients", headers, page_size=1000)
    assert len(capped["results"]) == 250 and capped["count"] == 300
    last = get_json(http, capped["next"], headers)
    assert len(last["results"]) == 50 and last["next"] is None

    bad_cursor = http.get(f"{sandbox.url}/api/patients?cursor=!!", headers=headers)
    assert bad_cursor.status_code == 400 and "cursor" in bad_cursor.json()


def test_every_resource_lists_with_documented_fields(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    expected = {
        "appointment_profiles": {"color", "duration", "id", "name", "online_scheduling", "reason",
                                 "sort_order"},
        "appointment_templates": {"duration", "exam_room", "id", "office", "profile",
                                  "scheduled_time", "week_day"},
        "doctors": {"cell_phone", "country", "email", "first_name", "group_npi_number",
                    "home_phone", "id", "job_title", "last_name", "npi_number", "office_phone",
                    "specialty", "suffix", "website"},
        "documents": {"date", "description", "doctor", "document", "id", "metatags", "patient"},
        "offices": {"address", "city", "country", "end_time", "exam_rooms", "id", "name",
                    "online_scheduling", "online_timeslots", "phone_number", "start_time",
                    "state", "zip_code"},
        "reminder_profiles": {"id", "doctor", "name", "reminders"},
        "users": {"doctor", "is_doctor", "is_staff", "username", "id"},
        "patients": {"address", "cell_phone", "chart_id", "city", "date_of_birth", "doctor",
                     "email", "emergency_contact_name", "emergency_contact_phone",
                     "emergency_contact_relation", "employer", "employer_address",
                     "employer_city", "employer_state", "employer_zip_code", "ethnicity",
                     "first_name", "gender", "home_phone", "id", "last_name", "middle_name",
                     "preferred_language", "primary_care_physician", "race",
                     "social_security_number", "state", "zip_code",
                     "primary_insurance_company", "primary_insurance_id_number",
                     "primary_insurance_group_number", "primary_insurance_claim_office_number",
                     "primary_insurance_payer_id", "primary_insurance_plan_name",
                     "primary_insurance_plan_type"},
    }  # fmt: skip
    for resource, fields in expected.items():
        page = get_json(http, f"{sandbox.url}/api/{resource}", headers)
        assert page["results"], resource
        assert fields <= set(page["results"][0]), (resource, fields - set(page["results"][0]))
    assert len(get_json(http, f"{sandbox.url}/api/doctors", headers)["results"]) == 3
    offices = get_json(http, f"{sandbox.url}/api/offices", headers)["results"]
    assert [room["index"] for room in offices[0]["exam_rooms"]] == [1, 2, 3]
    assert {office["end_time"] for office in offices} == {"18:00", "24:00"}
    users = get_json(http, f"{sandbox.url}/api/users", headers)["results"]
    assert sum(u["is_doctor"] for u in users) == 3 and sum(u["is_staff"] for u in users) == 2
    patient = get_json(http, f"{sandbox.url}/api/patients", headers)["results"][0]
    assert patient["social_security_number"].startswith("000-")
    assert patient["doctor"].startswith("/api/doctors/")


def test_the_sandbox_serves_the_catalogs_resources_at_the_catalogs_paths(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    """The sandbox keeps a resource table of its own rather than the catalog's, which a wrong
    catalog entry would then agree with: the two must name the same resources, and the
    sandbox must serve each at the catalog's path."""
    assert sorted(BY_NAME) == sorted(spec.name for spec in CATALOG)
    for spec in CATALOG:
        listed = http.get(sandbox.url + spec.path, headers=headers)
        # 400: a list that wants a query (appointments: a day or `since`), served all the same.
        assert listed.status_code in (200, 400), (spec.path, listed.text)
        assert listed.status_code == 200 or "required" in listed.text, (spec.path, listed.text)
    assert http.get(f"{sandbox.url}/api/nothing", headers=headers).status_code == 404


def test_details_redirect_and_not_found(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    practice = sandbox.state.practice
    recurring = next(a for a in practice.appointments if "_" in a["id"])
    assert re.fullmatch(r"\d{4}_\d{8}", recurring["id"])
    detail = get_json(http, f"{sandbox.url}/api/appointments/{recurring['id']}", headers)
    assert detail == recurring
    assert get_json(http, f"{sandbox.url}/api/doctors/101", headers)["last_name"] == "Testwell"
    line = practice.transactions[0]
    assert get_json(http, f"{sandbox.url}/api/transactions/{line['id']}", headers) == line
    for path in ("/api/appointments/999999999", "/api/patients/abc", "/api/nothing/1"):
        missing = http.get(sandbox.url + path, headers=headers)
        assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}

    redirect = http.get(f"{sandbox.url}/api/users/current", headers=headers, allow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == f"/api/users/{practice.account_user_id}"
    me = http.get(f"{sandbox.url}/api/users/current", headers=headers)
    assert me.status_code == 200 and me.json()["doctor"] == "/api/doctors/101"
    assert me.json()["is_doctor"] is True


# Filters ------------------------------------------------------------------------------


def test_appointment_filters(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/api/appointments"
    on_day = fetch_all(http, url, headers, date="2024-03-05", page_size=250)
    assert on_day and {a["scheduled_time"][:10] for a in on_day} == {"2024-03-05"}
    assert sum(a["patient"] is None for a in on_day) == 3  # one lunch break per doctor
    assert all(a["reason"] == "Lunch" and a["status"] == "" for a in on_day if not a["patient"])
    order = [(a["scheduled_time"], a["id"]) for a in on_day]
    assert order == sorted(order)
    assert get_json(http, url, headers, date="2024-03-09")["count"] == 0  # a Saturday

    week = fetch_all(http, url, headers, date_range="2024-03-04/2024-03-08", page_size=250)
    days = {a["scheduled_time"][:10] for a in week}
    assert days == {f"2024-03-0{d}" for d in range(4, 9)}  # both ends included
    by_doctor = fetch_all(http, url, headers, date_range="2024-03-04/2024-03-08", doctor=102)
    assert by_doctor and {a["doctor"] for a in by_doctor} == {"/api/doctors/102"}
    by_office = fetch_all(http, url, headers, date_range="2024-03-04/2024-03-08", office=202)
    assert by_office and {a["office"] for a in by_office} == {"/api/offices/202"}
    patient = next(a["patient"] for a in week if a["patient"])
    patient_id = int(patient.rsplit("/", 1)[1])
    mine = fetch_all(http, url, headers, date_range="2024-01-01/2024-06-30", patient=patient_id)
    expected = [a for a in sandbox.state.practice.appointments if a["patient"] == patient]
    assert [a["id"] for a in mine] == [a["id"] for a in expected]

    since = datetime(2024, 6, 20, 12, 0)
    updated = sandbox.state.practice.updated_at_map("appointments")
    recent = fetch_all(http, url, headers, since=since.isoformat(), page_size=250)
    assert {a["id"] for a in recent} == {k for k, v in updated.items() if v >= since}
    assert all("updated" not in key for a in recent for key in a)  # hidden, never served

    for params, field in (
        ({}, "non_field_errors"),
        ({"doctor": 101}, "non_field_errors"),
        ({"date_range": "2024-01-01/2024-07-30"}, "date_range"),
        ({"date_range": "2024-01-01"}, "date_range"),
        ({"date_range": "2024-02-01/2024-01-01"}, "date_range"),
        ({"date": "03/05/2024"}, "date"),
        ({"since": "yesterday"}, "since"),
        ({"date": "2024-03-05", "doctor": "x"}, "doctor"),
    ):
        bad = http.get(url, headers=headers, params=params)
        assert bad.status_code == 400, params
        assert isinstance(bad.json()[field], list), (params, bad.json())
    widest = http.get(url, headers=headers, params={"date_range": "2024-01-01/2024-07-09"})
    assert widest.status_code == 200  # 190 days between the dates is still allowed


def test_template_document_patient_and_transaction_filters(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    practice = sandbox.state.practice
    templates = f"{sandbox.url}/api/appointment_templates"
    assert get_json(http, templates, headers, available="2024-03-05")["count"] == 6
    main = get_json(http, templates, headers, office=201)["results"]
    assert main and {t["office"] for t in main} == {"/api/offices/201"}
    mondays = get_json(http, templates, headers, week_day=0)["results"]
    assert mondays and {t["week_day"] for t in mondays} == {0}
    assert http.get(templates, headers=headers, params={"week_day": 9}).status_code == 400
    assert http.get(templates, headers=headers, params={"available": "x"}).status_code == 400

    documents = f"{sandbox.url}/api/documents"
    docs = fetch_all(http, documents, headers, doctor=103, page_size=250)
    assert docs and {d["doctor"] for d in docs} == {"/api/doctors/103"}
    patient_id = int(docs[0]["patient"].rsplit("/", 1)[1])
    theirs = fetch_all(http, documents, headers, patient=patient_id)
    assert theirs and {d["patient"] for d in theirs} == {docs[0]["patient"]}
    since = datetime(2024, 6, 1)
    recent = fetch_all(http, documents, headers, since="2024-06-01T00:00:00", page_size=250)
    hidden = practice.updated_at_map("documents")
    assert {d["id"] for d in recent} == {k for k, v in hidden.items() if v >= since}
    assert all(isinstance(d["metatags"], list) for d in recent)

    patients = f"{sandbox.url}/api/patients"
    sample = practice.patients[0]
    found = fetch_all(http, patients, headers, search=sample["last_name"].upper())
    assert sample["id"] in {p["id"] for p in found}
    term = sample["last_name"].lower()
    assert all(term in f"{p['first_name']} {p['last_name']} {p['email']}".lower() for p in found)
    both = fetch_all(
        http, patients, headers, search=[sample["first_name"].lower(), sample["last_name"]]
    )
    assert sample["id"] in {p["id"] for p in both} and len(both) <= len(found)
    by_email = fetch_all(http, patients, headers, search=sample["email"] or sample["last_name"])
    assert sample["id"] in {p["id"] for p in by_email}
    born = fetch_all(http, patients, headers, date_of_birth=sample["date_of_birth"])
    assert {p["date_of_birth"] for p in born} == {sample["date_of_birth"]}
    others = fetch_all(http, patients, headers, gender="Other")
    assert others and {p["gender"] for p in others} == {"Other"}
    panel = fetch_all(http, patients, headers, doctor=102, page_size=250)
    assert panel and {p["doctor"] for p in panel} == {"/api/doctors/102"}
    cutoff = datetime(2024, 5, 1)
    updated = fetch_all(http, patients, headers, since="2024-05-01", page_size=250)
    hidden = practice.updated_at_map("patients")
    assert {p["id"] for p in updated} == {k for k, v in hidden.items() if v >= cutoff}
    assert http.get(patients, headers=headers, params={"gender": "F"}).status_code == 400
    bad_dob = http.get(patients, headers=headers, params={"date_of_birth": "1990-13-01"})
    assert bad_dob.status_code == 400 and "date_of_birth" in bad_dob.json()

    transactions = f"{sandbox.url}/api/transactions"
    missing = http.get(transactions, headers=headers)
    assert missing.status_code == 400
    assert missing.json() == {"doctor": ["This field is required."]}
    lines = fetch_all(http, transactions, headers, doctor=101, since="2024-06-15", page_size=250)
    hidden = practice.updated_at_map("transactions")
    expected = {
        t["id"]
        for t in practice.transactions
        if t["doctor"] == 101 and hidden[t["id"]] >= datetime(2024, 6, 15)
    }
    assert lines and {t["id"] for t in lines} == expected
    assert {type(t["doctor"]) for t in lines} == {int} and {t["doctor"] for t in lines} == {101}


# Writes -------------------------------------------------------------------------------


def test_create_appointment(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/api/appointments"
    created = http.post(
        url,
        headers=headers,
        data={
            "doctor": "/api/doctors/101",
            "office": "/api/offices/201",
            "patient": "/api/patients/10001",
            "scheduled_time": "2024-07-02T16:30:00",
            "profile": "/api/appointment_profiles/403",
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert isinstance(body["id"], str) and body["id"].isdigit()
    assert body["duration"] == 45 and body["color"] == "#F5A623"  # profile defaults
    assert body["reason"] == "New patient visit" and body["reminders"] == []
    listed = get_json(http, url, headers, date="2024-07-02")["results"]
    assert [a["id"] for a in listed] == [body["id"]]
    assert get_json(http, f"{url}/{body['id']}", headers) == body

    as_json = http.post(
        url,
        headers=headers,
        json={
            "doctor": "/api/doctors/102",
            "office": "/api/offices/201",
            "scheduled_time": "2024-07-03T12:00:00",
            "duration": 30,
            "reason": "Admin time",
        },
    )
    assert as_json.status_code == 201 and as_json.json()["patient"] is None
    assert int(as_json.json()["id"]) > int(body["id"])

    invalid = http.post(
        url,
        headers=headers,
        data={"doctor": "/api/doctors/999", "office": "201", "scheduled_time": "soon"},
    )
    assert invalid.status_code == 400
    errors = invalid.json()
    assert set(errors) == {"doctor", "office", "scheduled_time"}
    assert all(isinstance(messages, list) for messages in errors.values())
    no_duration = http.post(
        url,
        headers=headers,
        data={
            "doctor": "/api/doctors/101",
            "office": "/api/offices/201",
            "scheduled_time": "2024-07-02T10:00:00",
        },
    )
    assert no_duration.status_code == 400 and "duration" in no_duration.json()
    not_allowed = http.post(f"{sandbox.url}/api/patients", headers=headers, data={"x": 1})
    assert not_allowed.status_code == 405


def test_upload_document(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/api/documents"
    data = {
        "doctor": "/api/doctors/101",
        "patient": "/api/patients/10001",
        "description": "Scanned referral",
        "date": "2024-06-28",
        "metatags": json.dumps(["referral", "scan"]),
    }
    upload = http.post(
        url,
        headers=headers,
        data=data,
        files={"document": ("referral.pdf", b"%PDF-1.4 test", "application/pdf")},
    )
    assert upload.status_code == 201, upload.text
    body = upload.json()
    assert isinstance(body["id"], int) and body["metatags"] == ["referral", "scan"]
    assert body["date"] == "2024-06-28" and body["doctor"] == "/api/doctors/101"
    assert body["document"].startswith(sandbox.url + "/") and body["document"].endswith(".pdf")
    assert http.get(body["document"]).content == b"%PDF-1.4 test"
    mine = fetch_all(http, url, headers, patient=10001)
    assert body["id"] in {d["id"] for d in mine}

    no_file = http.post(url, headers=headers, data=data)
    assert no_file.status_code == 400 and "document" in no_file.json()
    bad_tags = http.post(
        url,
        headers=headers,
        data={**data, "metatags": "not json"},
        files={"document": ("a.txt", b"x", "text/plain")},
    )
    assert bad_tags.status_code == 400 and "metatags" in bad_tags.json()


def test_apply_reminder_profile(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    practice = sandbox.state.practice
    target = next(
        a
        for a in practice.appointments
        if a["patient"] and not a["reminders"] and "_" not in a["id"]
    )
    url = f"{sandbox.url}/api/reminder_profiles/601/apply_to_appointment"
    path = f"/api/appointments/{target['id']}"
    applied = http.post(url, headers=headers, data={"appointment": path})
    assert applied.status_code == 204 and applied.content == b""
    reminders = get_json(http, sandbox.url + path, headers)["reminders"]
    assert [r["type"] for r in reminders] == ["email", "sms"]
    start = datetime.fromisoformat(target["scheduled_time"])
    assert reminders[0]["scheduled_time"] == (start - timedelta(days=1)).isoformat()
    assert all(isinstance(r["id"], int) for r in reminders)

    conflict = http.post(url, headers=headers, data={"appointment": path})
    assert conflict.status_code == 409
    assert http.post(url, headers=headers, data={}).status_code == 400
    invalid = http.post(url, headers=headers, data={"appointment": "/api/appointments/0"})
    assert invalid.status_code == 400 and "appointment" in invalid.json()
    unknown = f"{sandbox.url}/api/reminder_profiles/999/apply_to_appointment"
    assert http.post(unknown, headers=headers, data={"appointment": path}).status_code == 404


# Faults, statistics, budget, latency ----------------------------------------------------


def test_status_faults_and_retry_after(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/api/doctors"
    faults = sandbox.state.faults
    faults.add(path_prefix="/api/doctors", times=2, status=429)
    faults.add(path_prefix="/api/doctors", times=1, status=429, retry_after=7)
    faults.add(path_prefix="/api/doctors", times=1, status=503)
    first, second, third, fourth, fifth = (http.get(url, headers=headers) for _ in range(5))
    assert first.status_code == second.status_code == 429
    assert "Retry-After" not in first.headers
    assert third.status_code == 429 and third.headers["Retry-After"] == "7"
    assert fourth.status_code == 503
    assert fifth.status_code == 200

    faults.add(path_prefix="/api/patients", times=1, status=503)
    assert http.get(f"{sandbox.url}/api/offices", headers=headers).status_code == 200
    assert http.get(f"{sandbox.url}/api/patients", headers=headers).status_code == 503


def test_body_faults_and_slow_answers(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    faults = sandbox.state.faults
    faults.add(path_prefix="/api/doctors", times=1, invalid_json=True)
    broken = http.get(f"{sandbox.url}/api/doctors", headers=headers)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()

    faults.add(path_prefix="/api/offices", times=1, malformed_page=True)
    malformed = http.get(f"{sandbox.url}/api/offices", headers=headers)
    assert malformed.status_code == 200 and "results" not in malformed.json()

    faults.add(path_prefix="/api/transactions", times=1, delay_seconds=1.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{sandbox.url}/api/transactions?doctor=101", headers=headers, timeout=0.3)
    on_time = http.get(f"{sandbox.url}/api/transactions?doctor=101", headers=headers, timeout=5)
    assert on_time.status_code == 200


def test_skip_fault_hits_mid_pagination(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    sandbox.state.faults.add(path_prefix="/api/", times=1, skip=3, status=401)
    page = get_json(http, f"{sandbox.url}/api/patients", headers, page_size=10)
    for _ in range(2):
        page = get_json(http, page["next"], headers)
    fourth = http.get(page["next"], headers=headers)
    assert fourth.status_code == 401 and "WWW-Authenticate" in fourth.headers
    assert http.get(page["next"], headers=headers).status_code == 200  # consumed


def test_stats_and_admin_routes(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    reset = http.post(f"{sandbox.url}/_sandbox/stats/reset")
    assert reset.status_code == 200 and reset.json()["requests"] == 0
    armed = http.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"path_prefix": "/api/appointments", "times": 1, "status": 429},
    )
    assert armed.status_code == 201 and armed.json()["fault"]["status"] == 429
    listed = http.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]
    assert [f["path_prefix"] for f in listed] == ["/api/appointments"]
    bad = http.post(f"{sandbox.url}/_sandbox/faults", json={"path_prefix": "/", "oops": 1})
    assert bad.status_code == 400
    assert http.post(f"{sandbox.url}/_sandbox/faults", json={"times": 1}).status_code == 400

    url = f"{sandbox.url}/api/appointments"
    assert http.get(url, headers=headers, params={"date": "2024-01-02"}).status_code == 429
    assert http.get(url, headers=headers, params={"date": "2024-01-02"}).status_code == 200
    assert http.get(f"{sandbox.url}/api/doctors/0", headers=headers).status_code == 404
    token = authorization_code_token(http, sandbox)
    assert refresh(http, sandbox, token["refresh_token"]).status_code == 200

    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats == sandbox.state.stats.snapshot()
    assert stats["requests"] == 6 and stats["api_requests"] == 3
    assert stats["by_path"] == {
        "/api/appointments": 2,
        "/api/doctors/0": 1,
        "/o/authorize/": 1,
        "/o/token/": 2,
    }
    assert stats["by_status"] == {"429": 1, "200": 3, "404": 1, "302": 1}
    assert stats["refresh_grants"] == 1 and stats["refresh_token_reuse"] == 0
    sandbox.state.stats.reset()
    assert sandbox.state.stats.snapshot()["requests"] == 0


def test_hourly_budget_answers_bare_429() -> None:
    with SandboxServer(SandboxConfig(seed=2, start=START, end=START, requests_per_hour=3)) as sb:
        token = refresh(requests.Session(), sb, sb.initial_refresh_token).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        codes = [requests.get(f"{sb.url}/api/doctors", headers=auth) for _ in range(4)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert "Retry-After" not in codes[-1].headers
        assert not any(h.lower().startswith("x-ratelimit") for h in codes[-1].headers)
        assert sb.state.stats.snapshot()["by_status"]["429"] == 1


def test_latency_overlaps_concurrent_requests(
    sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    sandbox.state.latency_ms = 300
    statuses: list[int] = []

    def call() -> None:
        statuses.append(requests.get(f"{sandbox.url}/api/doctors", headers=headers).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert 0.3 <= elapsed < 1.0  # four sleeps of 0.3 s, served side by side


@pytest.mark.parametrize("implementation", ["h11", "httptools"])
def test_cut_body_and_drop_connection(implementation: str) -> None:
    with (
        SandboxServer(SandboxConfig(seed=1, start=START, end=START, http=implementation)) as sb,
        uvicorn_errors() as errors,
    ):
        http = requests.Session()
        token = refresh(http, sb, sb.initial_refresh_token).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        url = f"{sb.url}/api/doctors"
        sb.state.stats.reset()

        sb.state.faults.add(path_prefix="/api/doctors", cut_body=True)
        cut = http.get(url, headers=auth, stream=True)
        assert cut.status_code == 200 and cut.headers["Content-Type"] == "application/json"
        promised = int(cut.headers["Content-Length"])
        received = b""
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in cut.iter_content(16):
                received += chunk
        assert 0 < len(received) < promised
        sb.state.faults.add(path_prefix="/api/doctors", cut_body=True)
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            http.get(url, headers=auth)

        sb.state.faults.add(path_prefix="/api/doctors", drop_connection=True, delay_seconds=0.1)
        with pytest.raises(requests.exceptions.ConnectionError):
            http.get(url, headers=auth)
        assert http.get(url, headers=auth).status_code == 200

        # A faulted token request never reaches the route: the refresh token survives.
        for effect in ("cut_body", "drop_connection"):
            sb.state.faults.add(path_prefix="/o/token/", **{effect: True})
            with pytest.raises(requests.exceptions.RequestException):
                refresh(http, sb, token["refresh_token"])
        assert refresh(http, sb, token["refresh_token"]).status_code == 200

        stats = sb.state.stats.snapshot()
        assert [arrival[1:] for arrival in stats["arrivals"]] == [
            ["/api/doctors", 200],  # cut: the status line went out
            ["/api/doctors", 200],
            ["/api/doctors", None],  # dropped: no answer at all
            ["/api/doctors", 200],
            ["/o/token/", 200],
            ["/o/token/", None],
            ["/o/token/", 200],
        ]
        assert stats["by_status"] == {"200": 5} and stats["refresh_grants"] == 1
    # uvicorn neither tried a 500 nor complained about the unanswered requests.
    assert errors == []


def test_new_fault_effects_are_exclusive(http: requests.Session, sandbox: SandboxServer) -> None:
    faults = FaultInjector()
    for effects in (
        {"cut_body": True, "drop_connection": True},
        {"cut_body": True, "status": 502},
        {"drop_connection": True, "invalid_json": True},
        {"cut_body": True, "malformed_page": True},
    ):
        with pytest.raises(ValueError, match="exclusive"):
            faults.add(**effects)
    assert faults.add(drop_connection=True).drop_connection
    url = f"{sandbox.url}/_sandbox/faults"
    both = http.post(url, json={"cut_body": True, "drop_connection": True})
    assert both.status_code == 400 and "exclusive" in both.json()["detail"]
    armed = http.post(url, json={"path_prefix": "/api/nothing", "cut_body": True})
    assert armed.status_code == 201 and armed.json()["fault"]["cut_body"] is True


def test_proxy_statuses_answer_html(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/api/doctors"
    sandbox.state.faults.add(path_prefix="/api/doctors", status=502)
    sandbox.state.faults.add(path_prefix="/api/doctors", status=503, retry_after=2)
    sandbox.state.faults.add(path_prefix="/api/doctors", status=504)
    sandbox.state.faults.add(path_prefix="/api/doctors", status=500)
    for status, title in (
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ):
        answer = http.get(url, headers=headers)
        assert answer.status_code == status
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.text == f"<html><body><h1>{status} {title}</h1></body></html>"
        assert answer.headers.get("Retry-After") == ("2" if status == 503 else None)
    server_error = http.get(url, headers=headers)
    assert server_error.status_code == 500
    assert server_error.json() == {"detail": "Sandbox fault: HTTP 500."}


#: With seed 1, the first 40 draws hold every kind of fault.
CHAOS = FaultRates(
    seed=1,
    server_error=0.2,
    drop_connection=0.1,
    cut_body=0.1,
    invalid_json=0.1,
    throttle_burst=0.05,
)


def outcome(fault: Fault | None) -> int | str:
    """What a client sees of a fault: a status, or how the answer broke."""
    if fault is None:
        return 200
    if fault.drop_connection:
        return "drop"
    if fault.cut_body:
        return "cut"
    if fault.invalid_json:
        return "invalid_json"
    assert fault.status is not None
    return fault.status


def observe(http: requests.Session, url: str, headers: dict[str, str]) -> int | str:
    """What a client sees of one request."""
    try:
        answer = http.get(url, headers=headers)
    except requests.exceptions.ChunkedEncodingError:
        return "cut"
    except requests.exceptions.ConnectionError:
        return "drop"
    if answer.status_code == 429:
        assert "Retry-After" not in answer.headers  # a bare 429, as the budget answers
    if answer.status_code in (502, 503):
        assert answer.headers["Content-Type"].startswith("text/html")
    if answer.status_code in (200, 500):
        try:
            answer.json()
        except ValueError:
            return "invalid_json"
    return answer.status_code


def test_random_faults_are_seeded_and_reproducible() -> None:
    draws = RandomFaults(CHAOS)
    predicted = [outcome(draws.draw("/api/doctors")) for _ in range(40)]
    assert set(predicted) == {200, 429, 500, 502, 503, "cut", "drop", "invalid_json"}
    again = RandomFaults(CHAOS)
    assert [outcome(again.draw("/api/doctors")) for _ in range(40)] == predicted
    # Each request key has its own sequence: other keys in between change nothing (bursts
    # of 429s, which hit every request, aside).
    no_bursts = dataclasses.replace(CHAOS, throttle_burst=0.0)
    alone = RandomFaults(no_bursts)
    expected = [outcome(alone.draw("/api/doctors")) for _ in range(40)]
    interleaved = RandomFaults(no_bursts)
    seen_interleaved = []
    for _ in range(40):
        interleaved.draw("/api/patients", "/api/patients?page_size=5")
        seen_interleaved.append(outcome(interleaved.draw("/api/doctors")))
    assert seen_interleaved == expected
    # Paths outside `paths` draw nothing and do not shift the sequence.
    mixed = RandomFaults(CHAOS)
    seen = []
    for _ in range(40):
        assert mixed.draw("/o/token/") is None
        seen.append(outcome(mixed.draw("/api/doctors")))
    assert seen == predicted
    with_token = RandomFaults(FaultRates(seed=1, cut_body=1.0, paths=("/api/", "/o/token/")))
    assert with_token.draw("/o/token/") == Fault("/o/token/", cut_body=True)
    assert with_token.draw("/o/authorize/") is None

    bursts = RandomFaults(FaultRates(seed=5, throttle_burst=0.3, throttle_burst_length=4))
    statuses = "".join("T" if bursts.draw("/api/") else "." for _ in range(300))
    runs = [len(run) for run in re.findall("T+", statuses)]
    assert runs and all(length % 4 == 0 for length in runs)


def test_fault_rates_are_validated() -> None:
    for bad in (
        {"seed": 1, "server_error": 0.6, "cut_body": 0.5},
        {"seed": 1, "drop_connection": -0.1},
        {"seed": 1, "invalid_json": "0.1"},
        {"seed": 1, "throttle_burst_length": 0},
        {"seed": 1, "paths": []},
        {"seed": "1"},
        {"server_error": 0.1},
        {"seed": 1, "oops": 0.1},
        [1],
    ):
        with pytest.raises(ValueError):
            FaultRates.from_json(bad)
    sums_to_one = {"seed": 1, "server_error": 0.1, "cut_body": 0.2, "invalid_json": 0.7}
    assert FaultRates.from_json(sums_to_one).invalid_json == 0.7
    rates = FaultRates.from_json({"seed": 3, "paths": ["/api/", "/o/token/"]})
    assert rates.paths == ("/api/", "/o/token/")
    assert FaultRates.from_json(rates.as_json()) == rates


def test_chaos_over_http_matches_the_seeded_draws() -> None:
    with SandboxServer(SandboxConfig(seed=1, start=START, end=START, chaos=CHAOS)) as sb:
        http = requests.Session()
        # /o/ is outside the default `paths`: the token request is never faulted.
        token = refresh(http, sb, sb.initial_refresh_token).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{sb.url}/api/doctors"
        draws = RandomFaults(CHAOS)
        predicted = [outcome(draws.draw("/api/doctors")) for _ in range(30)]
        assert [observe(http, url, auth) for _ in range(20)] == predicted[:20]
        # An armed fault takes precedence and leaves the random sequence where it was.
        sb.state.faults.add(path_prefix="/api/doctors", status=418)
        assert http.get(url, headers=auth).status_code == 418
        assert [observe(http, url, auth) for _ in range(10)] == predicted[20:]
        statuses = [arrival[2] for arrival in sb.state.stats.snapshot()["arrivals"][1:]]
        assert statuses.count(None) == predicted.count("drop")

        sb.state.chaos = None
        assert {observe(http, url, auth) for _ in range(5)} == {200}


def test_chaos_admin_route(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    url = f"{sandbox.url}/_sandbox/chaos"
    assert http.get(url).json() == {"chaos": None}
    body = {"seed": 1, "cut_body": 0.5, "drop_connection": 0.5, "paths": ["/api/doctors"]}
    on = http.post(url, json=body)
    assert on.status_code == 200
    assert on.json()["chaos"] == {
        "seed": 1,
        "server_error": 0.0,
        "drop_connection": 0.5,
        "cut_body": 0.5,
        "invalid_json": 0.0,
        "throttle_burst": 0.0,
        "throttle_burst_length": 3,
        "paths": ["/api/doctors"],
    }
    assert sandbox.state.chaos == FaultRates.from_json(body)
    assert http.get(url).json() == on.json()
    draws = RandomFaults(FaultRates.from_json(body))
    predicted = [outcome(draws.draw("/api/doctors")) for _ in range(6)]
    assert set(predicted) == {"cut", "drop"}
    assert [observe(http, f"{sandbox.url}/api/doctors", headers) for _ in range(6)] == predicted
    assert http.get(f"{sandbox.url}/api/offices", headers=headers).status_code == 200

    too_much = http.post(url, json={"seed": 1, "server_error": 0.7, "cut_body": 0.4})
    assert too_much.status_code == 400 and "more than 1" in too_much.json()["detail"]
    assert http.post(url, json={"seed": 1, "typo": 0.1}).status_code == 400
    assert http.post(url, data="not json").status_code == 400
    assert sandbox.state.chaos == FaultRates.from_json(body)  # a bad request changes nothing
    assert http.delete(url).status_code == 204
    assert http.get(url).json() == {"chaos": None} and sandbox.state.chaos is None


def test_arrivals_and_rolling_window(
    http: requests.Session, sandbox: SandboxServer, headers: dict[str, str]
) -> None:
    times = iter([0.0, 1.0, 2.0, 10.0, 10.2, 10.3, 10.5, 11.0])
    stats = RequestStats(clock=lambda: next(times))
    paths = ["/api/a", "/api/b", "/api/c", "/api/d", "/o/token/", "/o/token/", "/api/e", "/api/f"]
    for path in paths:
        stats.record_status(stats.record_request(path), 200)
    assert stats.snapshot()["arrivals"][:2] == [[0.0, "/api/a", 200], [1.0, "/api/b", 200]]
    assert stats.max_in_window(1.0) == 3  # 10.0, 10.5 and 11.0: both ends count
    assert stats.max_in_window(0.99) == 2
    assert stats.max_in_window(2.0) == 3 and stats.max_in_window(0) == 1
    assert stats.max_in_window(1.0, prefix="/") == 5
    assert stats.max_in_window(1.0, prefix="/o/") == 2
    assert stats.max_in_window(11.0) == 6
    stats.reset()
    assert stats.max_in_window(1.0) == 0 and stats.snapshot()["arrivals"] == []

    sandbox.state.stats.reset()
    before = time.monotonic()
    sandbox.state.faults.add(path_prefix="/api/offices", status=429)
    for path in ("/api/offices", "/api/offices", "/api/doctors/0"):
        http.get(sandbox.url + path, headers=headers)
    after = time.monotonic()
    served = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert served == sandbox.state.stats.snapshot()
    assert [a[1:] for a in served["arrivals"]] == [
        ["/api/offices", 429],
        ["/api/offices", 200],
        ["/api/doctors/0", 404],
    ]
    moments = [a[0] for a in served["arrivals"]]
    assert before <= moments[0] <= moments[1] <= moments[2] <= after
    assert sandbox.state.stats.max_in_window(after - before + 1) == 3


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


def test_cli_options_for_chaos_and_token_uses(capsys: pytest.CaptureFixture[str]) -> None:
    short = ["--end", "2024-01-05"]  # little data to generate
    chaos = '{"seed": 4, "cut_body": 0.25, "paths": ["/api/", "/o/token/"]}'
    args = parse_args([*short, "--chaos", chaos, "--access-token-max-uses", "5"])
    state = SandboxState(config_from_args(args))
    assert state.chaos == FaultRates(seed=4, cut_body=0.25, paths=("/api/", "/o/token/"))
    assert state.oauth.access_token_max_uses == 5
    defaults = SandboxState(config_from_args(parse_args(short)))
    assert defaults.chaos is None and defaults.oauth.access_token_max_uses is None
    with pytest.raises(SystemExit):
        parse_args(["--chaos", '{"seed": 4, "cut_body": 0.8, "drop_connection": 0.8}'])
    assert "more than 1" in capsys.readouterr().err


def test_cli_prints_exports_and_serves() -> None:
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    process = subprocess.Popen(
        [sys.executable, "-m", "drchrono_sandbox", "--port", "0", "--seed", "3",
         "--start", "2024-01-01", "--end", "2024-01-12", "--refresh-token", "cli-token",
         "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {
            "DRCHRONO_BASE_URL",
            "DRCHRONO_CLIENT_ID",
            "DRCHRONO_CLIENT_SECRET",
            "DRCHRONO_REFRESH_TOKEN",
        }
        assert exports["DRCHRONO_REFRESH_TOKEN"] == "cli-token"
        base = exports["DRCHRONO_BASE_URL"]
        token = requests.post(
            f"{base}/o/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "cli-token",
                "client_id": exports["DRCHRONO_CLIENT_ID"],
                "client_secret": exports["DRCHRONO_CLIENT_SECRET"],
            },
            timeout=5,
        )
        assert token.status_code == 200
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        doctors = requests.get(f"{base}/api/doctors", headers=auth, timeout=5)
        assert doctors.json()["count"] == 3
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
