"""A drchrono-compatible sandbox API server with a deterministic synthetic practice.

Start one in-process with `SandboxServer` (tests, notebooks) or from a shell with
`python -m drchrono_assets.sandbox`; point a client at its URL and credentials.
"""

from drchrono_assets.sandbox.server import SandboxServer
from drchrono_assets.sandbox.state import SandboxState

__all__ = ["SandboxServer", "SandboxState"]
