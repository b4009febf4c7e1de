"""Errors the package raises on bad input.

Every message names the problem and where it happened (endpoint, resource, column) and
never carries a token, a secret or a record value, because values can be patient data.
"""

# The command that connects an account: messages about missing or spent tokens name it.
LOGIN_COMMAND = "`drchrono-assets auth login`"


class DrchronoError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigurationError(DrchronoError):
    """A setting is missing or malformed (credentials, time zone, data root...)."""


class TokenRejectedError(DrchronoError):
    """drchrono refused our credentials: a spent or revoked refresh token, or a wrong client."""


class ClientRejectedError(TokenRejectedError):
    """drchrono's token endpoint refused the application's client id and secret
    (``invalid_client``): a setting to correct, not an account to re-authorize."""


class ApiRequestError(DrchronoError):
    """A request failed for good: a 4xx we cannot fix, or retries ran out."""


class ApiUnreachableError(ApiRequestError):
    """No connection to the API could be made (refused, host name not found, connect timeout):
    a wrong ``DRCHRONO_BASE_URL`` or a host that is down, not a passing fault."""


class MalformedPageError(DrchronoError):
    """A list response did not have the documented ``{"next", "results"}`` shape."""


class SchemaChangedError(DrchronoError):
    """A record no longer matches the Arrow schema we derived from the API reference."""
