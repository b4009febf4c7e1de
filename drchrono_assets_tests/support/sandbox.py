"""A client's side of the sandbox API over HTTP: tokens through the OAuth flows, and lists
followed to their end."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from drchrono_sandbox import SandboxServer

REDIRECT_URI = "http://127.0.0.1:9/callback"


def authorize_redirect(http: Any, sandbox: SandboxServer, practice: int | str = 0) -> Any:
    """The sandbox's answer to an authorization request for ``practice`` (its index, or
    any value to try), not followed (``http``: requests or a Session)."""
    return http.get(
        f"{sandbox.url}/o/authorize/",
        params={
            "response_type": "code",
            "client_id": sandbox.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "patients calendar billing user",
            "state": "xyz",
            "practice": str(practice),
        },
        allow_redirects=False,
        timeout=10,
    )


def redirect_query(response: Any) -> dict[str, list[str]]:
    """The query parameters of a redirect's ``Location``."""
    return parse_qs(urlsplit(response.headers["Location"]).query)


def authorization_code_token(
    http: Any, sandbox: SandboxServer, practice: int = 0
) -> dict[str, Any]:
    """A token pair of ``practice`` (its index; default the first) through the
    authorization-code flow (``http``: requests or a Session)."""
    authorize = authorize_redirect(http, sandbox, practice)
    assert authorize.status_code == 302
    code = redirect_query(authorize)["code"][0]
    token = http.post(
        f"{sandbox.url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    return token.json()


def fresh_refresh_token(sandbox: SandboxServer, practice: int = 0) -> str:
    """A refresh token of its own (of ``practice``) for a test, so tests never share a
    rotation chain."""
    return authorization_code_token(requests, sandbox, practice)["refresh_token"]


def bearer(http: requests.Session, sandbox: SandboxServer, practice: int = 0) -> dict[str, str]:
    """The ``Authorization`` header of a new access token (of ``practice``)."""
    token = authorization_code_token(http, sandbox, practice)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def refresh(http: requests.Session, sandbox: SandboxServer, token: str) -> requests.Response:
    """The token endpoint's answer to a refresh grant of ``token``."""
    return http.post(
        f"{sandbox.url}/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
    )


def get_json(
    http: requests.Session, url: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    """The JSON body of a GET that must answer 200."""
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
