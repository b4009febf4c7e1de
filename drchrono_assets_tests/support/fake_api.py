"""A scripted stand-in for drchrono, and for a host that should never see its tokens: a
small HTTP server on a thread of the test process, on 127.0.0.1, answering as told."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drchrono_assets.api import ClientSettings, DrchronoClient

CLIENT_SECRET = "SECRET-CLIENT-SECRET"
REFRESH_TOKEN = "SECRET-REFRESH-TOKEN-1"
ACCESS_TOKEN = "SECRET-ACCESS-TOKEN"
TOKEN_ANSWER = {
    "access_token": ACCESS_TOKEN,
    "refresh_token": "SECRET-REFRESH-TOKEN-2",
    "expires_in": 3600,
}
PAGE = {"results": [{"id": 666}], "next": None}


@dataclasses.dataclass(frozen=True)
class Received:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answerer = Callable[[Received], tuple[int, dict[str, str], Any]]


class LocalServer:
    """A tiny HTTP server on 127.0.0.1, on a thread: ``answer`` decides each answer
    (status, headers, JSON body) and ``received`` keeps every request."""

    def __init__(self, answer: Answerer) -> None:
        self.received: list[Received] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(self.command, self.path, dict(self.headers), self.rfile.read(length))
                server.received.append(got)
                status, headers, body = answer(got)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = handle_one

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # Polled every 10 ms, not 0.5 s: shutting down waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def elsewhere_answer(request: Received) -> tuple[int, dict[str, str], Any]:
    """Another host that would gladly take the tokens and serve a page."""
    return 200, {}, TOKEN_ANSWER if request.path.startswith("/o/token/") else PAGE


def scripted_api(
    redirect_token: tuple[int, str] | None = None, redirect_read: tuple[int, str] | None = None
) -> Answerer:
    """The 'API': tokens, ``/api/users/current`` redirecting to the user on the same host,
    and ``/api/doctors``; ``redirect_*`` (status, URL) turn the token endpoint or the list
    into a redirect."""

    def answer(request: Received) -> tuple[int, dict[str, str], Any]:
        if request.path.startswith("/o/token/"):
            if redirect_token:
                return redirect_token[0], {"Location": redirect_token[1]}, {}
            return 200, {}, TOKEN_ANSWER
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {}, {"detail": "Invalid token."}
        if request.path == "/api/users/current":
            return 302, {"Location": "/api/users/7"}, {}
        if request.path == "/api/users/7":
            return 200, {}, {"id": 7, "username": "dr-who"}
        if request.path.startswith("/api/doctors") and redirect_read:
            return redirect_read[0], {"Location": redirect_read[1]}, {}
        return 200, {}, {"results": [{"id": 1}], "next": None}

    return answer


def client_for(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_attempts: int = 2
) -> DrchronoClient:
    """A client of ``base_url`` with these secrets, quick backoff and ``max_attempts``."""
    monkeypatch.setenv("DRCHRONO_DATA_ROOT", str(tmp_path / "data"))
    settings = ClientSettings(
        base_url=base_url,
        client_id="client-id",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        token_store=str(tmp_path / "secrets" / "tokens.json"),
        max_attempts=max_attempts,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.01,
        requests_per_hour=1_000_000,
        requests_per_second=10_000,
    )
    return DrchronoClient(settings)
