"""What one try at a call came to: its status and JSON body, or a ``TransientFailure`` when
another try may do better (429, a 5xx to a read, a body cut short). The retry layer decides
whether and when that try comes; the caller decides what a 4xx means."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import threading
from typing import Any

from drchrono_assets.api.answers import (
    Answer,
    TransientFailure,
    UnreadableBody,
    parse_json,
    retry_after_seconds,
)
from drchrono_assets.api.rate_budget import RequestBudget
from drchrono_assets.api.transport import WRITE_ADVICE, Call
from drchrono_assets.errors import ApiRequestError


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """Reads the answers of one client's calls; ``throttle_pause_seconds``: how long every
    user of the request budget pauses after a 429 that names no ``Retry-After``."""

    budget: RequestBudget
    throttle_pause_seconds: float
    # The API's clock as of each thread's last successful answer (its ``Date`` header).
    answered: threading.local = dataclasses.field(default_factory=threading.local, compare=False)

    def read(self, call: Call, answer: Answer) -> tuple[int, Any]:
        """``answer``'s status and JSON body (None when it has none); a failure worth another
        try raises ``TransientFailure``, a body that is not JSON ``ApiRequestError``."""
        status = answer.status
        if status == 429 or (status >= 500 and call.idempotent):
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            if status == 429:
                # Published at once, so other users of the ledger stop before this thread's
                # retry logic runs; the retry's wait then extends the pause.
                self.budget.pause(retry_after or self.throttle_pause_seconds)
            raise TransientFailure(f"HTTP {status}", retry_after, throttled=status == 429)
        if status < 400:
            # Without a usable Date header the last one stands.
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.answered.at = email.utils.parsedate_to_datetime(answer.headers["Date"])
        if status == 204:
            return status, None
        return status, _json_body(answer, call)

    def last_answer_time(self) -> dt.datetime | None:
        """The API's time (``Date`` header) of this thread's last successful answer."""
        return getattr(self.answered, "at", None)


def _json_body(answer: Answer, call: Call) -> Any:
    """The JSON value of ``answer``'s body, None if it has none (or is an error status's
    unreadable page); a body cut short raises ``TransientFailure`` for a call safe to repeat."""
    if not answer.body:
        return None
    try:
        return parse_json(answer.body)
    except UnreadableBody as unreadable:
        problem = unreadable
    if answer.status >= 400:
        return None  # the status says what went wrong; field names were only a bonus
    if problem.cut_short and call.idempotent:
        # A passing fault, like a body shorter than its Content-Length: read it again.
        raise TransientFailure("the answer was cut short (its JSON ends early)")
    # Not JSON at all (an HTML page, another encoding): asking again gets the same.
    advice = "" if call.idempotent else WRITE_ADVICE
    raise ApiRequestError(
        f"{call.method} {call.endpoint} answered HTTP {answer.status} with a body that "
        f"{problem.problem}{advice}"
    )
