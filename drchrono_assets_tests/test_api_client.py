"""The API resource against the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from drchrono_assets.api import ReminderConflictError
from drchrono_assets.api.client import MAX_REFRESHES_PER_REQUEST
from drchrono_assets.assets import resource_assets
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import (
    ApiRequestError,
    ClientRejectedError,
    ConfigurationError,
    MalformedPageError,
    TokenRejectedError,
)
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sandbox import SandboxConfig, SandboxServer
from drchrono_assets_tests import assets_support
from drchrono_assets_tests.conftest import api_client_process, api_for, subprocess_env


def _ids(records) -> list:
    return sorted(record["id"] for record in records)


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


def test_401_in_the_middle_of_pagination_refreshes_once_and_continues(
    quiet_sandbox, sandbox_env
) -> None:
    api = api_for(sandbox_env, page_size=50)
    api.client.current_user()
    quiet_sandbox.state.stats.reset()
    quiet_sandbox.state.faults.add(path_prefix="/api/patients", times=1, skip=2, status=401)
    records = api.client.list_records("/api/patients")
    assert _ids(records) == _ids(quiet_sandbox.state.practice.patients)
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_grants"] == 1
    assert stats["refresh_token_reuse"] == 0


def test_revoked_access_token_is_refreshed(quiet_sandbox, api) -> None:
    api.client.current_user()
    quiet_sandbox.state.oauth.revoke_access_tokens()
    assert api.client.current_user()["username"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429},
        {"status": 429, "retry_after": 0},
        {"status": 500},
        {"status": 502},
        {"status": 503},
        {"invalid_json": True},
    ],
)
def test_transient_failures_are_retried(quiet_sandbox, api, fault) -> None:
    quiet_sandbox.state.faults.add(path_prefix="/api/doctors", times=2, **fault)
    assert _ids(api.client.list_records("/api/doctors")) == _ids(
        quiet_sandbox.state.practice.doctors
    )
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/doctors"] == 3


def test_timeouts_are_retried(quiet_sandbox, sandbox_env) -> None:
    api = api_for(sandbox_env, timeout_seconds=0.5)
    api.client.current_user()
    quiet_sandbox.state.faults.add(path_prefix="/api/offices", times=1, delay_seconds=2.0)
    assert _ids(api.client.list_records("/api/offices")) == _ids(
        quiet_sandbox.state.practice.offices
    )


def test_exhausted_retries_name_the_endpoint_not_the_token(quiet_sandbox, sandbox_env) -> None:
    api = api_for(sandbox_env, max_attempts=3)
    quiet_sandbox.state.faults.add(path_prefix="/api/users", times=3, status=503)
    with pytest.raises(ApiRequestError) as raised:
        api.client.list_records("/api/users")
    assert str(raised.value) == "GET /api/users failed after 3 attempts: HTTP 503"
    tokens = Path(sandbox_env["DRCHRONO_TOKEN_STORE"]).read_text()
    for secret in json.loads(tokens).values():
        if isinstance(secret, str) and len(secret) > 12:
            assert secret not in str(raised.value)


def test_malformed_page_is_a_clear_error(quiet_sandbox, api) -> None:
    quiet_sandbox.state.faults.add(path_prefix="/api/offices", times=1, malformed_page=True)
    with pytest.raises(MalformedPageError, match=r"GET /api/offices: page 1 has no 'results'"):
        api.client.list_records("/api/offices")


def test_missing_credentials_name_the_variables(sandbox_env) -> None:
    api = DrchronoApiResource(base_url=sandbox_env["DRCHRONO_BASE_URL"])
    with pytest.raises(ConfigurationError, match="DRCHRONO_CLIENT_ID and DRCHRONO_CLIENT_SECRET"):
        api.client.current_user()


def test_missing_refresh_token_says_how_to_connect(sandbox_env) -> None:
    api = api_for(sandbox_env, refresh_token=None)
    with pytest.raises(ConfigurationError, match="DRCHRONO_REFRESH_TOKEN"):
        api.client.current_user()


def test_rejected_refresh_token_is_a_clear_error_without_the_token(sandbox_env) -> None:
    api = api_for(sandbox_env, refresh_token="not-a-real-refresh-token")
    with pytest.raises(TokenRejectedError) as raised:
        api.client.current_user()
    assert str(raised.value) == (
        "drchrono's token endpoint refused the refresh_token grant (HTTP 400, invalid_grant): "
        "the refresh token is spent or revoked: re-authorize with "
        "`python -m drchrono_assets.auth login` or set a new DRCHRONO_REFRESH_TOKEN"
    )
    assert not isinstance(raised.value, ClientRejectedError)


def test_a_spent_refresh_token_is_reported_as_spent(sandbox_env, tmp_path) -> None:
    """Another token store spent it first: drchrono's answer is invalid_grant."""
    api_for(sandbox_env).client.current_user()  # spends DRCHRONO_REFRESH_TOKEN
    elsewhere = api_for(sandbox_env, token_store=str(tmp_path / "other" / "tokens.json"))
    with pytest.raises(TokenRejectedError, match=r"\(HTTP 400, invalid_grant\): the refresh "):
        elsewhere.client.current_user()


def test_a_wrong_client_secret_is_named_and_the_refresh_token_kept(
    quiet_sandbox, sandbox_env
) -> None:
    """invalid_client: the id/secret pair is wrong, the account needs no re-authorization."""
    wrong = "WRONG-CLIENT-SECRET"
    quiet_sandbox.state.stats.reset()  # the fixture's authorization-code grant
    with pytest.raises(ClientRejectedError) as raised:
        api_for(sandbox_env, client_secret=wrong).client.current_user()
    message = str(raised.value)
    assert message == (
        "drchrono rejected DRCHRONO_CLIENT_ID/DRCHRONO_CLIENT_SECRET (HTTP 401, invalid_client "
        "from its token endpoint, refreshing the access token): copy both again from the API "
        "application's page in drchrono (Account > API); no re-authorization is needed"
    )
    for secret in (wrong, quiet_sandbox.client_secret, sandbox_env["DRCHRONO_REFRESH_TOKEN"]):
        assert secret not in message
    # Not retried: asking again with the same pair gets the same answer.
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/o/token/"] == 1
    # The refresh token was not spent: with the right secret the same one connects.
    assert api_for(sandbox_env).client.current_user()["username"]
    assert quiet_sandbox.state.stats.snapshot()["refresh_token_reuse"] == 0


def test_a_wrong_client_id_is_named_too(sandbox_env) -> None:
    with pytest.raises(ClientRejectedError, match="DRCHRONO_CLIENT_ID/DRCHRONO_CLIENT_SECRET"):
        api_for(sandbox_env, client_id="not-the-client-id").client.current_user()


def test_api_version_header_is_sent(sandbox_env, monkeypatch) -> None:
    sent: list[dict] = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        sent.append(kwargs.get("headers") or {})
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    api_for(sandbox_env, api_version="2014_08").client.current_user()
    assert sent[-1]["X-DRC-API-Version"] == "2014_08"


# -- refresh-token rotation across processes ---------------------------------------------


def test_rotated_refresh_token_is_persisted_for_the_next_process(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    first = api_client_process(env)
    assert first.wait(60) == 0, first.stderr.read().decode()
    # The first process spent DRCHRONO_REFRESH_TOKEN; a second must use the rotated one.
    quiet_sandbox.state.oauth.revoke_access_tokens()
    second = api_client_process(env)
    assert second.wait(60) == 0, second.stderr.read().decode()
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_grants"] == 2
    assert stats["refresh_token_reuse"] == 0


def test_concurrent_processes_spend_each_refresh_token_once(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    processes = [api_client_process(env) for _ in range(4)]
    for process in processes:
        assert process.wait(60) == 0, process.stderr.read().decode()
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_grants"] == 1  # one refreshed, the others read its tokens
    assert stats["refresh_token_reuse"] == 0


def test_token_store_inside_the_data_root_is_refused(sandbox_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DRCHRONO_DATA_ROOT", str(tmp_path))
    api = api_for(sandbox_env, token_store=str(tmp_path / "tokens.json"))
    with pytest.raises(ConfigurationError, match="inside the data root"):
        api.client.current_user()


# -- write calls ------------------------------------------------------------------------


def test_current_user_follows_the_redirect(quiet_sandbox, api) -> None:
    user = api.client.current_user()
    assert user["id"] == quiet_sandbox.state.practice.users[0]["id"]


def test_write_calls(sandbox_env) -> None:
    from drchrono_assets.sandbox import SandboxServer

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
        with pytest.raises(ApiRequestError, match="HTTP 400"):
            api.client.apply_reminder_profile(profile, "no-such-appointment")


def test_resource_repr_shows_no_secret() -> None:
    api = DrchronoApiResource(client_id="id", client_secret="SECRET-1", refresh_token="SECRET-2")
    assert "SECRET" not in repr(api) and "SECRET" not in str(api)


def test_retry_after_is_honoured_and_backoff_is_bounded_without_it() -> None:
    import tenacity

    from drchrono_assets.api.answers import TransientFailure, retry_after_seconds
    from drchrono_assets.api.retries import backoff

    api = DrchronoApiResource(backoff_initial_seconds=1, backoff_max_seconds=8)

    def wait_after(failure: Exception, attempt: int) -> float:
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        state.set_exception((type(failure), failure, None))
        return backoff(api.client.config, state)

    assert wait_after(TransientFailure("HTTP 429", retry_after=42), 1) == 42
    assert 0 < wait_after(TransientFailure("HTTP 429"), 1) <= 2
    assert wait_after(TransientFailure("HTTP 503"), 10) <= 8
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after_seconds("garbage") is None


# -- answers lost in transit ---------------------------------------------------------------


@pytest.fixture
def faults(quiet_sandbox):
    """The shared sandbox's faults, disarmed after the test: leftovers would hit other tests."""
    yield quiet_sandbox.state.faults
    quiet_sandbox.state.faults.clear()


@pytest.mark.parametrize(
    "fault",
    [
        {"cut_body": True},
        {"drop_connection": True},
        {"invalid_json": True},
        {"status": 502},
        {"status": 503},
    ],
    ids=["cut_body", "drop_connection", "invalid_json", "html_502", "html_503"],
)
def test_lost_or_broken_answers_to_a_read_are_retried_and_the_list_is_complete(
    quiet_sandbox, faults, sandbox_env, fault
) -> None:
    api = api_for(sandbox_env, page_size=50)
    patients = quiet_sandbox.state.practice.patients
    faults.add(path_prefix="/api/patients", times=2, skip=1, **fault)
    assert _ids(api.client.list_records("/api/patients")) == _ids(patients)
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/patients"] == (
        math.ceil(len(patients) / 50) + 2
    )


@pytest.mark.parametrize(
    "fault", [{"cut_body": True}, {"drop_connection": True}], ids=["cut_body", "drop_connection"]
)
def test_lost_answer_from_the_token_endpoint_is_retried_spending_the_refresh_token_once(
    quiet_sandbox, faults, api, fault
) -> None:
    quiet_sandbox.state.stats.reset()  # the fixture's authorization-code grant
    faults.add(path_prefix="/o/token/", times=1, **fault)
    assert api.client.current_user()["username"]
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["by_path"]["/o/token/"] == 2
    assert stats["refresh_grants"] == 1
    assert stats["refresh_token_reuse"] == 0


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


# -- 401 after a refresh -----------------------------------------------------------------


def test_401_on_the_refreshed_token_too_refreshes_again_and_succeeds(
    quiet_sandbox, faults, sandbox_env
) -> None:
    api = api_for(sandbox_env)
    api.client.current_user()
    quiet_sandbox.state.stats.reset()
    faults.add(path_prefix="/api/offices", times=2, status=401)
    assert _ids(api.client.list_records("/api/offices")) == _ids(
        quiet_sandbox.state.practice.offices
    )
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["by_path"]["/api/offices"] == 3
    assert stats["refresh_grants"] == 2
    assert stats["refresh_token_reuse"] == 0


def test_tokens_refused_through_every_retry_are_a_rejection_after_bounded_refreshes(
    quiet_sandbox, faults, sandbox_env
) -> None:
    api = api_for(sandbox_env, max_attempts=3)
    api.client.current_user()
    quiet_sandbox.state.stats.reset()
    faults.add(path_prefix="/api/offices", times=1000, status=401)
    with pytest.raises(TokenRejectedError) as raised:
        api.client.list_records("/api/offices")
    message = str(raised.value)
    assert message.startswith("GET /api/offices: drchrono refused (HTTP 401) every access token")
    stats = quiet_sandbox.state.stats.snapshot()
    # Each refresh spends a refresh token: bounded per attempt, and attempts are bounded.
    assert stats["refresh_grants"] == 3 * MAX_REFRESHES_PER_REQUEST
    assert stats["by_path"]["/api/offices"] == 3 * (MAX_REFRESHES_PER_REQUEST + 1)
    stored = json.loads(Path(sandbox_env["DRCHRONO_TOKEN_STORE"]).read_text())
    for secret in (stored["access_token"], stored["refresh_token"]):
        assert secret not in message


def test_parallel_queries_survive_access_tokens_that_expire_after_three_uses(
    sandbox_env, tmp_path
) -> None:
    """Threads of one step race to refresh: a token a sibling used up is no rejection."""
    window = DayWindow(dt.date(2024, 3, 4), dt.date(2024, 3, 17))
    transactions = next(a for a in resource_assets if a.key.path == ["transactions"])
    with SandboxServer(
        SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31), access_token_max_uses=3)
    ) as own:
        for round_ in range(3):  # a race: one lucky run proves little
            own.state.stats.reset()
            root = tmp_path / f"data-{round_}"
            resources = {
                "drchrono": api_for(
                    {**sandbox_env, **own.env()}, page_size=20, max_parallel_requests=4
                ),
                "parquet_io_manager": HiveParquetIOManager(data_root=str(root)),
            }
            first, last = window.first.isoformat(), window.last.isoformat()
            assert assets_support.materialize(resources, first, last, assets=[transactions]).success
            for day in window.partition_keys:
                assets_support.assert_partition_matches(
                    assets_support.read_partition(root, "transactions", day),
                    assets_support.SPECS["transactions"],
                    assets_support.served(own, "transactions", day),
                )
            stats = own.state.stats.snapshot()
            assert stats["by_status"].get("401", 0) > 0  # tokens did run out mid-step
            assert stats["refresh_token_reuse"] == 0


_PAGING_SCRIPT = (
    "from drchrono_assets.resources import DrchronoApiResource as R; "
    "r = R.from_env(); print(sum(1 for _ in r.client.iter_pages('/api/patients')))"
)


def test_two_processes_sharing_tokens_that_expire_after_seven_uses(sandbox_env, tmp_path) -> None:
    with SandboxServer(
        SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 8), access_token_max_uses=7)
    ) as own:
        env = subprocess_env({**sandbox_env, **own.env(), "DRCHRONO_PAGE_SIZE": "15"}, tmp_path)
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _PAGING_SCRIPT],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        pages = math.ceil(len(own.state.practice.patients) / 15)
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
            assert int(out) == pages
        stats = own.state.stats.snapshot()
        assert stats["by_status"].get("401", 0) > 0
        assert stats["refresh_token_reuse"] == 0


# -- the token lock ------------------------------------------------------------------------


def test_the_token_lock_is_held_for_one_token_request_taken_after_its_budget_slot(
    quiet_sandbox, faults, sandbox_env, monkeypatch
) -> None:
    """Waiting for the budget or backing off while holding the token lock would stall every
    other process of the practice; one short attempt per hold, retries outside it."""
    from drchrono_assets.api.rate_budget import RequestBudget
    from drchrono_assets.api.shared_documents import FileDocument

    token_path = Path(sandbox_env["DRCHRONO_TOKEN_STORE"])
    events: list[str] = []
    update, acquire, send = FileDocument.update, RequestBudget.acquire, requests.Session.request

    def traced_update(self, change):
        if self.path != token_path:
            return update(self, change)

        def traced(value):
            events.append("lock")
            try:
                return change(value)
            finally:
                events.append("unlock")

        return update(self, traced)

    def traced_acquire(self):
        events.append("slot")
        return acquire(self)

    def traced_send(self, method, url, **kwargs):
        events.append(f"{method} {urlsplit(url).path}")
        return send(self, method, url, **kwargs)

    monkeypatch.setattr(FileDocument, "update", traced_update)
    monkeypatch.setattr(RequestBudget, "acquire", traced_acquire)
    monkeypatch.setattr(requests.Session, "request", traced_send)
    faults.add(path_prefix="/o/token/", times=2, status=503)
    api = api_for(sandbox_env, backoff_initial_seconds=0.1, backoff_max_seconds=0.1)
    assert api.client.current_user()["username"]
    assert events[:12] == ["slot", "lock", "POST /o/token/", "unlock"] * 3
    assert quiet_sandbox.state.stats.snapshot()["refresh_token_reuse"] == 0
