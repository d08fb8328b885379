"""store.paging: page numbers, cursors bound to their owner and listing, page bounds."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import pytest

from kestrel.domain.errors import InvalidInput, NotFound
from kestrel.ports.items import LIST, ORD, PK, SK, Item, ItemStore
from kestrel.store.paging import (
    Page,
    PageRequest,
    Walk,
    check_page_exists,
    decode_cursor,
    encode_cursor,
    listing_tag,
    merged,
    paginate,
)

PARTITION = "O#paging"


@pytest.fixture
def numbered(store: ItemStore) -> ItemStore:
    """Items 0..24 in one partition; ``ord`` orders them, ``n`` is their number."""
    for n in range(25):
        store.put(
            {PK: f"{PARTITION}#{n}", SK: f"X#{n:03d}", LIST: PARTITION, ORD: f"X#{n:03d}", "n": n, "odd": n % 2 == 1}
        )
    return store


def _walker(store: ItemStore) -> tuple[list[str | None], Callable[[str | None, int | None], Iterator[Item]]]:
    """A newest-first walk over ``numbered``, recording each ``after`` it was started from."""
    starts: list[str | None] = []

    def walk(after: str | None, limit: int | None) -> Iterator[Item]:
        starts.append(after)
        return store.query(PARTITION, "X#", index="ord", after=after, descending=True, limit=limit)

    return starts, walk


def _numbers(page: Page) -> list[int]:
    return [int(item["n"]) for item in page.items]


def test_page_numbers_skip_to_their_page(numbered: ItemStore) -> None:
    _, walk = _walker(numbered)
    first = paginate(walk, PageRequest(page=1, page_size=10), count=25)
    assert _numbers(first) == list(range(24, 14, -1))
    assert (first.count, first.page, first.page_size, first.has_previous) == (25, 1, 10, False)
    assert first.next_after == "X#015"
    third = paginate(walk, PageRequest(page=3, page_size=10), count=25)
    assert _numbers(third) == [4, 3, 2, 1, 0]
    assert third.next_after is None
    assert third.has_previous is True


def test_a_cursor_continues_where_the_page_ended_without_skipping(numbered: ItemStore) -> None:
    starts, walk = _walker(numbered)
    first = paginate(walk, PageRequest(page=1, page_size=10), count=25)
    second = paginate(walk, PageRequest(page=2, page_size=10, after=first.next_after), count=25)
    assert _numbers(second) == list(range(14, 4, -1))
    assert starts == [None, "X#015"]  # the second page starts at the cursor, not from the top
    assert second.next_after == "X#005"


def test_a_full_last_page_has_no_next(numbered: ItemStore) -> None:
    _, walk = _walker(numbered)
    page = paginate(walk, PageRequest(page=5, page_size=5), count=25)
    assert _numbers(page) == [4, 3, 2, 1, 0]
    assert page.next_after is None


def test_keep_filters_the_walk_and_the_count_is_the_filtered_one(numbered: ItemStore) -> None:
    _, walk = _walker(numbered)

    def odd(item: Item) -> bool:
        return bool(item["odd"])

    page = paginate(walk, PageRequest(page=2, page_size=5), count=12, keep=odd)
    assert _numbers(page) == [13, 11, 9, 7, 5]
    assert page.count == 12
    assert page.next_after == "X#005"
    with pytest.raises(NotFound):
        paginate(walk, PageRequest(page=4, page_size=5), count=12, keep=odd)


def test_an_empty_listing_has_one_empty_page(store: ItemStore) -> None:
    _, walk = _walker(store)
    page = paginate(walk, PageRequest(page=1, page_size=10), count=0)
    assert (page.items, page.count, page.next_after) == ([], 0, None)
    with pytest.raises(NotFound, match=r"page 2 is past the end; there is 1 page of up to 10 \(0 items\)"):
        paginate(walk, PageRequest(page=2, page_size=10), count=0)


def test_a_page_past_the_end_is_not_found_with_the_number_of_pages() -> None:
    check_page_exists(3, 10, 25)  # the last page
    with pytest.raises(NotFound) as past:
        check_page_exists(4, 10, 25)
    assert past.value.detail == "Invalid page: page 4 is past the end; there are 3 pages of up to 10 (25 items)"
    check_page_exists(2, 10, 20)
    with pytest.raises(NotFound, match=r"there are 2 pages of up to 10 \(20 items\)"):
        check_page_exists(3, 10, 20)


def test_a_cursor_round_trips_for_its_own_listing() -> None:
    tag = listing_tag("owner-1", "/api/v2/task/?search=cat")
    cursor = encode_cursor(tag, 3, "T#2026-01-01#abc")
    assert "=" not in cursor  # safe in a query string as it is
    assert decode_cursor(cursor, tag) == (3, "T#2026-01-01#abc")


def test_the_listing_tag_reveals_neither_owner_nor_listing() -> None:
    tag = listing_tag("owner-1", "/api/v2/task/?search=secret")
    assert len(tag) == 16
    assert "owner-1" not in tag and "secret" not in tag
    cursor = encode_cursor(tag, 2, "X")
    assert "owner-1" not in base64.urlsafe_b64decode(cursor + "==").decode()


@pytest.mark.parametrize(
    ("owner", "listing"),
    [("owner-2", "/api/v2/task/"), ("owner-1", "/api/v2/task/?search=cat"), ("owner-1", "/api/v2/label/")],
)
def test_a_cursor_is_refused_by_another_owner_or_listing(owner: str, listing: str) -> None:
    cursor = encode_cursor(listing_tag("owner-1", "/api/v2/task/"), 2, "T#x")
    with pytest.raises(InvalidInput, match=r"the cursor belongs to another listing .*use \?page=N"):
        decode_cursor(cursor, listing_tag(owner, listing))


@pytest.mark.parametrize("page", [1, 0, -3])
def test_a_cursor_never_points_before_page_two(page: int) -> None:
    tag = listing_tag("owner-1", "/x")
    with pytest.raises(InvalidInput, match="belongs to another listing"):
        decode_cursor(encode_cursor(tag, page, "X"), tag)


def _raw_cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "bm90IGpzb24",  # "not json"
        _raw_cursor({"t": "x", "p": 2}),  # no position
        _raw_cursor({"t": "x", "p": "two", "a": "X"}),
        _raw_cursor(["t", "p", "a"]),
        _raw_cursor("just a string"),
        "",
    ],
)
def test_a_cursor_that_is_not_one_says_to_follow_next_as_given(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor, "x")
    assert refused.value.detail == "the cursor is not valid; follow the 'next' link as given, or use ?page=N"


@pytest.fixture
def sharded(store: ItemStore) -> ItemStore:
    """Items 0..39 spread over four lists (n % 4), each item in a partition of its own."""
    for n in range(40):
        store.put({PK: f"S#{n}", SK: "S", LIST: f"SHARD#{n % 4}", ORD: f"S#{n:03d}", "n": n})
    return store


def _every_page(fetch: Walk, page_size: int, count: int) -> list[int]:
    """The numbers of every item, page after page from the first, each page's cursor to the next."""
    request = PageRequest(page=1, page_size=page_size)
    seen: list[int] = []
    while True:
        page = paginate(fetch, request, count=count)
        seen += _numbers(page)
        if page.next_after is None:
            return seen
        request = PageRequest(page=page.page + 1, page_size=page_size, after=page.next_after)


def test_a_merged_walk_pages_through_every_shard_in_order(sharded: ItemStore) -> None:
    lists = [f"SHARD#{shard}" for shard in range(4)]
    seen = _every_page(lambda after, limit: merged(sharded, lists, "S#", after, limit), page_size=7, count=40)
    assert seen == list(range(39, -1, -1))  # newest first, none twice, none lost
    deep = paginate(lambda after, limit: merged(sharded, lists, "S#", after, limit), PageRequest(3, 7), count=40)
    assert _numbers(deep) == list(range(25, 18, -1))  # ?page=3 without a cursor: the same page
    ascending = [int(item["n"]) for item in merged(sharded, lists, "S#", "S#035", None, descending=False)]
    assert ascending == [36, 37, 38, 39]


def test_a_merge_reads_on_from_a_list_that_holds_most_of_the_page(store: ItemStore) -> None:
    """Each list is read in chunks of about page / lists: a list holding nearly everything is read
    on (chunk after chunk) until the page is full, and nothing is lost or repeated."""
    for n in range(40):
        store.put({PK: f"K#{n}", SK: "K", LIST: "SKEW#0" if n % 10 else "SKEW#1", ORD: f"K#{n:03d}", "n": n})
    lists = ["SKEW#0", "SKEW#1", "SKEW#2", "SKEW#3"]  # 36 items, 4 items, none, none
    seen = _every_page(lambda after, limit: merged(store, lists, "K#", after, limit), page_size=9, count=40)
    assert seen == list(range(39, -1, -1))
    assert [int(item["n"]) for item in merged(store, lists, "K#", None, 25)][:25] == list(range(39, 14, -1))
