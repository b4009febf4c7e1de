"""`SandboxServer`: the sandbox app served by uvicorn on a background thread."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date, datetime
from types import TracebackType
from typing import Literal

import uvicorn

from drchrono_assets.sandbox.app import create_app
from drchrono_assets.sandbox.faults import FaultRates
from drchrono_assets.sandbox.oauth_server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from drchrono_assets.sandbox.state import SandboxState
from drchrono_assets.sandbox.synthetic import SMALL, PracticeSize

STARTUP_TIMEOUT_SECONDS = 10.0


class SandboxServer:
    """A drchrono-compatible API server on `host` (loopback by default).

    Use it as a context manager (or call `start()` / `stop()`)::

        with SandboxServer(seed=7, start=date(2024, 1, 1), end=date(2024, 6, 30)) as sandbox:
            requests.post(f"{sandbox.url}/o/token/", data={...})

    `port=0` picks a free port. The data depends only on `seed`, `start`, `end`, `size`
    (`PracticeSize.LARGE` for a busy practice) and `today` (default the real date); the
    refresh token is random per server unless `refresh_token` is given.
    `access_token_max_uses` makes access tokens expire after that many requests too,
    `chaos` turns random faults on, and `http` picks uvicorn's HTTP implementation.
    `state` is usable before `start()`.

    `clock` (aware, or naive in `timezone`, the practice's IANA time zone) turns evolving
    mode on: the practice is served as of that instant, which only moves when told to
    (`state.clock.advance(...)` or `POST /_sandbox/clock`); `today` is then ignored. Every
    answer's `Date` header is the clock's time (the real time in frozen mode).
    """

    def __init__(
        self,
        seed: int = 7,
        start: date = date(2024, 1, 1),
        end: date = date(2024, 6, 30),
        latency_ms: float = 0,
        access_token_ttl: float = 172800,
        port: int = 0,
        requests_per_hour: int | None = None,
        *,
        host: str = "127.0.0.1",
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str | None = None,
        today: date | None = None,
        log_level: str = "warning",
        access_token_max_uses: int | None = None,
        chaos: FaultRates | None = None,
        http: Literal["auto", "h11", "httptools"] = "auto",
        clock: datetime | None = None,
        timezone: str = "UTC",
        size: PracticeSize = SMALL,
    ) -> None:
        self.host = host
        self.port = port
        self.log_level = log_level
        self.http = http
        self.state = SandboxState(
            seed=seed,
            start=start,
            end=end,
            today=today,
            latency_ms=latency_ms,
            access_token_ttl=access_token_ttl,
            requests_per_hour=requests_per_hour,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            access_token_max_uses=access_token_max_uses,
            chaos=chaos,
            clock=clock,
            timezone=timezone,
            size=size,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # Credentials ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://<host>:<port>` of the running server (no trailing slash)."""
        if self._socket is None:
            raise RuntimeError("the sandbox server is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 literal
        return f"http://{host}:{self.port}"

    @property
    def client_id(self) -> str:
        return self.state.oauth.client_id

    @property
    def client_secret(self) -> str:
        return self.state.oauth.client_secret

    @property
    def initial_refresh_token(self) -> str:
        """The refresh token a client starts from (single-use, like every one)."""
        return self.state.oauth.initial_refresh_token

    def env(self) -> dict[str, str]:
        """The environment a client needs to talk to this sandbox."""
        return {
            "DRCHRONO_BASE_URL": self.url,
            "DRCHRONO_CLIENT_ID": self.client_id,
            "DRCHRONO_CLIENT_SECRET": self.client_secret,
            "DRCHRONO_REFRESH_TOKEN": self.initial_refresh_token,
        }

    # Lifecycle -----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind, serve on a daemon thread, and return once requests are answered."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already started")
        # Bind here, not in uvicorn, so port=0 is resolved before anyone needs the URL.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.state.closing.clear()
        self.state.practice.set_base_url(self.url)
        config = uvicorn.Config(
            create_app(self.state),
            log_level=self.log_level,
            access_log=False,
            http=self.http,
            # The app stamps Date itself, from the sandbox clock.
            date_header=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="drchrono-sandbox",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread (slow answers are cut short)."""
        self.state.closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
