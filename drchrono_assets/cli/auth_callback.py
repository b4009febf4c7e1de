"""The redirect-URI listener of ``drchrono-assets auth login``.

It serves one path, ``/callback``, until a request carries this login's ``state``: that
request's code (or its error) ends the wait. A request with any other state is not from
this login's authorization (an old tab, a forged link), so it gets a bare 400 and the
listener keeps waiting, until the deadline.
"""

from __future__ import annotations

import html
import http.server
import ipaddress
import secrets
import socket
import socketserver
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from drchrono_assets.errors import LOGIN_COMMAND, DrchronoError

CALLBACK_PATH = "/callback"
#: How long one browser connection may take to send its request (a silent pre-connect must
#: not hold the single-threaded listener up).
REQUEST_READ_TIMEOUT_SECONDS = 5.0

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>drchrono_assets</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>
"""


class LoginError(DrchronoError):
    """The authorization-code flow did not produce a code (denied, timeout)."""


class CallbackServer(http.server.HTTPServer):
    """An ``HTTPServer`` that judges requests to the redirect URI and keeps the result.

    ``outcome`` is the authorization code, or the ``LoginError`` saying why there is none;
    ``ignored`` counts the requests turned away for a wrong state.
    """

    def __init__(self, host: str, port: int, state: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.state = state
        self.outcome: str | LoginError | None = None
        self.ignored = 0
        super().__init__((host, port), _CallbackHandler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s ``getfqdn`` (a DNS lookup) of the address."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_timeout(self) -> None:
        """Nothing to do: the caller checks its own deadline."""


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    """Answers the redirect URI; anything else (a favicon...) gets a 404."""

    server: CallbackServer
    timeout = REQUEST_READ_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != CALLBACK_PATH or self.server.outcome is not None:
            self._answer(404, "Not found", "This is not the drchrono_assets redirect URI.")
            return
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        if not state_matches(params, self.server.state):
            # Whoever sent it learns nothing (not even that the state was the problem), and
            # the login waits on for its own redirect.
            self.server.ignored += 1
            self._answer(400, "Bad request", "This request was not accepted.")
            if self.server.ignored == 1:  # said once: anyone can repeat such requests
                print(
                    "Ignored a request to the redirect URI that is not from this login's "
                    "authorization (an older link?); still waiting.",
                    file=sys.stderr,
                    flush=True,
                )
            return
        try:
            self.server.outcome = code_from(params)
        except LoginError as error:
            self.server.outcome = error
            self._answer(
                400,
                "Authorization not completed",
                "drchrono_assets did not get an authorization. You can close this tab; the "
                "terminal says what happened.",
            )
            return
        self._answer(
            200,
            "Authorization received",
            "drchrono_assets got the authorization. You can close this tab and return to "
            "the terminal.",
        )

    def _answer(self, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


def state_matches(params: Mapping[str, str], state: str) -> bool:
    """Whether a redirect's query carries this login's ``state`` (compared in constant time)."""
    return secrets.compare_digest(params.get("state", "").encode(), state.encode())


def code_from(params: Mapping[str, str]) -> str:
    """The code in the query of a redirect with the right state; ``LoginError`` otherwise."""
    error = params.get("error")
    if error == "access_denied":
        raise LoginError(
            "the authorization was denied in the browser (access_denied): nothing was stored"
        )
    if error:
        raise LoginError(f"drchrono answered the authorization with error {error!r}")
    code = params.get("code")
    if not code:
        raise LoginError("the redirect carried neither a code nor an error")
    return code


def wait_for_code(server: CallbackServer, timeout_seconds: float) -> str:
    """Serve requests until the redirect URI is hit with the right state; its code, else
    ``LoginError``."""
    deadline = time.monotonic() + timeout_seconds
    while server.outcome is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            ignored = (
                f" ({server.ignored} request(s) not from this login were ignored)"
                if server.ignored
                else ""
            )
            raise LoginError(
                f"no authorization arrived on the redirect URI within {timeout_seconds:g} "
                f"seconds{ignored}; run {LOGIN_COMMAND} again and approve the application in "
                "the browser"
            )
        server.timeout = remaining
        server.handle_request()
    if isinstance(server.outcome, LoginError):
        raise server.outcome
    return server.outcome


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` stays on this machine: ``localhost`` or a loopback
    address. ``0.0.0.0`` / ``::`` (every interface) and any other name are not."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name: it may resolve to any interface
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def warn_if_exposed(host: str) -> None:
    """One warning on stderr when the listener would be reachable from other machines."""
    if is_loopback(host):
        return
    print(
        f"Warning: --host {host} is not a loopback address, so the OAuth callback listener "
        "is reachable beyond this machine: anyone who can reach its port can send it "
        "requests, and the authorization code comes over plain HTTP. Use the default "
        "127.0.0.1 unless the browser runs on another machine.",
        file=sys.stderr,
        flush=True,
    )
