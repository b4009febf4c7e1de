"""The client against answers the sandbox cannot give: bodies that are not JSON objects, not
UTF-8, not JSON, or too large. Token grants still go to the sandbox over real HTTP."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from drchrono_assets.api import DrchronoClient
from drchrono_assets.api.answers import CHUNK_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from drchrono_assets.errors import ApiRequestError, MalformedPageError
from drchrono_assets_tests.support.resources import api_for

# Stand-ins for patient data: no message may quote them.
PAGE_OF_JUNK = b'{"results": [{"id": 1}, 7, "SECRET-NAME"], "next": null}'
LATIN_1_PAGE = b'{"results": [{"id": 1, "first_name": "SECRET-REN\xe9"}], "next": null}'
HTML_PAGE = b"<html><body>SECRET-NAME: please sign in</body></html>"

Canned = Callable[..., list[str]]


class _CountingBody(io.BytesIO):
    """A body that remembers how much of it the client read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch) -> Iterator[Canned]:
    """``canned(path, status, body, headers)`` answers requests to ``path`` with that body,
    unread until the client reads it; the rest go to the sandbox. Returns the URLs sent."""
    original = requests.Session.request

    def arm(path: str, status: int, body: bytes | io.BytesIO, headers: Any = None) -> list[str]:
        sent: list[str] = []

        def request(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
            if urlsplit(url).path != path:
                return original(self, method, url, **kwargs)
            sent.append(url)
            response = requests.Response()
            response.status_code = status
            response.headers.update({"Content-Type": "application/json", **(headers or {})})
            response.raw = body if isinstance(body, io.BytesIO) else io.BytesIO(body)
            return response

        monkeypatch.setattr(requests.Session, "request", request)
        return sent

    yield arm


def _client(sandbox_env: dict[str, str], **overrides: Any) -> DrchronoClient:
    return DrchronoClient(api_for(sandbox_env).client_settings(), **overrides)


# -- results that are not records --------------------------------------------------------


def test_results_that_are_not_objects_are_a_clear_error(sandbox_env, canned) -> None:
    canned("/api/doctors", 200, PAGE_OF_JUNK)
    with pytest.raises(MalformedPageError) as raised:
        _client(sandbox_env).list_records("/api/doctors")
    message = str(raised.value)
    assert message.startswith("GET /api/doctors: page 1 has results that are not JSON objects")
    assert "SECRET" not in message and "7" not in message


# -- bodies that are not JSON --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [(LATIN_1_PAGE, "is not valid UTF-8"), (HTML_PAGE, "is not JSON")],
    ids=["latin_1", "html"],
)
def test_a_read_answered_with_an_undecodable_body_fails_at_once(
    sandbox_env, canned, body, problem
) -> None:
    sent = canned("/api/doctors", 200, body)
    with pytest.raises(ApiRequestError) as raised:
        _client(sandbox_env).list_records("/api/doctors")
    assert str(raised.value) == f"GET /api/doctors answered HTTP 200 with a body that {problem}"
    assert len(sent) == 1


def test_a_write_answered_with_an_undecodable_body_says_it_may_have_been_applied(
    sandbox_env, canned
) -> None:
    sent = canned("/api/appointments", 201, HTML_PAGE)
    with pytest.raises(ApiRequestError) as raised:
        _client(sandbox_env).create_appointment(
            doctor=1, office=2, patient=3, scheduled_time=dt.datetime(2024, 3, 6, 15)
        )
    message = str(raised.value)
    assert message.startswith("POST /api/appointments answered HTTP 201 with a body that is not")
    assert "the write may have been applied" in message and "SECRET" not in message
    assert len(sent) == 1


def test_an_error_status_with_an_undecodable_body_is_reported_by_its_status(
    sandbox_env, canned
) -> None:
    canned("/api/doctors/5", 404, HTML_PAGE)
    with pytest.raises(ApiRequestError, match=r"^GET /api/doctors/5 answered HTTP 404$"):
        _client(sandbox_env).get("/api/doctors/5")


# -- bodies too large to read ------------------------------------------------------------


def test_default_limit_is_64_mib() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES == 64 * 1024 * 1024


def test_a_page_larger_than_the_limit_fails_at_once(quiet_sandbox, sandbox_env) -> None:
    client = _client(sandbox_env, max_response_bytes=2000)
    client.current_user()  # a small answer passes
    quiet_sandbox.state.stats.reset()
    with pytest.raises(ApiRequestError) as raised:
        client.list_records("/api/patients")
    assert str(raised.value) == (
        "GET /api/patients answered HTTP 200 with a body larger than the limit of 2000 bytes"
    )
    assert quiet_sandbox.state.stats.snapshot()["by_path"]["/api/patients"] == 1
    client.close()


def test_a_body_without_a_length_is_read_no_further_than_the_limit(sandbox_env, canned) -> None:
    limit = 2 * CHUNK_BYTES
    body = _CountingBody(b'{"results": [' + b'{"id": 1}, ' * (limit // 5) + b'{"id": 2}]}')
    canned("/api/patients", 200, body)
    with pytest.raises(ApiRequestError, match=r"larger than the limit of 2 MiB$"):
        _client(sandbox_env, max_response_bytes=limit).list_records("/api/patients")
    assert body.bytes_read <= limit + CHUNK_BYTES


def test_a_body_exactly_at_the_limit_is_read(sandbox_env, canned) -> None:
    page = b'{"results": [{"id": 1}, {"id": 2}], "next": null}'
    canned("/api/patients", 200, page.ljust(4096))  # the token grant's answer is smaller
    client = _client(sandbox_env, max_response_bytes=4096)
    assert client.list_records("/api/patients") == [{"id": 1}, {"id": 2}]
