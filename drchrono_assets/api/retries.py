"""When a failed request is sent again: the long backoff for an API that answered badly
(5xx, 429, a lost or cut answer, 401 after refreshes), the short one of ``reachability`` for
an API no connection reached, and the error each ends with."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import tenacity

from drchrono_assets.api.answers import TransientFailure
from drchrono_assets.api.client_settings import ClientSettings
from drchrono_assets.api.rate_budget import RequestBudget
from drchrono_assets.api.reachability import reaching, unreachable_message
from drchrono_assets.api.transport import Call, Transport
from drchrono_assets.errors import ApiRequestError, ApiUnreachableError, TokenRejectedError

# Longest wait a ``Retry-After`` may impose: drchrono's quota window.
MAX_RETRY_AFTER_SECONDS = 3600.0
T = TypeVar("T")


def backoff(config: ClientSettings, state: tenacity.RetryCallState) -> float:
    """The wait before the next try: ``Retry-After`` if the API sent one, else exponential
    with jitter from ``backoff_initial_seconds`` up to ``backoff_max_seconds``."""
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, TransientFailure) and failure.retry_after is not None:
        return min(failure.retry_after, MAX_RETRY_AFTER_SECONDS)
    jitter = tenacity.wait_exponential_jitter(
        multiplier=config.backoff_initial_seconds, max=config.backoff_max_seconds
    )
    return jitter(state)


@dataclasses.dataclass(frozen=True)
class Retries:
    """How one client's calls are retried; ``connect_waits``: the short waits for an API
    never reached (``reachability.RUN_CONNECT_WAITS`` or ``INTERACTIVE_CONNECT_WAITS``)."""

    config: ClientSettings
    budget: RequestBudget
    transport: Transport
    connect_waits: Sequence[float]
    log: logging.Logger
    # Set once a call gave up on the API: the client's other calls and threads then try once
    # each, instead of each waiting out the short retry again.
    gave_up: threading.Event = dataclasses.field(default_factory=threading.Event, compare=False)

    def run(self, call: Call, attempt: Callable[[], T]) -> T:
        """``attempt``'s result, retrying its transient failures with backoff."""
        attempts = self.config.max_attempts
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=lambda state: backoff(self.config, state),
            retry=tenacity.retry_if_exception_type(TransientFailure),
            before_sleep=lambda state: self._before_retry(call, state),
        )
        started = time.monotonic()
        try:
            for trial in retrying:
                with trial:
                    result = reaching(
                        attempt,
                        call,
                        base_url=self.config.base_url,
                        waits=self.connect_waits,
                        reached=self.transport.reached,
                        gave_up=self.gave_up,
                        log=self.log,
                    )
        except tenacity.RetryError as exhausted:
            reason = exhausted.last_attempt.exception()
            raise self._exhausted(call, reason, attempts, time.monotonic() - started) from None
        return result

    def _exhausted(
        self, call: Call, reason: BaseException | None, attempts: int, seconds: float
    ) -> ApiRequestError | TokenRejectedError:
        if isinstance(reason, TransientFailure) and reason.token_refused:
            return TokenRejectedError(
                f"{call.method} {call.endpoint}: drchrono refused (HTTP 401) every access "
                f"token it issued, {attempts} times over; check the application's scopes "
                "and that it is still authorized"
            )
        if isinstance(reason, TransientFailure) and reason.unreachable:
            # The API answered earlier in this run, then stopped taking connections.
            message = unreachable_message(self.config.base_url, reason.reason, attempts, seconds)
            return ApiUnreachableError(f"{call.method} {call.endpoint}: {message}")
        return ApiRequestError(
            f"{call.method} {call.endpoint} failed after {attempts} attempts: {reason}"
        )

    def _before_retry(self, call: Call, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        if isinstance(failure, TransientFailure) and failure.throttled:
            # The quota is the practice's: every user of the ledger waits, not this thread only.
            self.budget.pause(seconds)
        self.log.warning(
            f"{call.method} {call.endpoint}: {failure}; "
            f"retry {state.attempt_number}/{self.config.max_attempts - 1} in {seconds:.1f}s"
        )
