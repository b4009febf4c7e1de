"""A drchrono-compatible sandbox API server with a deterministic synthetic practice.

Start one in-process with `SandboxServer(SandboxConfig(...))` (tests, notebooks) or
from a shell with `python -m drchrono_assets.sandbox`; point a client at its URL and
credentials. `SandboxConfig` holds every setting and its default.

By default the practice is frozen: generated once, changed only by writes. Give it a
`clock` (`--clock ISO`) and it evolves like a real one, served as of the clock's
instant, which tests move forward (`state.clock`, `POST /_sandbox/clock`): see
`practice` and `evolution`. `size=PracticeSize.LARGE` (`--size large`) serves a busy
practice instead of the small default: 8 doctors, 5,000 patients, ~100 visits a weekday.
"""

from drchrono_assets.sandbox.clock import SandboxClock
from drchrono_assets.sandbox.config import SandboxConfig
from drchrono_assets.sandbox.generate.size import PracticeSize
from drchrono_assets.sandbox.server import SandboxServer
from drchrono_assets.sandbox.state import SandboxState

__all__ = ["PracticeSize", "SandboxClock", "SandboxConfig", "SandboxServer", "SandboxState"]
