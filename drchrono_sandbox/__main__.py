"""Run the sandbox in the foreground: `python -m drchrono_sandbox --help` (or, where
drchrono_assets is installed, `drchrono-assets sandbox --help`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import threading
from collections.abc import Sequence
from datetime import date, datetime
from types import FrameType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drchrono_sandbox.config import DEFAULTS, SandboxConfig
from drchrono_sandbox.faults import FaultRates
from drchrono_sandbox.generate.size import SIZES, PracticeSize
from drchrono_sandbox.server import SandboxServer


def chaos_rates(text: str) -> FaultRates:
    """`--chaos`: `FaultRates` fields as a JSON object."""
    try:
        return FaultRates.from_json(json.loads(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def practice_size(text: str) -> PracticeSize:
    """`--size`: a preset practice size by name."""
    try:
        return PracticeSize.from_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def practice_count(text: str) -> int:
    """`--practices`: how many practices, at least one."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"practices must be a whole number >= 1, not {text!r}")
    return count


def time_zone(text: str) -> str:
    """`--timezone`: an IANA time zone name."""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None
    return text


#: The command this module is run as, unless a caller names another (`drchrono-assets sandbox`).
PROG = "python -m drchrono_sandbox"


def parse_args(argv: Sequence[str] | None = None, prog: str = PROG) -> argparse.Namespace:
    """The command line's flags; unset ones take `SandboxConfig`'s defaults, except that
    the command line serves on port 8765 and logs at info level. `prog` names the command
    in the help."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A drchrono-compatible API server with deterministic synthetic data.",
    )
    parser.add_argument("--host", default=DEFAULTS.host)
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULTS.start)
    parser.add_argument("--end", type=date.fromisoformat, default=DEFAULTS.end)
    parser.add_argument(
        "--size",
        type=practice_size,
        default=DEFAULTS.size,
        metavar="{" + ",".join(SIZES) + "}",
        help="practice size: small (3 doctors, 300 patients) or large (8 doctors, 5,000 "
        "patients, ~100 appointments a weekday)",
    )
    parser.add_argument(
        "--patients", type=int, default=None, help="the size's patient count, overridden"
    )
    parser.add_argument(
        "--practices",
        type=practice_count,
        default=DEFAULTS.practices,
        metavar="N",
        help="serve N practices through the one application: the refresh token printed is "
        "practice 0's, /o/authorize/?practice=<i> grants practice i's",
    )
    parser.add_argument("--latency-ms", type=float, default=DEFAULTS.latency_ms)
    parser.add_argument("--access-token-ttl", type=float, default=DEFAULTS.access_token_ttl)
    parser.add_argument(
        "--access-token-max-uses", type=int, default=None, help="expire access tokens after N uses"
    )
    parser.add_argument(
        "--requests-per-hour", type=int, default=None, help="answer 429 over this budget"
    )
    parser.add_argument("--client-id", default=DEFAULTS.client_id)
    parser.add_argument("--client-secret", default=DEFAULTS.client_secret)
    parser.add_argument(
        "--refresh-token", default=None, help="initial refresh token (default: random)"
    )
    parser.add_argument(
        "--chaos",
        type=chaos_rates,
        default=None,
        metavar="JSON",
        help='random faults, e.g. \'{"seed": 1, "server_error": 0.05, "cut_body": 0.02}\'',
    )
    parser.add_argument(
        "--clock",
        type=datetime.fromisoformat,
        default=None,
        metavar="ISO",
        help="evolving mode: serve the practice as of this instant (naive: in --timezone)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="evolving mode on the real time: the practice changes as days pass (no --clock)",
    )
    parser.add_argument(
        "--timezone",
        type=time_zone,
        default=DEFAULTS.timezone,
        help="the practice's IANA time zone",
    )
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The sandbox the command line asks for: each flag sets the field of its name (those
    without a flag, `today` and `http`, keep their defaults)."""
    flags = vars(args)
    names = [field.name for field in dataclasses.fields(SandboxConfig)]
    settings = {name: flags[name] for name in names if name in flags}
    if args.patients:
        settings["size"] = dataclasses.replace(args.size, patients=args.patients)
    return SandboxConfig(**settings)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> None:
    """Serve until Ctrl-C (or SIGTERM), after printing the credentials to export."""
    server = SandboxServer(config_from_args(parse_args(argv, prog)))
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        print(f"# drchrono sandbox serving at {server.url}  (Ctrl-C to stop)", flush=True)
        for name, value in server.env().items():
            print(f"export {name}={shlex.quote(value)}", flush=True)
        if server.config.practices > 1:
            print(
                f"# {server.config.practices} practices: the refresh token is practice 0's; "
                f"authorize with {server.url}/o/authorize/?practice=<index>&... for another's",
                flush=True,
            )
        # Event.wait in a loop keeps the main thread responsive to signals.
        while not stopping.wait(0.5):
            pass
    print("# drchrono sandbox stopped", flush=True)


if __name__ == "__main__":
    main()
