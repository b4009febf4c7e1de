"""A Dagster CLI command run with its whole output in a log file, and on the console only
each step as it finishes, several to a line (the demo's progress)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LOG_NAME = "demo-run.log"  # beside the instance: Dagster's whole log of the demo's run
CHECK_STEP = re.compile(r"^(\w+?__)?(\w+?)_\2_")  # [practice__]asset_check
FRESHNESS_STEP = re.compile(r"^freshness_check_\w+$")  # Dagster names it by a hash
STEP_DONE = re.compile(r'(STEP_SUCCESS|STEP_FAILURE) - .*step "([^"]+)"(?: in ([\d.]+m?s))?')


def run_logged(command: list[str], env: dict[str, str], log_path: Path) -> bool:
    """Runs the Dagster CLI with its output in ``log_path``; prints each step as it ends."""
    executable = Path(sys.executable).parent / command[0]
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [str(executable), *command[1:]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        assert process.stdout is not None
        progress = Progress()
        for line in process.stdout:
            log.write(line)
            step = STEP_DONE.search(line)
            if step:
                verdict, name, _ = step.groups()
                # A check's step is keyed "<asset>_<check>"; its check names the asset already.
                name = CHECK_STEP.sub(r"check \1\2_", FRESHNESS_STEP.sub("freshness checks", name))
                progress.add(name if verdict == "STEP_SUCCESS" else f"{name} FAILED")
        progress.end()
    return process.returncode == 0


class Progress:
    """Finished steps, printed as they come, several to a line to keep the summary short."""

    def __init__(self, indent: str = "    ", width: int = 96) -> None:
        self.indent, self.width, self.column = indent, width, 0

    def add(self, item: str) -> None:
        if self.column and self.column + len(item) + 2 > self.width:
            self.end()
        text = f"{self.indent}{item}" if not self.column else f", {item}"
        print(text, end="", flush=True)
        self.column += len(text)

    def end(self) -> None:
        if self.column:
            print(flush=True)
            self.column = 0
