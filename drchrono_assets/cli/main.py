"""``drchrono-assets COMMAND ...``: one entry point for every command of the package.

Each command parses its own arguments (``drchrono-assets auth --help``); this module only
picks the command and hands it the rest of the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROG = "drchrono-assets"


# Each command imports its module when it runs: ``auth`` must start without loading Dagster
# or the sandbox's web server.
def _auth(argv: list[str]) -> int:
    from drchrono_assets.cli import auth

    return auth.main(argv)


def _demo(argv: list[str]) -> None:
    from drchrono_assets.cli import demo

    demo.main(argv)


def _ui(argv: list[str]) -> None:
    from drchrono_assets.cli import demo_ui

    demo_ui.main(argv)


def _sandbox(argv: list[str]) -> None:
    from drchrono_sandbox import __main__ as sandbox

    sandbox.main(argv, prog=f"{PROG} sandbox")


@dataclass(frozen=True)
class Command:
    """A command: its one-line help, and what runs it on the rest of the command line
    (its exit code; None is 0)."""

    help: str
    run: Callable[[list[str]], int | None]


COMMANDS: dict[str, Command] = {
    "auth": Command("connect a drchrono account: login, status", _auth),
    "demo": Command("materialize a week of every asset from the bundled sandbox API", _demo),
    "ui": Command("the Dagster UI on a live sandbox practice, until Ctrl-C", _ui),
    "sandbox": Command("serve the bundled drchrono-compatible sandbox API", _sandbox),
}


def build_parser() -> argparse.ArgumentParser:
    """The command names; each command's own parser reads the arguments after its name."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="drchrono EHR data as date-partitioned Dagster assets on Parquet.",
        epilog=f"`{PROG} COMMAND --help` shows a command's options.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        # No options of its own (not even --help): all of them are the command's.
        commands.add_parser(name, help=command.help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named first in ``argv`` (default: the process's arguments)."""
    args, rest = build_parser().parse_known_args(argv)
    return COMMANDS[args.command].run(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
