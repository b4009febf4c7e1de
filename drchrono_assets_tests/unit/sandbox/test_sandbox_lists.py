"""The sandbox's lists: pagination, the fields and paths of every resource, details, and the
filters drchrono documents."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import requests

from drchrono_assets.catalog import RESOURCES as CATALOG
from drchrono_assets_tests.support.sandbox import (
    fetch_all,
    get_json,
)
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.resource_table import BY_NAME

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
