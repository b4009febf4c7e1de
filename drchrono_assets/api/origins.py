"""Where the client may send credentials: the API's own origin (scheme, host and port), over
HTTPS unless the API runs on this machine (the sandbox)."""

from __future__ import annotations

import dataclasses
import ipaddress
from urllib.parse import urlsplit, urlunsplit

from drchrono_assets.api.client_settings import BASE_URL_VARIABLE
from drchrono_assets.errors import ConfigurationError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class Origin:
    """A URL's scheme, host and port: two URLs may share credentials only if these match."""

    scheme: str
    host: str
    port: int | None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 literal
        default = self.port is None or DEFAULT_PORTS.get(self.scheme) == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def origin_of(url: str) -> Origin:
    """The origin of ``url``, with the scheme's default port spelled out (443 for https)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a number: matches no origin the client sends to
        port = -1
    return Origin(scheme, parts.hostname or "", port or DEFAULT_PORTS.get(scheme))


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: a server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: ``127.0.0.1.example.com`` is not loopback
        return False


def same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the API's origin, with no user name or password of its own
    (``requests`` would send those instead of the bearer token)."""
    parts = urlsplit(url)
    return origin_of(url) == origin_of(base_url) and parts.username is None


def without_fragment(url: str) -> str:
    """``url`` as it is requested: a fragment never leaves the client."""
    return urlunsplit(urlsplit(url)._replace(fragment=""))


def require_https_base_url(base_url: str, setting: str = BASE_URL_VARIABLE) -> None:
    """Refuse a base URL that would send the client secret and tokens unencrypted, naming
    where it was set (``setting``: the variable, or a component's attribute)."""
    origin = origin_of(base_url)
    if origin.host and (
        origin.scheme == "https" or (origin.scheme == "http" and is_loopback(origin.host))
    ):
        return
    shown = f"is {origin}, which is not HTTPS" if origin.host else "is not an absolute URL"
    raise ConfigurationError(
        f"{setting} {shown}: the client secret and tokens must not travel "
        f"unencrypted; set {setting} to the API's https:// address (e.g. "
        "https://drchrono.com). Plain http:// is accepted only for a loopback host "
        "(127.0.0.1, ::1, localhost), such as the bundled sandbox."
    )
