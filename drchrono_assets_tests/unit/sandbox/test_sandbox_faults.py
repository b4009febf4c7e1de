"""Faults the sandbox injects on request, its statistics, its hourly budget and latency."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from drchrono_assets_tests.support.sandbox import (
    authorization_code_token,
    get_json,
    refresh,
)
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.faults import (
    FaultInjector,
)

START, END = DEFAULTS.start, DEFAULTS.end


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
    assert stats["faulted"] == 1  # the armed 429; the 404 is the API's own answer
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
        assert stats["faulted"] == 5  # a delay alone is no fault; the last two were answered
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
