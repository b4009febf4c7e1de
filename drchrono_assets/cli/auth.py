"""Connect a drchrono account: ``drchrono-assets auth login [PRACTICE]`` / ``status``.

``login`` runs the OAuth 2.0 authorization-code flow of the drchrono API tutorial: it prints
the authorize URL, waits on a localhost redirect URI for the code, exchanges the code at
``/o/token/`` and stores the tokens in the token store (``DRCHRONO_TOKEN_STORE``), where the
assets find them: those of the named practice of the ``defs/`` folder, or of the practice of
the ``DRCHRONO_*`` variables. ``status`` lists every practice and whether it is connected,
and shows which account is and when its access token expires. Neither ever prints a token
or a secret.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import time
import webbrowser
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from drchrono_assets import settings
from drchrono_assets.api import DrchronoClient
from drchrono_assets.api.reachability import INTERACTIVE_CONNECT_WAITS, require_reachable
from drchrono_assets.cli.auth_callback import (
    CALLBACK_PATH,
    CallbackServer,
    wait_for_code,
    warn_if_exposed,
)
from drchrono_assets.errors import (
    LOGIN_COMMAND,
    ApiUnreachableError,
    ConfigurationError,
    DrchronoError,
    TokenRejectedError,
)
from drchrono_assets.practice_connections import (
    DEFS_FOLDER,
    PracticeConnection,
    configured_practices,
    practice_named,
)

#: Read scopes for everything the assets extract (``BASE_SCOPE:read`` per the field notes):
#: ``user`` (users, doctors, offices), ``calendar`` (appointments, profiles, templates,
#: reminder profiles), ``patients``, ``billing`` (transactions), ``clinical`` (documents).
#: Writes (``create_appointment``, ``upload_document``...) need ``:write`` scopes: pass them
#: with ``--scope``.
DEFAULT_SCOPES: tuple[str, ...] = (
    "user:read",
    "calendar:read",
    "patients:read",
    "billing:read",
    "clinical:read",
)
DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT_SECONDS = 300.0


# -- building blocks ---------------------------------------------------------------------


def authorize_url(
    base_url: str, *, client_id: str, redirect_uri: str, scopes: Sequence[str], state: str
) -> str:
    """``<base>/o/authorize/?response_type=code&client_id=..&redirect_uri=..&scope=..&state=..``."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
        }
    )
    return f"{base_url.rstrip('/')}/o/authorize/?{query}"


def redirect_uri_for(host: str, port: int) -> str:
    """``http://<host>:<port>/callback`` (an IPv6 literal in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{CALLBACK_PATH}"


def requested_scopes(values: Sequence[str] | None) -> list[str]:
    """``--scope`` values (each may hold several, space-separated), else ``DEFAULT_SCOPES``."""
    if not values:
        return list(DEFAULT_SCOPES)
    scopes: list[str] = []
    for value in values:
        scopes.extend(scope for scope in value.split() if scope not in scopes)
    if not scopes:
        raise ConfigurationError("--scope is empty: name at least one scope (e.g. user:read)")
    return scopes


def describe_expiry(expires_at: float | None, now: float | None = None) -> str:
    """``2024-05-01T12:00:00+00:00 (in 47 hours)``, or ``... (expired 3 hours ago)``."""
    if expires_at is None:
        return "unknown (the token endpoint gave no lifetime)"
    when = dt.datetime.fromtimestamp(expires_at, dt.UTC).isoformat(timespec="seconds")
    left = expires_at - (time.time() if now is None else now)
    span = _span(abs(left))
    if left >= 0:
        return f"{when} (in {span})"
    return f"{when} (expired {span} ago; the next request refreshes it)"


def _span(seconds: float) -> str:
    if seconds >= 3600:
        hours = round(seconds / 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _account(user: Any) -> str:
    """``username (user id N)`` from a user record, nothing else of it."""
    username = user.get("username") if isinstance(user, Mapping) else None
    user_id = user.get("id") if isinstance(user, Mapping) else None
    return f"{username or '(no username)'} (user id {user_id if user_id is not None else '?'})"


def interactive_client(practice: PracticeConnection) -> DrchronoClient:
    """The practice's client, from the variables it names, that gives up on an API it cannot
    reach within seconds: someone is waiting (the long backoff for 5xx and 429 stays)."""
    return DrchronoClient(practice.client_settings(), connect_waits=INTERACTIVE_CONNECT_WAITS)


def store_location(client: DrchronoClient) -> str:
    """Where ``client`` keeps its tokens, without the password a database URL may carry."""
    return client.open_token_store().location


# -- commands --------------------------------------------------------------------------------


def login(args: argparse.Namespace) -> int:
    """Run the authorization-code flow and store the tokens; 0 once an account is connected."""
    practice = practice_named(args.practice, args.defs)
    client = interactive_client(practice)
    location = store_location(client)
    client.stored_tokens()  # fails early on missing credentials or an unreadable token store
    # Before anyone is sent to a page the API serves; a TCP connection, not a request.
    require_reachable(client.config.base_url)
    scopes = requested_scopes(args.scope)
    warn_if_exposed(args.host)
    try:
        server = CallbackServer(args.host, args.port, state=secrets.token_urlsafe(32))
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on {args.host}:{args.port} for the redirect ({error.strerror}); "
            "pick another --port (and register that redirect URI in the drchrono application)"
        ) from None
    with server:
        redirect_uri = redirect_uri_for(args.host, server.server_address[1])
        url = authorize_url(
            client.config.base_url,
            client_id=client.config.client_id or "",
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=server.state,
        )
        print(f"Redirect URI (must be listed in the drchrono API application): {redirect_uri}")
        print(f"Requesting scopes: {' '.join(scopes)}")
        print("Open this URL in a browser and approve the application:", flush=True)
        print(f"  {url}", flush=True)
        if not args.no_browser and not webbrowser.open(url):
            print("(no browser could be opened: open the URL above yourself)", flush=True)
        print(f"Waiting up to {args.timeout:g} seconds for the redirect...", flush=True)
        code = wait_for_code(server, args.timeout)
    tokens = client.authorize_with_code(code, redirect_uri)
    try:
        user = client.current_user()
    except DrchronoError as error:
        raise type(error)(
            f"tokens stored in {location}, but checking the account failed: {error}"
        ) from None
    of = f" for practice {practice.name}" if practice.name else ""
    print(f"Connected drchrono account{of}: {_account(user)}")
    print(f"Tokens stored in {location}")
    print(f"Granted scope: {tokens.scope or '(not reported)'}")
    granted = set((tokens.scope or "").split())
    missing = [scope for scope in scopes if scope not in granted]
    if granted and missing:
        print(f"Warning: drchrono did not grant {' '.join(missing)}; some assets may fail")
    print(f"Access token expires: {describe_expiry(tokens.expires_at)}")
    return 0


def status(args: argparse.Namespace) -> int:
    """Every named practice and whether it is connected; then, for the one asked for or the
    practice of the ``DRCHRONO_*`` variables, the token store, the connected account, scope
    and expiry. 1 if one is not connected."""
    if args.practice is not None:
        return _status(practice_named(args.practice, args.defs))
    practices = configured_practices(args.defs)
    connected = [_listed(practice) for practice in practices if practice.name]
    if not practices or any(practice.name is None for practice in practices):
        connected.append(_status(PracticeConnection()) == 0)
    return 0 if all(connected) else 1


def _listed(practice: PracticeConnection) -> bool:
    """Print whether ``practice`` is connected (its tokens are stored; no request)."""
    client = interactive_client(practice)
    connected = client.stored_tokens() is not None
    state = "connected" if connected else f"not connected: run {practice.login_command}"
    print(f"Practice {practice.name}: {state} (token store {store_location(client)})")
    return connected


def _status(practice: PracticeConnection) -> int:
    client = interactive_client(practice)
    if practice.name:
        print(f"Practice: {practice.name}")
    print(f"Token store: {store_location(client)}")
    if client.stored_tokens() is None:
        print("No drchrono account is connected: the token store holds no tokens.")
        if settings.env("DRCHRONO_REFRESH_TOKEN"):
            print(
                "DRCHRONO_REFRESH_TOKEN is set: the first request of a run redeems it and "
                "fills the store."
            )
        login_command = f"`{practice.login_command}`" if practice.name else LOGIN_COMMAND
        print(f"Connect an account with {login_command}.")
        return 1
    note = ""
    try:
        print(f"Account: {_account(client.current_user())}")
    except ApiUnreachableError:
        raise  # says nothing about the tokens: ``main`` prints the one sentence that matters
    except TokenRejectedError as error:
        # The error says what was refused (the client's id/secret or the refresh token) and
        # the fix: the two differ, and only a spent refresh token needs a new login.
        note = " (as stored; drchrono did not accept the credentials)"
        print(f"Account: not connected: {error}")
    except DrchronoError as error:
        note = " (as stored; not checked)"
        print(f"Account: could not be checked: {error}")
    tokens = client.stored_tokens()  # reloaded: checking the account may have refreshed them
    if tokens is not None:
        print(f"Granted scope: {tokens.scope or '(not reported)'}")
        print(f"Access token expires: {describe_expiry(tokens.expires_at)}{note}")
    return 1 if note else 0


# -- command line ----------------------------------------------------------------------------


def _port(value: str) -> int:
    port = int(value) if value.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535)")
    return port


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The ``login`` / ``status`` command line."""
    parser = argparse.ArgumentParser(
        prog="drchrono-assets auth",
        description="Connect a drchrono account to drchrono_assets (OAuth 2.0).",
        epilog="Settings come from DRCHRONO_BASE_URL, DRCHRONO_CLIENT_ID, "
        "DRCHRONO_CLIENT_SECRET and DRCHRONO_TOKEN_STORE.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    login_parser = commands.add_parser(
        "login",
        help="authorize in a browser and store the tokens",
        description="Run the OAuth authorization-code flow: print the authorize URL, wait on "
        "http://HOST:PORT/callback for the code, exchange it at /o/token/ and store the "
        "tokens in the token store.",
        epilog=f"The drchrono API application (Account > API) must list the redirect URI "
        f"exactly, e.g. http://{DEFAULT_HOST}:{DEFAULT_PORT}{CALLBACK_PATH} with the "
        "defaults; drchrono refuses any other. --port 0 picks a free port, which only suits "
        f"a server that accepts any redirect URI (the bundled sandbox). Default scopes: "
        f"{' '.join(DEFAULT_SCOPES)} (read access for what the assets extract).",
    )
    login_parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port of the redirect URI (default {DEFAULT_PORT}; 0 = any free port)",
    )
    login_parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"host of the redirect URI and address to listen on (default {DEFAULT_HOST}; "
        "a non-loopback address is reachable from other machines)",
    )
    login_parser.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help="scope to request instead of the defaults (repeatable, or space-separated), "
        "e.g. --scope 'calendar:read calendar:write'",
    )
    login_parser.add_argument(
        "--no-browser", action="store_true", help="only print the URL, do not open a browser"
    )
    login_parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the redirect (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    login_parser.add_argument(
        "practice",
        nargs="?",
        metavar="PRACTICE",
        help="the practice to connect, by its name in defs/ (default: the practice of the "
        "DRCHRONO_* variables)",
    )
    login_parser.set_defaults(run=login)
    status_parser = commands.add_parser(
        "status",
        help="show the connected account and when its access token expires",
        description="Show the token store, the connected account, the granted scope and "
        "when the access token expires. Never shows a token. Exit code 1 when no account "
        "is connected.",
    )
    status_parser.add_argument(
        "practice", nargs="?", metavar="PRACTICE", help="show this practice only"
    )
    status_parser.set_defaults(run=status)
    for command in (login_parser, status_parser):
        command.add_argument(
            "--defs",
            type=Path,
            default=DEFS_FOLDER,
            help="the defs folder of the practices (default: the package's)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; this package's errors become one line on stderr and exit code 1."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except DrchronoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
