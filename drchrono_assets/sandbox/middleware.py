"""The ASGI layer in front of the routes: statistics, latency, faults, hourly budget.

It wraps the whole Starlette app (outside its error middleware), so every answer to
an `/api/` or `/o/` request is counted, even a 500 or one a fault made up.
"""

from __future__ import annotations

import asyncio
import time

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drchrono_assets.sandbox.faults import Fault
from drchrono_assets.sandbox.state import SandboxState

#: Paths whose requests are counted, delayed, faulted and (for /api/) budgeted.
COUNTED_PREFIXES = ("/api/", "/o/")
#: A page cut off mid-body: what a proxy or a dying worker may hand a client.
INVALID_JSON_BODY = b'{"count": 3, "next": null, "previous": null, "results": [{"id": 1, "na'


async def pause(state: SandboxState, seconds: float) -> None:
    """Sleep without blocking other requests; cut short when the server stops."""
    deadline = time.monotonic() + seconds
    while not state.closing.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.05))


def fault_response(fault: Fault) -> Response | None:
    """The made-up answer of a fault (None for a pure delay: answer normally)."""
    if fault.invalid_json:
        return Response(INVALID_JSON_BODY, 200, media_type="application/json")
    if fault.malformed_page:
        # The key drift the v4 description shows: `data` where clients read `results`.
        return JSONResponse({"count": 1, "next": None, "previous": None, "data": []})
    if fault.status is None:
        return None
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        seconds = fault.retry_after
        headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
    if fault.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
        detail = "Invalid token."
    elif fault.status == 429:
        detail = "Request was throttled."
    else:
        detail = f"Sandbox fault: HTTP {fault.status}."
    if fault.status in (204, 304) or fault.status < 200:
        return Response(status_code=fault.status, headers=headers)
    return JSONResponse({"detail": detail}, fault.status, headers=headers)


class SandboxMiddleware:
    """Counts, slows, faults and budgets `/api/` and `/o/` requests."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(COUNTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = self.state
        state.stats.record_request(path)

        async def send_counted(message: Message) -> None:
            # Counted before the client can see the answer: stats read right after a
            # response never miss it.
            if message["type"] == "http.response.start":
                state.stats.record_status(message["status"])
            await send(message)

        if state.latency_ms:
            await pause(state, state.latency_ms / 1000)
        response: Response | None = None
        fault = state.faults.match(path)
        if fault is not None:
            if fault.delay_seconds:
                await pause(state, fault.delay_seconds)
            response = fault_response(fault)
        budget = state.budget
        if response is None and path.startswith("/api/") and budget and not budget.allow():
            # Like the real API: a bare 429, no Retry-After nor X-RateLimit-* headers.
            response = JSONResponse({"detail": "Request was throttled."}, 429)
        if response is not None:
            await response(scope, receive, send_counted)
        else:
            await self.app(scope, receive, send_counted)
