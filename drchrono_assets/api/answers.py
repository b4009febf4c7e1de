"""What comes back from drchrono: a bounded read of the body, its JSON, and which failures
are worth another try.

Reasons and messages never quote a body (patient data) or a URL (it may carry a cursor).
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import decimal
import email.utils
import http.client
import json
import re
from collections.abc import Mapping
from typing import Any

import requests
import urllib3

# Large reads: a page arrives in a chunk or two, faster than requests' own 10 KiB ``content``.
CHUNK_BYTES = 1 << 20
# Far above any page drchrono sends (250 records), far below what would exhaust memory.
DEFAULT_MAX_RESPONSE_BYTES = 64 << 20
# What a body cut inside a token leaves after the parser's error position: ``tru``, ``1.``,
# ``-``, ``\u00``.
_TOKEN_FRAGMENT = re.compile(r"[-+.\w\\]{1,8}")


class TransientFailure(Exception):
    """A failure worth retrying; ``reason`` never holds a token or a record value."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        *,
        throttled: bool = False,
        token_refused: bool = False,
        unreachable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.throttled = throttled
        self.token_refused = token_refused
        # No connection could be made: nothing was sent, and the API may not be there at all.
        self.unreachable = unreachable


@dataclasses.dataclass(frozen=True)
class TransportFailure:
    reason: str  # never the URL: it may carry a cursor
    transient: bool
    write_may_be_applied: bool
    unreachable: bool = False  # no connection was made


def connect_failure(error: BaseException) -> str | None:
    """Why no connection could be made (so nothing was sent), or None if one was."""
    if isinstance(error, requests.ConnectTimeout):
        return "connection timed out"
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", None)
    # NameResolutionError is a NewConnectionError; both say no byte of the request left.
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "host name not found"
    if not isinstance(reason, urllib3.exceptions.NewConnectionError):
        return None
    if isinstance(reason.__cause__ or reason.__context__, ConnectionRefusedError):
        return "connection refused"
    return "no connection could be made"


def transport_failure(error: Exception, *, idempotent: bool) -> TransportFailure:
    """Why no whole answer came back, and whether sending again is safe."""
    unconnected = connect_failure(error)
    if unconnected is not None:
        return TransportFailure(
            f"{unconnected}, nothing was sent",
            transient=True,
            write_may_be_applied=False,
            unreachable=True,
        )
    if isinstance(error, requests.Timeout):
        reason = "timed out"
    elif isinstance(error, requests.ConnectionError):
        reason = "connection failed"
    elif isinstance(
        error,
        requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError
        | urllib3.exceptions.HTTPError
        | http.client.HTTPException,
    ):
        reason = "the answer was cut short"
    else:
        return TransportFailure(
            f"request failed ({type(error).__name__})", transient=False, write_may_be_applied=False
        )
    return TransportFailure(reason, transient=idempotent, write_may_be_applied=not idempotent)


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds, from either of its two forms."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


@dataclasses.dataclass(frozen=True)
class Answer:
    """An HTTP answer read to its end."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class BodyTooLarge(Exception):
    """The answer's body is longer than the client reads."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def read_answer(response: requests.Response, limit: int) -> Answer:
    """The answer of a streamed ``response``; ``BodyTooLarge`` as soon as it passes ``limit``
    bytes (after decompression: what memory holds), without reading the rest."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(response.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(response.status_code)
        chunks.append(chunk)
    return Answer(response.status_code, response.headers, b"".join(chunks))


def size_text(size: int) -> str:
    """``64 MiB`` for whole mebibytes, else ``1234 bytes``."""
    mib = 1 << 20
    return f"{size // mib} MiB" if size and size % mib == 0 else f"{size} bytes"


class UnreadableBody(Exception):
    """A body that is not a JSON document; ``cut_short`` when it is one that ends early."""

    def __init__(self, problem: str, *, cut_short: bool) -> None:
        super().__init__(problem)
        self.problem = problem  # says what is wrong, never what the body holds
        self.cut_short = cut_short


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body`` (numbers with a fraction as ``Decimal``)."""
    # Incremental, so a multibyte character cut at the very end is left over, not an error:
    # that body was cut short, which the JSON parser then reports.
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(body, final=False)
    except UnicodeDecodeError:
        raise UnreadableBody("is not valid UTF-8", cut_short=False) from None
    try:
        value = json.loads(text, parse_float=decimal.Decimal)
    except json.JSONDecodeError as error:
        raise UnreadableBody("is not JSON", cut_short=_ran_out(error, text)) from None
    if decoder.getstate()[0]:
        raise UnreadableBody("is not valid UTF-8", cut_short=False)
    return value


def _ran_out(error: json.JSONDecodeError, text: str) -> bool:
    """Whether the parser failed only because the text ended: a cut-short answer (a proxy
    or a dying worker), worth another try, unlike a body that is wrong before its end."""
    # drchrono answers objects (lists at most): a bare word was never a cut document.
    if error.msg == "Extra data" or not text.lstrip().startswith(("{", "[")):
        return False
    if error.msg.startswith("Unterminated string"):
        return True
    tail = text[error.pos :].rstrip()
    return not tail or _TOKEN_FRAGMENT.fullmatch(tail) is not None
