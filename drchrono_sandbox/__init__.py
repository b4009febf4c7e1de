"""A drchrono-compatible sandbox API server with a deterministic synthetic practice.

Start one in-process with `SandboxServer(SandboxConfig(...))` (tests, notebooks) or
from a shell with `python -m drchrono_sandbox`; point a client at its URL and
credentials. `SandboxConfig` holds every setting and its default.

By default the practice is frozen: generated once, changed only by writes. Give it a
`clock` (`--clock ISO`) and it evolves like a real one, served as of the clock's
instant, which tests move forward (`state.clock`, `POST /_sandbox/clock`): see
`practice` and `evolution`. `size=PracticeSize.LARGE` (`--size large`) serves a busy
practice instead of the small default: 8 doctors, 5,000 patients, ~100 visits a weekday.
`practices=N` (`--practices N`) serves N practices through the one API application, as
drchrono does for a billing company: each access token reads and writes its own
practice's records (`/o/authorize/?practice=<index>` picks it; see `oauth_server`), and
the hourly budget counts them all together. The budget's hours and the request counts'
times are the sandbox clock's: a simulation's hours, when tests move it.

It imports nothing from drchrono_assets, the package it is a test API for: a test
double built from the package's own catalog would agree with a wrong catalog entry.
drchrono_assets_tests checks that its resource table and the catalog name the same
resources at the same paths.
"""

from drchrono_sandbox.clock import SandboxClock
from drchrono_sandbox.config import SandboxConfig
from drchrono_sandbox.generate.size import PracticeSize
from drchrono_sandbox.server import SandboxServer
from drchrono_sandbox.state import SandboxState

__all__ = ["PracticeSize", "SandboxClock", "SandboxConfig", "SandboxServer", "SandboxState"]
