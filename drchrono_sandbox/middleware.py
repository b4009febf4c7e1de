"""The ASGI layer in front of the routes: statistics (by practice too), latency, faults
(armed and random), hourly budget (one for the application: every practice's requests
spend it), and the `Date` header.

It wraps the whole Starlette app (outside its error middleware), so every answer to
an `/api/` or `/o/` request is counted, even a 500 or one a fault made up, and every
answer is dated by the sandbox clock (uvicorn's own `Date` is turned off).
"""

from __future__ import annotations

import asyncio
import json
import time
from http import HTTPStatus

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drchrono_sandbox.faults import Fault
from drchrono_sandbox.oauth_server import bearer_token
from drchrono_sandbox.state import SandboxState

#: Paths whose requests are counted, delayed, faulted and (for /api/) budgeted.
COUNTED_PREFIXES = ("/api/", "/o/")
#: A whole page, which the body faults cut short.
PAGE_BODY = json.dumps(
    {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [{"id": 1, "name": "One"}, {"id": 2, "name": "Two"}, {"id": 3, "name": "Three"}],
    }
).encode()
#: A page cut off mid-body: what a proxy or a dying worker may hand a client.
INVALID_JSON_BODY = PAGE_BODY[:70]
#: `cut_body`'s raw answer: the same cut, but under a Content-Length for the whole page.
CUT_BODY_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(PAGE_BODY), INVALID_JSON_BODY)
)
#: Statuses a proxy in front of the API answers itself, with an HTML page.
PROXY_STATUSES = (502, 503, 504)
#: How long to wait for uvicorn to notice a connection the middleware closed.
DISCONNECT_WAIT_SECONDS = 1.0


async def pause(state: SandboxState, seconds: float) -> None:
    """Sleep without blocking other requests; cut short when the server stops."""
    deadline = time.monotonic() + seconds
    while not state.closing.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.05))


async def break_connection(receive: Receive, send: Send, data: bytes = b"") -> None:
    """Write `data` raw to the client and close the connection, behind uvicorn's back.

    ASGI cannot say "close without answering" or "send less than Content-Length", so
    this reaches into uvicorn (0.54, h11 and httptools alike): the ASGI `send` this
    outermost middleware gets is the bound `RequestResponseCycle.send`, whose cycle
    holds the connection's asyncio transport and a `disconnected` flag.
    """
    cycle = getattr(send, "__self__", None)
    if cycle is None or not hasattr(cycle, "transport"):
        raise RuntimeError("cut_body and drop_connection faults need the uvicorn server")
    # Read the request to its end first: closing a socket with unread input sends a TCP
    # reset, which may destroy the bytes written here before the client reads them.
    while (await receive()).get("more_body"):
        pass
    if data:
        cycle.transport.write(data)
    cycle.transport.close()
    # uvicorn marks the cycle disconnected once the transport reports the loss (a loop
    # turn or two later); returning before that would make it log an error and try a 500.
    deadline = time.monotonic() + DISCONNECT_WAIT_SECONDS
    while not cycle.disconnected and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


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
    if fault.status in PROXY_STATUSES:
        title = f"{fault.status} {HTTPStatus(fault.status).phrase}"
        return HTMLResponse(f"<html><body><h1>{title}</h1></body></html>", fault.status, headers)
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

    def dated(self, send: Send) -> Send:
        """`send` with a `Date` header from the sandbox clock on the response."""

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp = (b"date", self.state.clock.http_date().encode("latin-1"))
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                message = {**message, "headers": [*headers, stamp]}
            await send(message)

        return send_dated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send_dated = self.dated(send)
        if not path.startswith(COUNTED_PREFIXES):
            await self.app(scope, receive, send_dated)
            return
        state = self.state
        practice = None
        if path.startswith("/api/"):
            token = bearer_token(Headers(scope=scope).get("authorization"))
            practice = state.oauth.practice_of(token)
        arrival = state.stats.record_request(path, practice)

        async def send_counted(message: Message) -> None:
            # Counted before the client can see the answer: stats read right after a
            # response never miss it.
            if message["type"] == "http.response.start":
                state.stats.record_status(arrival, message["status"])
            await send_dated(message)

        if state.latency_ms:
            await pause(state, state.latency_ms / 1000)
        response: Response | None = None
        # Armed faults first: a test that arms one gets it even while chaos is on.
        query = scope.get("query_string", b"").decode("latin-1")
        request_key = f"{path}?{query}" if query else path
        fault = state.faults.match(path) or state.chaos_fault(path, request_key)
        if fault is not None:
            if fault.delay_seconds:
                await pause(state, fault.delay_seconds)
            if fault.cut_body or fault.drop_connection:
                state.stats.record_fault()
                if fault.cut_body:
                    state.stats.record_status(arrival, 200)
                await break_connection(receive, send, CUT_BODY_RESPONSE if fault.cut_body else b"")
                return
            response = fault_response(fault)
            if response is not None:
                state.stats.record_fault()
        budget = state.budget
        if response is None and path.startswith("/api/") and budget and not budget.allow():
            # Like the real API: a bare 429, no Retry-After nor X-RateLimit-* headers.
            response = JSONResponse({"detail": "Request was throttled."}, 429)
        if response is not None:
            await response(scope, receive, send_counted)
        else:
            await self.app(scope, receive, send_counted)
