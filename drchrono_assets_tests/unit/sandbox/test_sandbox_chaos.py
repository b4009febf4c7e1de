"""Chaos: random faults drawn from a seed, the same in process and over HTTP, and the options
that arm them."""

from __future__ import annotations

import dataclasses
import re

import pytest
import requests

from drchrono_assets_tests.support.sandbox import (
    refresh,
)
from drchrono_sandbox import SandboxServer, SandboxState
from drchrono_sandbox.__main__ import config_from_args, parse_args
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.faults import (
    Fault,
    FaultRates,
    RandomFaults,
    RequestStats,
)

START, END = DEFAULTS.start, DEFAULTS.end


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
    before = sandbox.state.clock.timestamp()
    sandbox.state.faults.add(path_prefix="/api/offices", status=429)
    for path in ("/api/offices", "/api/offices", "/api/doctors/0"):
        http.get(sandbox.url + path, headers=headers)
    after = sandbox.state.clock.timestamp()
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
