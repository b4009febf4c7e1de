"""Writes to the sandbox: appointments, documents and reminder profiles."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import requests

from drchrono_assets_tests.support.sandbox import (
    fetch_all,
    get_json,
)
from drchrono_sandbox import SandboxServer

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
