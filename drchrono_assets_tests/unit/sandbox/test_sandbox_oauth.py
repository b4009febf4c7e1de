"""The sandbox's OAuth: the authorization-code flow, refresh-token rotation, and access tokens
that expire or run out of uses."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from drchrono_assets_tests.support.sandbox import (
    authorization_code_token,
    refresh,
)
from drchrono_sandbox import SandboxServer
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.oauth_server import OAuthState

START, END = DEFAULTS.start, DEFAULTS.end


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
