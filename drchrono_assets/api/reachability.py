"""An API that cannot be reached: no connection could be made to ``DRCHRONO_BASE_URL``
(refused, host name not found, connect timeout), so nothing was sent.

That is no passing fault like a 503: a wrong address or a host that is down answers the
tenth try no better than the first, and the long backoff for 5xx and 429 made such a run wait
eight minutes before it failed. So while the API has never answered this client, a failed
connection is tried again only after each of a few short waits, then reported naming the
address and the variable. Once the API has answered, a refused connection is more likely a
restart: it gets the long backoff like any transient failure (``retries``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import requests

from drchrono_assets.api.answers import TransientFailure
from drchrono_assets.api.client_settings import BASE_URL_VARIABLE
from drchrono_assets.api.origins import DEFAULT_PORTS, origin_of
from drchrono_assets.api.transport import CONNECT_TIMEOUT_SECONDS, Call
from drchrono_assets.errors import ApiUnreachableError

# Runs: three tries within about 8 s, which outlast a DNS hiccup or a proxy's restart.
RUN_CONNECT_WAITS: tuple[float, ...] = (2.0, 6.0)
# Interactive commands (``auth status``, ``auth login``): someone is watching and runs the
# command again if it was a blip; one line at once beats a retry's warning and a wait.
INTERACTIVE_CONNECT_WAITS: tuple[float, ...] = ()
T = TypeVar("T")


def unreachable_message(base_url: str, reason: str, attempts: int, seconds: float) -> str:
    """The sentence for an API no connection reached: the address (its origin only, never a
    path or query) and what to check."""
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts over {seconds:.0f} s"
    return (
        f"the drchrono API at {origin_of(base_url)} cannot be reached ({reason}; {tries}): "
        f"check that {BASE_URL_VARIABLE} is the API's address and that this machine can "
        "reach it"
    )


def reaching(
    attempt: Callable[[], T],
    call: Call,
    *,
    base_url: str,
    waits: Sequence[float],
    reached: threading.Event,
    gave_up: threading.Event,
    log: logging.Logger,
) -> T:
    """``attempt``'s result; until the API is ``reached`` (answers), a failed connection is tried
    again after each of ``waits`` (none once the client ``gave_up``), then raises
    ``ApiUnreachableError`` and sets ``gave_up``.

    Any other failure (and a failed connection once the API has answered) is raised as it
    is, for the caller's backoff.
    """
    started = time.monotonic()
    waits = () if gave_up.is_set() else waits
    for number, wait in enumerate((*waits, None), start=1):
        try:
            return attempt()
        except TransientFailure as failure:
            if not failure.unreachable or reached.is_set():
                raise
            if wait is None:
                gave_up.set()
                message = unreachable_message(
                    base_url, failure.reason, number, time.monotonic() - started
                )
                raise ApiUnreachableError(f"{call.method} {call.endpoint}: {message}") from None
            log.warning(
                f"{call.method} {call.endpoint}: cannot reach {origin_of(base_url)} "
                f"({failure.reason}); retry {number}/{len(waits)} in {wait:.1f}s"
            )
            time.sleep(wait)
    raise AssertionError("the loop returns or raises")  # for type checkers


def require_reachable(
    base_url: str,
    *,
    waits: Sequence[float] = INTERACTIVE_CONNECT_WAITS,
    log: logging.Logger | None = None,
) -> None:
    """Raise ``ApiUnreachableError`` unless a TCP connection to the API can be opened.

    Sends no request, so it costs nothing of the request budget: ``auth login`` checks this
    before someone is sent to a browser page the API would have to serve. Skipped when a
    proxy carries the requests (only the proxy is reachable from here then).
    """
    origin = origin_of(base_url)
    if requests.utils.get_environ_proxies(base_url):
        return
    address = (origin.host, origin.port or DEFAULT_PORTS.get(origin.scheme, 443))
    started = time.monotonic()
    for number, wait in enumerate((*waits, None), start=1):
        try:
            socket.create_connection(address, timeout=CONNECT_TIMEOUT_SECONDS).close()
            return
        except OSError as error:
            reason = _socket_reason(error)
        if wait is None:
            raise ApiUnreachableError(
                unreachable_message(base_url, reason, number, time.monotonic() - started)
            )
        (log or logging.getLogger(__name__)).warning(
            f"cannot reach {origin} ({reason}); retry {number}/{len(waits)} in {wait:.1f}s"
        )
        time.sleep(wait)


def _socket_reason(error: OSError) -> str:
    """Why a TCP connection failed, in the words ``answers.connect_failure`` uses."""
    if isinstance(error, socket.gaierror):
        return "host name not found"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "connection timed out"
    return "no connection could be made"
