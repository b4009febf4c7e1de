"""`SandboxServer`: the sandbox app served by uvicorn on a background thread."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from drchrono_sandbox.app import create_app
from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.state import SandboxState

STARTUP_TIMEOUT_SECONDS = 10.0


class SandboxServer:
    """A drchrono-compatible API server on `config.host` (loopback by default).

    Use it as a context manager (or call `start()` / `stop()`)::

        config = SandboxConfig(start=date(2024, 3, 1), end=date(2024, 3, 31))
        with SandboxServer(config) as sandbox:
            requests.post(f"{sandbox.url}/o/token/", data={...})

    `config` holds every setting (see `SandboxConfig`); `SandboxServer()` serves the
    defaults. `port` is the bound one once started (`config.port=0` picks a free port).
    `state` is usable before `start()`. Every answer's `Date` header is the sandbox
    clock's time (the real time unless `config.clock` turns evolving mode on).
    """

    def __init__(self, config: SandboxConfig = DEFAULTS) -> None:
        self.config = config
        self.port = config.port
        self.state = SandboxState(config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # Credentials ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """`http://<host>:<port>` of the running server (no trailing slash)."""
        if self._socket is None:
            raise RuntimeError("the sandbox server is not started")
        host = self.config.host
        host = f"[{host}]" if ":" in host else host  # IPv6 literal
        return f"http://{host}:{self.port}"

    @property
    def client_id(self) -> str:
        return self.state.oauth.client_id

    @property
    def client_secret(self) -> str:
        return self.state.oauth.client_secret

    @property
    def initial_refresh_token(self) -> str:
        """The refresh token a client starts from (single-use, like every one): practice
        0's (other practices' come from the authorization flow, see `oauth_server`)."""
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
        sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.state.closing.clear()
        self.state.set_base_url(self.url)
        config = uvicorn.Config(
            create_app(self.state),
            log_level=self.config.log_level,
            access_log=False,
            http=self.config.http,
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
                raise RuntimeError(
                    f"the sandbox server did not start on {self.config.host}:{self.port}"
                )
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
