"""The drchrono API client. Plain Python: the Dagster resource (``drchrono_assets.resources``),
the ``auth`` CLI and scripts all build one of these.

Its layers, each in a module of its own and knowing only those below it:

- ``client`` (reads, paging with ``paging``, the account) over ``writes`` (write calls)
  over ``connection`` (what is opened on first use, and the one authorized request);
- ``oauth_auth``: the bearer token as a ``requests`` auth, and ``/o/token/``;
- ``oauth_tokens`` and ``token_store``: refresh-token rotation in a shared store;
- ``retries`` and ``reachability``: when a failed try is made again;
- ``outcomes``, ``transport`` and ``answers``: one try, one request, one answer;
- ``rate_budget``: the request budget all of them draw from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from drchrono_assets.api.paging import NextLinkPaginator
from drchrono_assets.api.token_store import TokenSet
from drchrono_assets.api.writes import WriteCalls
from drchrono_assets.errors import MalformedPageError

if TYPE_CHECKING:
    # Only annotations use it: importing the catalog at run time would import Dagster.
    from drchrono_assets.catalog.records import JsonRecord


class DrchronoClient(WriteCalls):
    """A drchrono API client, safe to share between threads.

    Nothing is opened until the first request: then the credentials are checked and the
    token store, the request ledger and a keep-alive session are opened, once for all
    threads. ``connect_waits``: the short waits before giving up on an API no connection
    reaches (interactive commands pass ``INTERACTIVE_CONNECT_WAITS``).
    """

    # -- reading ---------------------------------------------------------------------------

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[list[JsonRecord]]:
        """Every page of a list endpoint, following ``next`` until it is null."""
        query = {**(params or {}), "page_size": self.config.page_size}
        pages = NextLinkPaginator(path, self.url(path), query, self.config.base_url)
        while pages.has_next_page:
            yield pages.page(self._request("GET", path, url=pages.url, params=pages.params))

    def list_records(self, path: str, params: Mapping[str, Any] | None = None) -> list[JsonRecord]:
        """All records of a list endpoint (for small lists; assets stream pages instead)."""
        return [record for page in self.iter_pages(path, params) for record in page]

    def count(self, path: str) -> int:
        """How many records a list endpoint holds now: its first page's ``count``, asked for
        with a page of one record (one request)."""
        pages = NextLinkPaginator(path, self.url(path), {"page_size": 1}, self.config.base_url)
        body = self._request("GET", path, url=pages.url, params=pages.params)
        pages.page(body)  # shaped as any page, or MalformedPageError
        count = body.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise MalformedPageError(f"GET {path}: the page has no 'count' of records")
        return count

    def get(self, path: str) -> JsonRecord:
        """One record from a detail endpoint such as ``/api/doctors/12``."""
        return self._request("GET", path)

    def current_user(self) -> JsonRecord:
        """The connected account's user record (follows the ``/api/users/current`` redirect).

        A cheap connection check: it proves the credentials and the token store work.
        """
        return self._request("GET", "/api/users/current")

    def last_answer_time(self) -> dt.datetime | None:
        """The API's time (``Date`` header, UTC) of this thread's last successful answer.

        Change capture takes its cursor from the API's clock, never this machine's.
        """
        return self._connect().outcomes.last_answer_time()

    @property
    def requests_used(self) -> int:
        """Requests this client sent (token endpoint included): the cost that matters."""
        return self._connection.transport.budget.used if self._connection else 0

    # -- connecting an account -------------------------------------------------------------

    def authorize_with_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Exchange an authorization code from ``/o/authorize/`` and store the tokens."""
        return self._connect().bearer.tokens.exchange_code(code, redirect_uri)

    def stored_tokens(self) -> TokenSet | None:
        """What the token store holds for this application (``auth status``), if anything."""
        return self._connect().store.load()
