"""`SandboxConfig`: every setting of one sandbox, and its defaults, in one place.

The command line builds one from its flags; `SandboxServer`, `SandboxState`, `Practice`
and `OAuthState` each read the fields they need from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from drchrono_sandbox.faults import FaultRates
from drchrono_sandbox.generate.size import SMALL, PracticeSize


@dataclass(frozen=True)
class SandboxConfig:
    """How one sandbox is set up; the defaults are the sandbox's defaults.

    The practice: the data depends only on `seed`, the inclusive `start` to `end` range,
    `size` (`PracticeSize.LARGE` for a busy practice) and `today` (None: the real date),
    which splits past days (outcomes, documents, billing) from future ones. `clock`
    (aware, or naive in `timezone`, the practice's IANA time zone) turns evolving mode
    on: the practice is served as of that instant, and `today` is ignored. `live` turns
    it on with the real time as the clock (no `clock`): the practice changes as days pass.

    `practices`: how many practices the sandbox serves through its one application, as
    drchrono does for a billing company connected to many. Practice 0 is the one above;
    practice `i` is generated from `seed + 1000 * i`, with ids that never collide with
    another's (see `generate.offset`). All share the clock, time zone and date range.

    OAuth: the one application's `client_id` and `client_secret`; `refresh_token` is the
    one a client starts from (None: random per sandbox), practice 0's; a token of another
    practice comes from the authorization flow (`oauth_server`). Access tokens expire
    after `access_token_ttl` seconds or, when `access_token_max_uses` is set, that many
    uses.

    Misbehaviour: `latency_ms` before every `/api/` and `/o/` answer, a 429 over
    `requests_per_hour` (None: no budget; one budget for the application, all its
    practices' requests together), random faults at the `chaos` rates (None: off).

    Serving: `host` and `port` (0 picks a free one), uvicorn's `log_level` and its
    `http` implementation.
    """

    seed: int = 7
    start: date = date(2024, 1, 1)
    end: date = date(2024, 6, 30)
    size: PracticeSize = SMALL
    today: date | None = None
    clock: datetime | None = None
    live: bool = False
    timezone: str = "UTC"
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    refresh_token: str | None = None
    access_token_ttl: float = 172800
    access_token_max_uses: int | None = None
    latency_ms: float = 0
    requests_per_hour: int | None = None
    chaos: FaultRates | None = None
    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "warning"
    http: Literal["auto", "h11", "httptools"] = "auto"
    practices: int = 1

    def __post_init__(self) -> None:
        """Reject a sandbox without a practice."""
        if self.practices < 1:
            raise ValueError(f"practices must be at least 1, not {self.practices}")


#: A sandbox with every default.
DEFAULTS = SandboxConfig()
