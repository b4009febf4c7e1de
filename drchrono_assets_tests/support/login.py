"""``drchrono-assets auth login`` as a child process whose output is read as it comes."""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass, field

from drchrono_assets_tests.support.processes import DRCHRONO_ASSETS

AUTH = [DRCHRONO_ASSETS, "auth"]


@dataclass
class LoginProcess:
    """A running ``auth login`` whose stdout is read on a thread, line by line."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    stdout: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def authorize_url(self, timeout: float = 15.0) -> str:
        """The authorize URL, once the process printed it (it listens by then)."""
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"login exited early: {self.finish()}")
            self.stdout.append(line)
            if "/o/authorize/" in line:
                return line.strip()

    def finish(self, timeout: float = 15.0) -> tuple[int, str, str]:
        """Exit code, all of stdout and stderr."""
        returncode = self.process.wait(timeout=timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.stdout.append(line)
        assert self.process.stderr is not None
        return returncode, "".join(self.stdout), self.process.stderr.read()
