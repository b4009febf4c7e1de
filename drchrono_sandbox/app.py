"""The sandbox's HTTP routes: OAuth, the ten API resources, writes, and admin controls.

`create_app(state)` returns the ASGI app; uvicorn serves it (see `server.py`).
Every `/api/` request is served from the practice its access token belongs to (see
`oauth_server`: `/o/authorize/?practice=<index>` picks it).
Admin routes under `/_sandbox/` need no token and are not counted in the statistics:
they let a test that runs its client in another process arm faults, read counts,
revoke tokens, post payments and read or move the clock over HTTP.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from drchrono_sandbox import filters, writes
from drchrono_sandbox.faults import FAULT_FIELDS, FaultRates, json_fields
from drchrono_sandbox.middleware import SandboxMiddleware
from drchrono_sandbox.oauth_server import InvalidAccessToken, OAuthError, bearer_token
from drchrono_sandbox.pagination import paginate
from drchrono_sandbox.practice import ConflictError, Practice
from drchrono_sandbox.resource_table import BY_NAME, RESOURCES
from drchrono_sandbox.state import SandboxState

Endpoint = Callable[[Request], Awaitable[Response]]
#: An `/api/` endpoint: the request, and the practice of its access token.
ApiEndpoint = Callable[[Request, Practice], Awaitable[Response]]
NOT_FOUND = {"detail": "Not found."}
#: Token responses must not be cached (RFC 6749, section 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status, headers=headers)


async def _payload(request: Request) -> dict[str, Any]:
    """A write's fields from a JSON, form-encoded or multipart body."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = await request.json()
        except ValueError as error:
            raise writes.ValidationError({"detail": [f"JSON parse error - {error}"]}) from None
        if not isinstance(data, dict):
            raise writes.ValidationError(
                {"non_field_errors": ["Invalid data. Expected a dictionary."]}
            )
        return data
    form = await request.form()
    return {key: form[key] for key in form}


def _redirect_with(uri: str, **params: str) -> str:
    """`uri` with query parameters added (keeping the ones it has)."""
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class _Routes:
    """The endpoints, bound to one `SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # Guards --------------------------------------------------------------------------

    def api(self, handler: ApiEndpoint) -> Endpoint:
        """Require a live bearer token, serve the request from its practice, and turn
        validation errors into 400s."""

        async def endpoint(request: Request) -> Response:
            token = bearer_token(request.headers.get("authorization"))
            try:
                practice = self.state.practices[self.state.oauth.use_access_token(token)]
            except InvalidAccessToken as error:
                headers = {"WWW-Authenticate": 'Bearer realm="api"'}
                return _error({"detail": error.detail}, 401, headers)
            try:
                return await handler(request, practice)
            except (filters.QueryError, writes.ValidationError) as error:
                return _error(error.errors, 400)

        return endpoint

    # OAuth ---------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """Auto-approve: redirect back at once with a fresh single-use code."""
        params = request.query_params
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
        if not self.state.oauth.known_client(client_id):
            return _error({"error": "invalid_client", "error_description": "Unknown client."}, 400)
        if not redirect_uri or not redirect_uri.startswith(("http://", "https://")):
            return _error(
                {
                    "error": "invalid_request",
                    "error_description": "Missing or invalid redirect_uri.",
                },
                400,
            )
        extra = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            error = {"error": "unsupported_response_type"}
            return RedirectResponse(_redirect_with(redirect_uri, **error, **extra), 302)
        assert client_id is not None
        try:
            practice = self.state.oauth.practice_index(params.get("practice"))
        except OAuthError as error:
            invalid = {"error": error.error, "error_description": error.description}
            return RedirectResponse(_redirect_with(redirect_uri, **invalid, **extra), 302)
        code = self.state.oauth.authorize(client_id, redirect_uri, params.get("scope"), practice)
        return RedirectResponse(_redirect_with(redirect_uri, code=code, **extra), 302)

    async def token(self, request: Request) -> Response:
        """`grant_type=refresh_token` (rotating) or `authorization_code`."""
        form = await request.form()
        fields = {key: str(form[key]) for key in form}
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        if client_id is None and request.headers.get("authorization", "").startswith("Basic "):
            # client_secret_basic: the credentials may come in the Authorization header.
            try:
                decoded = base64.b64decode(request.headers["authorization"][6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, binascii.Error):
                pass
        oauth, stats = self.state.oauth, self.state.stats
        try:
            oauth.check_client(client_id, client_secret)
            grant_type = fields.get("grant_type")
            if grant_type == "refresh_token":
                refresh_token = fields.get("refresh_token")
                if not refresh_token:
                    raise OAuthError(400, "invalid_request", "Missing refresh_token.")
                grant = oauth.refresh(refresh_token)
                stats.record_refresh_grant()
            elif grant_type == "authorization_code":
                code = fields.get("code")
                if not code:
                    raise OAuthError(400, "invalid_request", "Missing code.")
                grant = oauth.exchange_code(code, fields.get("redirect_uri"))
                stats.record_authorization_code_grant()
            else:
                raise OAuthError(400, "unsupported_grant_type")
        except OAuthError as error:
            if error.reused:
                stats.record_refresh_token_reuse()
            body = {"error": error.error}
            if error.description:
                body["error_description"] = error.description
            return _error(body, error.status, NO_STORE)
        return JSONResponse(grant.as_json(), headers=NO_STORE)

    # API -----------------------------------------------------------------------------

    async def collection(self, request: Request, practice: Practice) -> Response:
        """`GET` a page of a resource; `POST` creates appointments and documents."""
        resource = BY_NAME.get(request.path_params["resource"])
        if resource is None:
            return _error(NOT_FOUND, 404)
        if request.method == "POST":
            if resource.name == "appointments":
                return await self.create_appointment(request, practice)
            if resource.name == "documents":
                return await self.create_document(request, practice)
            return _error({"detail": 'Method "POST" not allowed.'}, 405)
        with practice.lock:
            items = filters.select(practice, resource, request.query_params)
            page, meta = paginate(items, request.url, request.query_params)
            results = practice.snapshot(page)
        return JSONResponse({**meta, "results": results})

    async def detail(self, request: Request, practice: Practice) -> Response:
        """One record; `/api/users/current` redirects to the account's user."""
        resource, record_id = request.path_params["resource"], request.path_params["id"]
        if resource not in RESOURCES:
            return _error(NOT_FOUND, 404)
        if resource == "users" and record_id == "current":
            return RedirectResponse(f"/api/users/{practice.account_user_id}", 302)
        with practice.lock:
            record = practice.get(resource, record_id)
            body = dict(record) if record is not None else None
        return JSONResponse(body) if body is not None else _error(NOT_FOUND, 404)

    async def create_appointment(self, request: Request, practice: Practice) -> Response:
        payload = await _payload(request)
        with practice.lock:
            fields = writes.validate_appointment(practice, payload)
            record = dict(practice.create_appointment(fields))
        return JSONResponse(record, 201)

    async def create_document(self, request: Request, practice: Practice) -> Response:
        form = await request.form()
        try:
            upload = form.get("document")
            fields: dict[str, Any] = {key: form[key] for key in form if key != "document"}
            errors: dict[str, list[str]] = {}
            try:
                with practice.lock:
                    checked = writes.validate_document(practice, fields)
            except writes.ValidationError as error:
                errors = error.errors
            if not isinstance(upload, UploadFile):
                errors["document"] = ["No file was submitted."]
            if errors:
                raise writes.ValidationError(errors)
            assert isinstance(upload, UploadFile)
            content = await upload.read()
            with practice.lock:
                record = practice.create_document(
                    doctor=checked["doctor"],
                    patient=checked["patient"],
                    description=checked["description"],
                    day=checked["day"],
                    metatags=checked["metatags"],
                    filename=upload.filename or "document",
                    content=content,
                    content_type=upload.content_type or "application/octet-stream",
                )
                body = dict(record)
        finally:
            await form.close()
        return JSONResponse(body, 201)

    async def apply_to_appointment(self, request: Request, practice: Practice) -> Response:
        """Give an appointment a reminder profile's reminders: 204, 400, 404 or 409."""
        profile_id = request.path_params["id"]
        if practice.get("reminder_profiles", profile_id) is None:
            return _error(NOT_FOUND, 404)
        payload = await _payload(request)
        with practice.lock:
            appointment_id = writes.validate_appointment_reference(practice, payload)
            try:
                practice.apply_reminder_profile(int(profile_id), appointment_id)
            except ConflictError as error:
                return _error({"detail": str(error)}, 409)
        return Response(status_code=204)

    # Files ----------------------------------------------------------------------------

    async def media(self, request: Request) -> Response:
        """The file behind a document's URL (seeded ones are a placeholder PDF), of
        whichever practice has it (document ids, in the paths, never collide)."""
        path = request.url.path
        for practice in self.state.practices:
            stored = practice.get_file(path)
            if stored is not None:
                return Response(stored.content, media_type=stored.content_type)
        return _error(NOT_FOUND, 404)

    # Admin -----------------------------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats.snapshot())

    async def stats_reset(self, request: Request) -> Response:
        self.state.stats.reset()
        return JSONResponse(self.state.stats.snapshot())

    async def faults(self, request: Request) -> Response:
        """`POST` arms a fault (body: `faults.add` keywords), `GET` lists, `DELETE` clears."""
        injector = self.state.faults
        if request.method == "GET":
            return JSONResponse({"faults": [fault.as_json() for fault in injector.pending()]})
        if request.method == "DELETE":
            injector.clear()
            return Response(status_code=204)
        try:
            fault = injector.add(**json_fields(await request.json(), FAULT_FIELDS))
        except (ValueError, TypeError) as error:
            return _error({"detail": str(error)}, 400)
        return JSONResponse({"fault": fault.as_json()}, 201)

    async def chaos(self, request: Request) -> Response:
        """`POST` turns random faults on (body: `FaultRates` fields), `GET` shows them,
        `DELETE` turns them off."""
        if request.method == "DELETE":
            self.state.chaos = None
            return Response(status_code=204)
        if request.method == "POST":
            try:
                self.state.chaos = FaultRates.from_json(await request.json())
            except ValueError as error:
                return _error({"detail": str(error)}, 400)
        rates = self.state.chaos
        return JSONResponse({"chaos": rates.as_json() if rates is not None else None})

    async def revoke(self, request: Request) -> Response:
        return JSONResponse({"revoked": self.state.oauth.revoke_access_tokens()})

    async def post_payment(self, request: Request) -> Response:
        """`practice.post_payment` over HTTP: `{"transaction_id", "ins1_paid", "pt_paid"}`,
        and `"practice"`, the index of the line item's practice (default 0; unknown: 404)."""
        try:
            body = await request.json()
            amounts = {
                name: Decimal(str(body.get(name, "0")))
                for name in ("ins1_paid", "ins2_paid", "ins3_paid", "pt_paid")
            }
            practice = self.state.practice_at(int(body.get("practice", 0)))
            record = practice.post_payment(int(body["transaction_id"]), **amounts)
        except KeyError:
            return _error(NOT_FOUND, 404)
        except (ValueError, TypeError, InvalidOperation, AttributeError) as error:
            return _error({"detail": f"Invalid payment: {error}"}, 400)
        return JSONResponse(dict(record))

    async def clock(self, request: Request) -> Response:
        """`GET` reads the clock; `POST` moves it forward, by `{"advance_seconds": s}` or
        to `{"to": "<ISO>"}` (naive: practice-local). 400 when backwards or frozen."""
        clock = self.state.clock
        if request.method == "POST":
            try:
                body = await request.json()
                if not isinstance(body, dict) or len(body.keys() & {"advance_seconds", "to"}) != 1:
                    raise ValueError('give one of "advance_seconds" or "to"')
                if "to" in body:
                    clock.set(datetime.fromisoformat(body["to"]))
                else:
                    clock.advance(timedelta(seconds=float(body["advance_seconds"])))
            except (ValueError, TypeError, OverflowError) as error:
                return _error({"detail": str(error)}, 400)
        return JSONResponse(clock.as_json())

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "service": "drchrono sandbox",
                "api": f"{request.base_url}api/",
                "resources": list(RESOURCES),
            }
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Framework errors (unknown path, wrong method) as DRF-style JSON."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body: dict[str, Any] = NOT_FOUND
    elif exc.status_code == 405:
        body = {"detail": f'Method "{request.method}" not allowed.'}
    else:
        body = {"detail": exc.detail}
    return JSONResponse(body, exc.status_code, headers=exc.headers)


def _both(path: str, endpoint: Endpoint, methods: list[str]) -> list[Route]:
    """A route with and without its trailing slash (clients write both)."""
    return [Route(path, endpoint, methods=methods), Route(path + "/", endpoint, methods=methods)]


def create_app(state: SandboxState) -> ASGIApp:
    """The sandbox's ASGI application over `state`."""
    r = _Routes(state)
    routes = [
        Route("/", r.index, methods=["GET"]),
        *_both("/o/authorize", r.authorize, ["GET"]),
        *_both("/o/token", r.token, ["POST"]),
        *_both(
            "/api/reminder_profiles/{id}/apply_to_appointment",
            r.api(r.apply_to_appointment),
            ["POST"],
        ),
        *_both("/api/{resource}", r.api(r.collection), ["GET", "POST"]),
        *_both("/api/{resource}/{id}", r.api(r.detail), ["GET"]),
        Route("/site_media/uploaded_media/{path:path}", r.media, methods=["GET"]),
        Route("/_sandbox/stats", r.stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", r.stats_reset, methods=["POST"]),
        Route("/_sandbox/faults", r.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/chaos", r.chaos, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/revoke-access-tokens", r.revoke, methods=["POST"]),
        Route("/_sandbox/post-payment", r.post_payment, methods=["POST"]),
        Route("/_sandbox/clock", r.clock, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    return SandboxMiddleware(app, state)
