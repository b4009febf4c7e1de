"""Cursor pagination of list responses.

`next` and `previous` are absolute URLs built from the request itself (scheme, host,
port, path and every original filter) plus an opaque `cursor`, so a client only ever
follows them, as drchrono's clients do.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.datastructures import URL, QueryParams

from drchrono_sandbox.filters import QueryError

DEFAULT_PAGE_SIZE = 25
#: "Normally our API response has a page size limit of 250": larger asks are capped.
MAX_PAGE_SIZE = 250


def encode_cursor(offset: int) -> str:
    """An opaque cursor for a list offset."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The offset behind a cursor; `QueryError` if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
        if prefix != "o" or offset < 0:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise QueryError({"cursor": ["Invalid cursor."]}) from None
    return offset


def page_size(params: QueryParams) -> int:
    """The requested page size: default 25, silently capped at 250.

    An unusable value falls back to the default, as Django REST framework does.
    """
    try:
        size = int(params.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if size < 1 else min(size, MAX_PAGE_SIZE)


def paginate(items: list[Any], url: URL, params: QueryParams) -> tuple[list[Any], dict[str, Any]]:
    """Slice one page out of `items`; returns it with `count`, `next` and `previous`."""
    cursor = params.get("cursor")
    offset = decode_cursor(cursor) if cursor else 0
    size = page_size(params)
    page = items[offset : offset + size]
    following = offset + size
    next_url = (
        str(url.include_query_params(cursor=encode_cursor(following)))
        if following < len(items)
        else None
    )
    previous_url: str | None = None
    if offset > 0:
        before = max(offset - size, 0)
        previous_url = str(
            url.include_query_params(cursor=encode_cursor(before))
            if before
            else url.remove_query_params("cursor")
        )
    return page, {"count": len(items), "next": next_url, "previous": previous_url}
