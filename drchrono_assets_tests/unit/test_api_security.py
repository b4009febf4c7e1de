"""Where credentials may go: redirects stay on the API's host, the API is reached over HTTPS
(loopback excepted), and database errors never print a statement's parameters."""

from __future__ import annotations

import ast
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from drchrono_assets.api import DrchronoClient
from drchrono_assets.api.paging import NextLinkPaginator
from drchrono_assets.errors import ApiRequestError, ApiUnreachableError, ConfigurationError
from drchrono_assets_tests.support.fake_api import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    LocalServer,
    client_for,
    elsewhere_answer,
    scripted_api,
)
from drchrono_assets_tests.support.paths import PACKAGE


def _full_text(error: BaseException) -> str:
    """What a step failure shows: the message and every chained cause."""
    return "".join(traceback.format_exception(error))


@pytest.fixture
def elsewhere() -> Iterator[LocalServer]:
    with LocalServer(elsewhere_answer) as server:
        yield server


RefusedRedirect = Callable[..., tuple[ApiRequestError, list[str]]]


@pytest.fixture
def refused_redirect(
    elsewhere: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> RefusedRedirect:
    """``refused_redirect(call, redirect_token=(status, path))`` (or ``redirect_read``): the
    error ``call(client)`` raises when the scripted API redirects to ``path`` on ``elsewhere``,
    and the paths the API received."""

    def refused(
        call: Callable[[DrchronoClient], object], **redirect: tuple[int, str]
    ) -> tuple[ApiRequestError, list[str]]:
        script = {name: (status, elsewhere.url + path) for name, (status, path) in redirect.items()}
        with LocalServer(scripted_api(**script)) as api:
            client = client_for(api.url, tmp_path, monkeypatch)
            with pytest.raises(ApiRequestError) as raised:
                call(client)
        return raised.value, [request.path for request in api.received]

    return refused


# -- redirects ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirected_token_request_is_not_sent_to_another_host(
    refused_redirect: RefusedRedirect, elsewhere: LocalServer, status: int
) -> None:
    """A 307/308 would resend the form, client secret and refresh token, to its target."""
    error, paths = refused_redirect(
        DrchronoClient.current_user, redirect_token=(status, "/o/token/")
    )
    assert elsewhere.received == []
    assert paths == ["/o/token/"]  # not retried
    message = str(error)
    assert message.startswith(f"POST /o/token/ answered HTTP {status}, a redirect to")
    assert elsewhere.url in message and "not followed" in message
    assert "DRCHRONO_BASE_URL" in message
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, "/o/token/?"):
        assert secret not in _full_text(error)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirected_read_is_not_followed_to_another_host(
    refused_redirect: RefusedRedirect, elsewhere: LocalServer, status: int
) -> None:
    """Followed, the request loses its bearer token and another host's page becomes data."""
    error, _ = refused_redirect(
        lambda client: client.list_records("/api/doctors"),
        redirect_read=(status, "/api/doctors?cursor=abc"),
    )
    assert elsewhere.received == []
    message = str(error)
    assert message.startswith(f"GET /api/doctors answered HTTP {status}, a redirect to")
    assert elsewhere.url in message and "cursor" not in message
    assert ACCESS_TOKEN not in _full_text(error)


def test_a_redirect_on_the_api_host_is_followed_with_the_bearer_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/api/users/current`` is documented as a redirect to the user's own record."""
    with LocalServer(scripted_api()) as api:
        client = client_for(api.url, tmp_path, monkeypatch)
        assert client.current_user() == {"id": 7, "username": "dr-who"}
        followed = api.received[-1]
    assert (followed.path, followed.headers["Authorization"]) == (
        "/api/users/7",
        f"Bearer {ACCESS_TOKEN}",
    )
    assert client.requests_used == 3  # the token, the redirect and the record: each counted


def test_a_next_link_to_the_same_host_with_its_default_port_is_followed() -> None:
    """``https://drchrono.com:443/...`` is drchrono.com: spelling the port changes nothing."""
    base_url = "https://drchrono.com"
    pages = NextLinkPaginator("/api/doctors", f"{base_url}/api/doctors", {}, base_url)
    pages.check_next("https://DRCHRONO.com:443/api/doctors?cursor=1")


# -- HTTPS ---------------------------------------------------------------------------------


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("a request was sent")


def _refused(*args: object, **kwargs: object) -> None:
    raise requests.ConnectionError("refused")


def _client_sending_to(
    send: Callable[..., None], base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DrchronoClient:
    """A client of ``base_url`` whose requests go to ``send`` instead of the network."""
    monkeypatch.setattr(requests.Session, "request", send)
    return client_for(base_url, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://drchrono.com",
        "http://10.0.0.5:8000",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
        "ftp://drchrono.com",
    ],
)
def test_a_base_url_without_https_is_refused_unless_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    client = _client_sending_to(_no_network, base_url, tmp_path, monkeypatch)
    with pytest.raises(ConfigurationError) as raised:
        client.current_user()
    message = str(raised.value)
    assert message.startswith("DRCHRONO_BASE_URL")
    assert "https://" in message and "loopback" in message
    assert CLIENT_SECRET not in message


@pytest.mark.parametrize(
    "base_url",
    [
        "https://drchrono.com",
        "http://127.0.0.1:8000",
        "http://127.8.9.10",
        "http://localhost:8000",
        "HTTP://LOCALHOST",
        "http://[::1]:8000",
    ],
)
def test_https_and_loopback_base_urls_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    with pytest.raises(ApiRequestError, match="connection failed"):
        _client_sending_to(_refused, base_url, tmp_path, monkeypatch).current_user()


def test_an_unreachable_api_is_named_by_its_origin_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user name, password, path or query in DRCHRONO_BASE_URL never reaches the message."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://user:SECRET-PASSWORD@127.0.0.1:{port}/SECRET-PATH?key=SECRET-QUERY"
    client = DrchronoClient(client_for(base_url, tmp_path, monkeypatch).config, connect_waits=())
    with pytest.raises(ApiUnreachableError) as raised:
        client.current_user()
    assert f"the drchrono API at http://127.0.0.1:{port} cannot be reached" in str(raised.value)
    full = _full_text(raised.value)
    for secret in ("SECRET", CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in full


# -- database errors -----------------------------------------------------------------------


def _engine_calls() -> list[tuple[str, ast.Call]]:
    makers = {"create_engine", "engine_from_config", "create_async_engine"}
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in makers:
                    calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", node))
    return calls


def test_every_engine_the_package_creates_hides_statement_parameters() -> None:
    """SQLAlchemy's errors otherwise quote a statement's parameters, tokens among them."""
    from drchrono_assets.api import shared_documents

    calls = _engine_calls()
    assert calls, "no create_engine call found: the scan is broken"
    for where, call in calls:
        hidden = [k for k in call.keywords if k.arg == "hide_parameters"]
        assert hidden and isinstance(hidden[0].value, ast.Constant), where
        assert hidden[0].value.value is True, where
    engine = shared_documents._engine("postgresql+psycopg2://u@127.0.0.1:1/unused")
    assert engine.hide_parameters
