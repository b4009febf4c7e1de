"""The client's reads, pages and writes against the sandbox over real HTTP; the paginator on
its own. OAuth is in ``test_api_oauth``, retries in ``test_api_retries``."""

from __future__ import annotations

import datetime as dt
import io
import math

import pytest
import requests

from drchrono_assets.api import ReminderConflictError
from drchrono_assets.api.paging import NextLinkPaginator
from drchrono_assets.errors import ApiRequestError, MalformedPageError
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxConfig, SandboxServer

BASE_URL = "https://drchrono.com"


def _ids(records) -> list:
    return sorted(record["id"] for record in records)


# -- pages -------------------------------------------------------------------------------


def test_pagination_follows_next_across_many_pages(quiet_sandbox, sandbox_env) -> None:
    api = api_for(sandbox_env, page_size=7)
    patients = quiet_sandbox.state.practice.patients
    pages = list(api.client.iter_pages("/api/patients"))
    assert len(pages) == math.ceil(len(patients) / 7) > 10
    assert _ids(r for page in pages for r in page) == _ids(patients)
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/patients"] == len(pages)


def test_largest_page_is_asked_for(quiet_sandbox, api) -> None:
    pages = list(api.client.iter_pages("/api/patients"))
    assert [len(page) for page in pages[:-1]] == [250] * (len(pages) - 1)


def test_malformed_page_is_a_clear_error(quiet_sandbox, api) -> None:
    quiet_sandbox.state.faults.add(path_prefix="/api/offices", times=1, malformed_page=True)
    with pytest.raises(MalformedPageError, match=r"GET /api/offices: page 1 has no 'results'"):
        api.client.list_records("/api/offices")


def test_count_asks_for_one_record_and_reads_the_total(quiet_sandbox, api, monkeypatch) -> None:
    practice = quiet_sandbox.state.practice
    assert api.client.count("/api/patients") == len(practice.patients) > 1
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/patients"] == 1
    quiet_sandbox.state.faults.add(path_prefix="/api/patients", malformed_page=True)
    with pytest.raises(MalformedPageError, match=r"GET /api/patients: page 1 has no 'results'"):
        api.client.count("/api/patients")

    # A page without its total (a stand-in for the API's answer).
    monkeypatch.setattr(api.client, "_request", lambda *args, **kwargs: {"results": []})
    with pytest.raises(MalformedPageError, match=r"GET /api/patients: the page has no 'count'"):
        api.client.count("/api/patients")


def _paginator() -> NextLinkPaginator:
    return NextLinkPaginator("/api/doctors", f"{BASE_URL}/api/doctors", {"page_size": 2}, BASE_URL)


def test_the_paginator_asks_for_each_next_link_once_with_the_query_only_first() -> None:
    pages = _paginator()
    assert (pages.url, pages.params) == (f"{BASE_URL}/api/doctors", {"page_size": 2})
    second = f"{BASE_URL}/api/doctors?cursor=2"
    assert pages.page({"results": [{"id": 1}], "next": second}) == [{"id": 1}]
    assert (pages.has_next_page, pages.url, pages.params) == (True, second, None)
    assert pages.page({"results": [{"id": 2}], "next": None}) == [{"id": 2}]
    assert not pages.has_next_page


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"results": [{"id": 1}], "next": "https://elsewhere.example/api/doctors"}, "outside"),
        ({"results": [{"id": 1}], "next": f"{BASE_URL}/api/doctors"}, "repeats an earlier"),
        ({"results": [{"id": 1}], "next": 7}, "page 1 has a 'next' that is not a URL"),
        ({"results": [1]}, "page 1 has results that are not JSON objects"),
        ([], "page 1 has no 'results' list"),
    ],
    ids=["other_host", "loop", "next_not_a_url", "not_records", "not_a_page"],
)
def test_the_paginator_refuses_a_page_it_cannot_trust(body, problem) -> None:
    with pytest.raises(MalformedPageError, match=problem):
        _paginator().page(body)


# -- reads -------------------------------------------------------------------------------


def test_appointment_date_and_date_range_filters(quiet_sandbox, api) -> None:
    served = quiet_sandbox.state.practice.appointments
    day = [a for a in served if a["scheduled_time"].startswith("2024-03-05")]
    march = [a for a in served if a["scheduled_time"].startswith("2024-03")]
    assert day and march
    assert _ids(api.client.list_records("/api/appointments", {"date": "2024-03-05"})) == _ids(day)
    got = api.client.list_records("/api/appointments", {"date_range": "2024-03-01/2024-03-31"})
    assert _ids(got) == _ids(march)


def test_transactions_by_doctor_since_and_documents_since(quiet_sandbox, api) -> None:
    practice = quiet_sandbox.state.practice
    doctor = practice.doctors[0]["id"]
    since = "2024-05-01T00:00:00"
    transactions = api.client.list_records("/api/transactions", {"doctor": doctor, "since": since})
    assert transactions and {t["doctor"] for t in transactions} == {doctor}
    dated_after = {
        t["id"] for t in practice.transactions if t["doctor"] == doctor and t["date"] >= since
    }
    assert dated_after <= {t["id"] for t in transactions}  # the sweep's stated assumption
    documents = api.client.list_records("/api/documents", {"since": since})
    assert {d["id"] for d in practice.documents if d["date"] >= "2024-05-01"} <= {
        d["id"] for d in documents
    }
    assert len(documents) < len(practice.documents)


def test_too_wide_date_range_is_a_clear_error(api) -> None:
    with pytest.raises(
        ApiRequestError, match=r"GET /api/appointments answered HTTP 400.*date_range"
    ):
        api.client.list_records("/api/appointments", {"date_range": "2024-01-01/2024-12-31"})


def test_current_user_follows_the_redirect(quiet_sandbox, api) -> None:
    user = api.client.current_user()
    assert user["id"] == quiet_sandbox.state.practice.users[0]["id"]


def test_api_version_header_is_sent(sandbox_env, monkeypatch) -> None:
    sent: list[dict] = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        sent.append(kwargs.get("headers") or {})
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    api_for(sandbox_env, api_version="2014_08").client.current_user()
    assert sent[-1]["X-DRC-API-Version"] == "2014_08"


# -- writes ------------------------------------------------------------------------------


def test_write_calls(sandbox_env) -> None:
    with SandboxServer(SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 8))) as own:
        api = api_for({**sandbox_env, **own.env()})
        doctor = own.state.practice.doctors[0]["id"]
        office = own.state.practice.offices[0]["id"]
        patient = own.state.practice.patients[0]["id"]
        created = api.client.create_appointment(
            doctor=doctor,
            office=office,
            patient=patient,
            scheduled_time=dt.datetime(2024, 3, 6, 15, 0),
            duration=30,
            exam_room=1,
        )
        assert created["scheduled_time"] == "2024-03-06T15:00:00"
        listed = api.client.list_records("/api/appointments", {"date": "2024-03-06"})
        assert created["id"] in {a["id"] for a in listed}

        document = api.client.upload_document(
            doctor=doctor,
            patient=patient,
            description="Referral letter",
            date=dt.date(2024, 3, 6),
            document=io.BytesIO(b"%PDF-1.4 test"),
            filename="referral.pdf",
            metatags=["referral"],
        )
        assert document["metatags"] == ["referral"]

        profile = own.state.practice.reminder_profiles[0]["id"]
        api.client.apply_reminder_profile(profile, created["id"])
        with pytest.raises(ReminderConflictError, match="HTTP 409"):
            api.client.apply_reminder_profile(profile, created["id"])
        with pytest.raises(ApiRequestError, match="HTTP 400") as raised:
            api.client.apply_reminder_profile(profile, "no-such-appointment")
        assert not isinstance(raised.value, ReminderConflictError)


def test_write_whose_answer_is_cut_is_not_repeated(sandbox_env) -> None:
    with SandboxServer(SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 8))) as own:
        api = api_for({**sandbox_env, **own.env()})
        api.client.current_user()
        own.state.faults.add(path_prefix="/api/appointments", times=1, cut_body=True)
        with pytest.raises(ApiRequestError) as raised:
            api.client.create_appointment(
                doctor=own.state.practice.doctors[0]["id"],
                office=own.state.practice.offices[0]["id"],
                patient=own.state.practice.patients[0]["id"],
                scheduled_time=dt.datetime(2024, 3, 6, 15, 0),
                duration=30,
                exam_room=1,
            )
        assert str(raised.value).startswith("POST /api/appointments: the answer was cut short")
        assert "the write may have been applied, so it is not repeated" in str(raised.value)
        assert own.state.stats.snapshot()["by_path"]["/api/appointments"] == 1
