"""Which failed tries the client makes again, how long it waits, and how it gives up, token
requests included: the sandbox's injected faults over real HTTP. An API no connection reaches
is in ``test_unreachable_api``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import tenacity

from drchrono_assets.api.answers import TransientFailure, retry_after_seconds
from drchrono_assets.api.oauth_auth import MAX_REFRESHES_PER_REQUEST
from drchrono_assets.api.rate_budget import RequestBudget
from drchrono_assets.api.retries import backoff
from drchrono_assets.api.shared_documents import FileDocument
from drchrono_assets.errors import ApiRequestError, TokenRejectedError
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxServer


def _ids(records) -> list:
    return sorted(record["id"] for record in records)


@pytest.fixture
def faults(quiet_sandbox):
    """The shared sandbox's faults, disarmed after the test: leftovers would hit other tests."""
    yield quiet_sandbox.state.faults
    quiet_sandbox.state.faults.clear()


def connected_api(
    sandbox: SandboxServer, sandbox_env: dict[str, str], **options: Any
) -> DrchronoApiResource:
    """The API resource (``options`` set) once it holds a token, the sandbox's counts reset."""
    api = api_for(sandbox_env, **options)
    api.client.current_user()
    sandbox.state.stats.reset()
    return api


def assert_refresh_counts(
    sandbox: SandboxServer, path: str, requests_to_path: int, refresh_grants: int
) -> None:
    """The sandbox counted ``requests_to_path`` requests of ``path`` and ``refresh_grants``
    refresh grants, and no refresh token spent twice."""
    stats = sandbox.state.stats.snapshot()
    assert stats["by_path"][path] == requests_to_path
    assert stats["refresh_grants"] == refresh_grants
    assert stats["refresh_token_reuse"] == 0


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


def test_retry_after_is_honoured_and_backoff_is_bounded_without_it() -> None:
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
    assert_refresh_counts(quiet_sandbox, "/o/token/", 2, refresh_grants=1)


# -- 401 after a refresh: a few refreshes per try, then the backoff ---------------------------


def test_401_on_the_refreshed_token_too_refreshes_again_and_succeeds(
    quiet_sandbox, faults, sandbox_env
) -> None:
    api = connected_api(quiet_sandbox, sandbox_env)
    faults.add(path_prefix="/api/offices", times=2, status=401)
    assert _ids(api.client.list_records("/api/offices")) == _ids(
        quiet_sandbox.state.practice.offices
    )
    assert_refresh_counts(quiet_sandbox, "/api/offices", 3, refresh_grants=2)


def test_tokens_refused_through_every_retry_are_a_rejection_after_bounded_refreshes(
    quiet_sandbox, faults, sandbox_env
) -> None:
    api = connected_api(quiet_sandbox, sandbox_env, max_attempts=3)
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


# -- the token lock ------------------------------------------------------------------------


def test_the_token_lock_is_held_for_one_token_request_taken_after_its_budget_slot(
    quiet_sandbox, faults, sandbox_env, monkeypatch
) -> None:
    """Waiting for the budget or backing off while holding the token lock would stall every
    other process of the practice; one short attempt per hold, retries outside it. The read
    takes its own slot only once it holds a token."""
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
    assert events[12:14] == ["slot", "GET /api/users/current"]
    assert quiet_sandbox.state.stats.snapshot()["refresh_token_reuse"] == 0
