"""drchrono's list endpoints: pages of ``{"results": [...], "next": url}``, followed until
``next`` is null. A paginator in the manner of dlt's ``JSONLinkPaginator``: it says which
request comes next and takes each answer apart; the client sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from drchrono_assets.api.origins import same_origin
from drchrono_assets.errors import MalformedPageError

if TYPE_CHECKING:
    # Only annotations use it: importing the catalog at run time would import Dagster.
    from drchrono_assets.catalog.records import JsonRecord


class NextLinkPaginator:
    """The pages of one list request to ``path``: ask for ``url`` with ``params`` while
    ``has_next_page``, and give each answer to ``page``.

    A ``next`` link is followed only on the API's origin (``base_url``) and only once: it
    could otherwise send the bearer token to another host, or loop forever.
    """

    def __init__(self, path: str, first_url: str, params: Mapping[str, Any], base_url: str) -> None:
        self.path = path
        self.url: str | None = first_url
        # The first request's query; later pages' ``next`` links carry their own.
        self.params: dict[str, Any] | None = dict(params)
        self._base_url = base_url
        self._seen: set[str] = set()

    @property
    def has_next_page(self) -> bool:
        """Whether another page is to be asked for."""
        return self.url is not None

    def page(self, body: Any) -> list[JsonRecord]:
        """The records of the page just asked for (the answer to ``url``); moves on to the
        next page. A page of the wrong shape raises ``MalformedPageError``."""
        assert self.url is not None, "page() after the last page"
        number = len(self._seen) + 1
        if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
            raise MalformedPageError(
                f"GET {self.path}: page {number} has no 'results' list; nothing from this "
                "request was written"
            )
        if not all(isinstance(record, Mapping) for record in body["results"]):
            raise MalformedPageError(
                f"GET {self.path}: page {number} has results that are not JSON objects; "
                "nothing from this request was written"
            )
        next_url = body.get("next")
        if next_url is not None and not isinstance(next_url, str):
            raise MalformedPageError(
                f"GET {self.path}: page {number} has a 'next' that is not a URL"
            )
        self._seen.add(self.url)
        if next_url is not None:
            self.check_next(next_url)
        self.url, self.params = next_url, None
        return body["results"]

    def check_next(self, next_url: str) -> None:
        """Refuse a ``next`` link off the API's origin or back to a page already read."""
        if not same_origin(next_url, self._base_url):
            # Following it would send our bearer token to another host.
            raise MalformedPageError(f"GET {self.path}: 'next' points outside {self._base_url}")
        if next_url in self._seen:
            raise MalformedPageError(f"GET {self.path}: 'next' repeats an earlier page")
