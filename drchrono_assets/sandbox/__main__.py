"""Run the sandbox in the foreground: `python -m drchrono_assets.sandbox --help`."""

from __future__ import annotations

import argparse
import shlex
import signal
import threading
from collections.abc import Sequence
from datetime import date
from types import FrameType

from drchrono_assets.sandbox.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from drchrono_assets.sandbox.server import SandboxServer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m drchrono_assets.sandbox",
        description="A drchrono-compatible API server with deterministic synthetic data.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 6, 30))
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--access-token-ttl", type=float, default=172800)
    parser.add_argument(
        "--requests-per-hour", type=int, default=None, help="answer 429 over this budget"
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--refresh-token", default=None, help="initial refresh token (default: random)"
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until Ctrl-C (or SIGTERM), after printing the credentials to export."""
    args = parse_args(argv)
    server = SandboxServer(
        seed=args.seed,
        start=args.start,
        end=args.end,
        latency_ms=args.latency_ms,
        access_token_ttl=args.access_token_ttl,
        port=args.port,
        requests_per_hour=args.requests_per_hour,
        host=args.host,
        client_id=args.client_id,
        client_secret=args.client_secret,
        refresh_token=args.refresh_token,
        log_level=args.log_level,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        print(f"# drchrono sandbox serving at {server.url}  (Ctrl-C to stop)", flush=True)
        for name, value in server.env().items():
            print(f"export {name}={shlex.quote(value)}", flush=True)
        # Event.wait in a loop keeps the main thread responsive to signals.
        while not stopping.wait(0.5):
            pass
    print("# drchrono sandbox stopped", flush=True)


if __name__ == "__main__":
    main()
