"""OAuth: the bearer auth on its own, then credentials, refreshes and refresh-token rotation
against the sandbox over real HTTP, across threads (across processes:
integration/test_tokens_across_processes.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from drchrono_assets.api.answers import Answer, TransientFailure
from drchrono_assets.api.oauth_auth import MAX_REFRESHES_PER_REQUEST, OAuthBearer
from drchrono_assets.api.transport import Call
from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import ClientRejectedError, ConfigurationError, TokenRejectedError
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.assets import (
    SPECS,
    assert_partition_matches,
    materialize,
    read_partition,
    served,
)
from drchrono_assets_tests.support.definitions import resource_assets
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxConfig, SandboxServer

CALL = Call("GET", "https://drchrono.com/api/doctors", "/api/doctors", auth=True, kwargs={})


def _ids(records) -> list:
    return sorted(record["id"] for record in records)


# -- the bearer auth, without HTTP ---------------------------------------------------------


class _Tokens:
    """A token manager's stand-in: ``token-1``, then a new token for each refresh."""

    def __init__(self) -> None:
        self.current = "token-1"
        self.rejected: list[str | None] = []

    def access_token(self) -> str:
        return self.current

    def refresh(self, rejected: str | None) -> str:
        self.rejected.append(rejected)
        self.current = f"token-{len(self.rejected) + 1}"
        return self.current


class _Transport:
    """Prepares each request with its auth, as ``requests`` does, and answers 401 to the
    first ``refusals`` of them."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.signed: list[str] = []

    def send(self, call: Call, auth: OAuthBearer) -> Answer:
        prepared = requests.Request(call.method, call.url, auth=auth).prepare()
        self.signed.append(prepared.headers["Authorization"])
        return Answer(401 if len(self.signed) <= self.refusals else 200, {}, b"")


def test_the_bearer_auth_signs_any_requests_request_with_the_current_token() -> None:
    bearer = OAuthBearer(_Tokens())
    prepared = requests.Request("GET", "https://drchrono.com/api/doctors", auth=bearer).prepare()
    assert prepared.headers["Authorization"] == "Bearer token-1"


def test_a_refused_token_is_refreshed_naming_it_and_the_request_sent_again() -> None:
    tokens, transport = _Tokens(), _Transport(refusals=2)
    answer = OAuthBearer(tokens).send(transport, CALL)
    assert answer.status == 200
    assert tokens.rejected == ["token-1", "token-2"]
    assert transport.signed == ["Bearer token-1", "Bearer token-2", "Bearer token-3"]


def test_refreshes_per_send_are_bounded_then_a_transient_refusal() -> None:
    tokens, transport = _Tokens(), _Transport(refusals=1000)
    with pytest.raises(TransientFailure) as raised:
        OAuthBearer(tokens).send(transport, CALL)
    assert raised.value.token_refused
    assert len(tokens.rejected) == MAX_REFRESHES_PER_REQUEST
    assert len(transport.signed) == MAX_REFRESHES_PER_REQUEST + 1


# -- refreshes -----------------------------------------------------------------------------


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


# -- credentials ---------------------------------------------------------------------------


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
        "`drchrono-assets auth login` or set a new DRCHRONO_REFRESH_TOKEN"
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


# -- access tokens that run out mid-run ----------------------------------------------------


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
            assert materialize(resources, first, last, assets=[transactions]).success
            for day in window.partition_keys:
                assert_partition_matches(
                    read_partition(root, "transactions", day),
                    SPECS["transactions"],
                    served(own, "transactions", day),
                )
            stats = own.state.stats.snapshot()
            assert stats["by_status"].get("401", 0) > 0  # tokens did run out mid-step
            assert stats["refresh_token_reuse"] == 0
