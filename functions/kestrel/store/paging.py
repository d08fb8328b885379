"""Paginated listings: page numbers for people, opaque cursors for clients following ``next``.

A listing walks items in ``ord`` order (newest first). ``?page=N`` skips to page N; the
``next`` link carries a cursor holding the position where the page ended, so following it
costs one page of reads however deep the listing goes. A cursor is bound to its owner and to
the listing's filters: presented anywhere else, it is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports.items import ORD, Item, ItemStore

#: ``walk(after, limit)``: the listing's items in order, from past ``after``; ``limit`` is how many
#: the caller will read at most (None: unknown), so sharded lists read no more than that per shard.
Walk = Callable[[str | None, int | None], Iterator[Item]]


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_size: int
    after: str | None = None  # the ``ord`` where the previous page ended (from a cursor)


@dataclass(frozen=True)
class Page:
    items: list[Item]
    count: int
    page: int
    page_size: int
    next_after: str | None  # where the next page starts, None on the last page

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def listing_tag(owner_id: str, listing: str) -> str:
    """Identifies one owner's one listing (path + filters) without revealing either."""
    return hashlib.sha256(f"{owner_id}\n{listing}".encode()).hexdigest()[:16]


def encode_cursor(tag: str, page: int, after: str) -> str:
    raw = json.dumps({"t": tag, "p": page, "a": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, tag: str) -> tuple[int, str]:
    """(page, after) from a cursor made for this very listing."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data: dict[str, Any] = json.loads(raw)
        page, after, cursor_tag = int(data["p"]), str(data["a"]), str(data["t"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidInput("the cursor is not valid; follow the 'next' link as given, or use ?page=N") from None
    if cursor_tag != tag or page < 2:
        raise InvalidInput(
            "the cursor belongs to another listing (other filters or another account); "
            "start again without it or use ?page=N"
        )
    return page, after


def check_page_exists(page: int, page_size: int, count: int) -> None:
    pages = max(1, math.ceil(count / page_size))
    if page > pages:
        raise NotFound(
            f"Invalid page: page {page} is past the end; there {'is' if pages == 1 else 'are'} "
            f"{pages} page{'s' if pages != 1 else ''} of up to {page_size} ({count} items)"
        )


def merged(
    store: ItemStore, lists: list[str], prefix: str, after: str | None, limit: int | None, descending: bool = True
) -> Iterator[Item]:
    """The items of several lists as one list in ``ord`` order: a k-way merge of one query per
    list, each reading at most ``limit`` items. ``ord`` values are unique across the lists (they
    end with the item's id), so one ``after`` continues every list where the page ended."""
    walks = [_walk_list(store, pk, prefix, after, limit, descending, len(lists)) for pk in lists]
    return heapq.merge(*walks, key=lambda item: str(item[ORD]), reverse=descending)


def _walk_list(
    store: ItemStore, pk: str, prefix: str, after: str | None, limit: int | None, descending: bool, lists: int
) -> Iterator[Item]:
    """One list's part of a merge, read in growing chunks: a page spread evenly over ``lists``
    lists needs about ``limit / lists`` items of each, so reading ``limit`` from every one would
    read ``lists`` times the page (16 x on DynamoDB's bill); a list the merge keeps drawing from
    is read on, never past ``limit``."""
    if limit is None:
        yield from store.query(pk, prefix, index="ord", after=after, descending=descending)
        return
    chunk = min(limit, limit // lists + 2)
    left = limit
    while left > 0:
        read = list(store.query(pk, prefix, index="ord", after=after, descending=descending, limit=min(chunk, left)))
        yield from read
        if len(read) < min(chunk, left):
            return  # the list has no more
        left -= len(read)
        after = str(read[-1][ORD])  # ord values are unique within a list (they end with the id)
        chunk *= 4


#: Rounds a change that must see every item of a list waits for DynamoDB's index to catch up.
LIST_LAG_ATTEMPTS = 8


def wait_for_lists(attempt: int) -> None:
    """Back off while a global index catches up with writes (50 ms, 100 ms, ... at most 2 s)."""
    time.sleep(min(2.0, 0.05 * 2**attempt))


def count_lists(store: ItemStore, lists: list[str], prefix: str) -> int:
    return sum(store.count(pk, prefix, index="ord") for pk in lists)


def paginate(
    walk: Walk,
    request: PageRequest,
    count: int,
    keep: Callable[[Item], bool] | None = None,
) -> Page:
    """One page of the items ``walk(after)`` yields in order, keeping those ``keep`` accepts.

    ``count`` is the number of items the whole listing has (after filtering)."""
    check_page_exists(request.page, request.page_size, count)
    skipped = 0 if request.after is not None else (request.page - 1) * request.page_size
    matching: Iterable[Item] = walk(request.after, None if keep is not None else skipped + request.page_size + 1)
    if keep is not None:
        matching = filter(keep, matching)
    if skipped:
        # Without a cursor, skip the pages before this one.
        matching = islice(matching, skipped, None)
    window = list(islice(matching, request.page_size + 1))
    items = window[: request.page_size]
    next_after = str(items[-1][ORD]) if len(window) > request.page_size else None
    return Page(items=items, count=count, page=request.page, page_size=request.page_size, next_after=next_after)
