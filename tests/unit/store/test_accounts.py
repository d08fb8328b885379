"""store.accounts: owners by email, API tokens stored only as hashes, the Authorization header."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kestrel.adapters.sqlite_items import SqliteItemStore
from kestrel.domain.entities import Owner
from kestrel.domain.errors import InvalidInput, NotFound, Unauthenticated
from kestrel.ports.items import SK, ItemStore
from kestrel.store import keys
from kestrel.store.accounts import (
    authenticate,
    create_token,
    ensure_owner,
    get_owner,
    has_owners,
    hash_token,
    list_tokens,
    parse_authorization,
    revoke_token,
)

Racing = Callable[..., SqliteItemStore]


def test_an_empty_store_has_no_owners(store: ItemStore) -> None:
    assert has_owners(store) is False


def test_ensure_owner_creates_the_owner_once(store: ItemStore) -> None:
    first = ensure_owner(store, "Ada@Example.com", "Ada Lovelace")
    assert (first.email, first.name) == ("Ada@Example.com", "Ada Lovelace")
    assert has_owners(store) is True
    assert get_owner(store, first.id) == first
    # The email is matched without regard to case or surrounding spaces; the name stays the first one.
    again = ensure_owner(store, "  ada@example.COM ", "Someone Else")
    assert again == first
    assert [item[SK] for item in store.query(keys.OWNERS_PK)] == [first.id]


def test_an_owner_without_a_name_is_named_after_the_email(store: ItemStore) -> None:
    assert ensure_owner(store, "grace@navy.example").name == "grace"


def test_a_dotless_domain_is_an_email_address(store: ItemStore) -> None:
    assert ensure_owner(store, "admin@localhost").email == "admin@localhost"


@pytest.mark.parametrize("email", ["", "no-at-sign", "two@@example.com", "a b@example.com", "@example.com", "a@.com"])
def test_ensure_owner_refuses_what_is_not_an_email_address(store: ItemStore, email: str) -> None:
    with pytest.raises(InvalidInput, match=r"is not an email address; give one like you@example.com"):
        ensure_owner(store, email)
    assert has_owners(store) is False


def test_an_unknown_owner_is_not_found(store: ItemStore) -> None:
    with pytest.raises(NotFound, match="owner nobody not found"):
        get_owner(store, "nobody")


@pytest.fixture
def owner(store: ItemStore) -> str:
    """Accounts work with owner ids (the other store tests with an owner's default workspace)."""
    return ensure_owner(store, "owner@example.com").id


@pytest.fixture
def other_owner(store: ItemStore) -> str:
    return ensure_owner(store, "someone-else@example.com").id


def test_a_token_is_40_hex_characters_and_only_its_hash_is_stored(store: ItemStore, owner: str) -> None:
    token, info = create_token(store, get_owner(store, owner), "laptop")
    assert len(token) == 40
    assert int(token, 16) >= 0
    assert (info.owner_id, info.email, info.name) == (owner, "owner@example.com", "laptop")
    stored = store.get(keys.token_key(hash_token(token)))
    assert stored is not None
    assert stored["token_hash"] == hash_token(token)
    everything = [*store.query(keys.owner_pk(owner)), stored]
    assert all(token not in repr(item) for item in everything)


def test_a_token_without_a_name_is_called_default(store: ItemStore, owner: str) -> None:
    _, info = create_token(store, get_owner(store, owner))
    assert info.name == "default"


def test_authenticate_gives_the_tokens_owner(store: ItemStore, owner: str, other_owner: str) -> None:
    mine, _ = create_token(store, get_owner(store, owner))
    theirs, _ = create_token(store, get_owner(store, other_owner))
    assert authenticate(store, f"Token {mine}") == owner
    assert authenticate(store, f"  token   {theirs}  ") == other_owner


def test_list_tokens_shows_every_owners_tokens_oldest_first(store: ItemStore, owner: str, other_owner: str) -> None:
    _, first = create_token(store, get_owner(store, owner), "one")
    _, second = create_token(store, get_owner(store, other_owner), "two")
    _, third = create_token(store, get_owner(store, owner), "three")
    assert list_tokens(store) == [first, second, third]


def test_a_revoked_token_no_longer_authenticates(store: ItemStore, owner: str) -> None:
    token, info = create_token(store, get_owner(store, owner))
    kept, kept_info = create_token(store, get_owner(store, owner))
    assert revoke_token(store, info.token_id) == info
    with pytest.raises(Unauthenticated, match="Invalid token: it is unknown or was revoked"):
        authenticate(store, f"Token {token}")
    assert store.get(keys.token_key(hash_token(token))) is None
    assert list_tokens(store) == [kept_info]
    assert authenticate(store, f"Token {kept}") == owner


def test_revoking_an_unknown_token_id_says_where_the_ids_are(store: ItemStore, owner: str) -> None:
    with pytest.raises(NotFound, match=r"no token with id deadbeef; `kestrel token list` shows the ids"):
        revoke_token(store, "deadbeef")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_authorization_header_says_what_to_send(header: str | None) -> None:
    with pytest.raises(Unauthenticated, match=r"send the header 'Authorization: Token <your key>'"):
        parse_authorization(header)


@pytest.mark.parametrize("header", ["Bearer abc", "Token", "Token    ", "abc"])
def test_an_authorization_header_of_another_shape_is_refused(header: str) -> None:
    with pytest.raises(Unauthenticated, match=r"must look like 'Token <your key>'"):
        parse_authorization(header)


def test_parse_authorization_takes_the_scheme_in_any_case() -> None:
    assert parse_authorization("TOKEN abc123") == "abc123"


@pytest.mark.parametrize("token", ["abc", "g" * 40, "A" * 40, "a" * 39, "a" * 41, "eyJ" + "a" * 80])
def test_what_is_not_a_kestrel_token_is_refused_before_any_lookup(store: ItemStore, token: str) -> None:
    with pytest.raises(Unauthenticated, match=r"it is not a Kestrel API token \(40 hexadecimal characters\)"):
        authenticate(store, f"Token {token}")


def test_a_well_formed_unknown_token_is_refused(store: ItemStore) -> None:
    with pytest.raises(Unauthenticated, match="Invalid token: it is unknown or was revoked"):
        authenticate(store, "Token " + "0" * 40)


def test_an_owner_created_concurrently_is_the_one_returned(store: ItemStore, racing: Racing) -> None:
    first: list[Owner] = []
    racer = racing(lambda other: first.append(ensure_owner(other, "new@example.com", "First")))
    assert ensure_owner(racer, "NEW@example.com", "Second") == first[0]
    assert [item[SK] for item in store.query(keys.OWNERS_PK)] == [first[0].id]
    assert get_owner(store, first[0].id).name == "First"
