"""Owners and their API tokens. Only a SHA-256 hash of a token is ever stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from kestrel.domain.entities import Owner, new_id, now_iso
from kestrel.domain.errors import InvalidInput, NotFound, Unauthenticated
from kestrel.ports.items import ORD, PK, SK, Condition, ConditionFailed, Delete, Item, ItemStore, Put, Update
from kestrel.ports.usage import UsageKeys
from kestrel.store import keys

# Dotless domains are allowed: the first local account is admin@localhost.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.][^@\s]*$")
# 40 hex characters: under the 70 characters at which the ximilar client switches to "JWT".
_TOKEN = re.compile(r"^[0-9a-f]{40}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who a valid token belongs to, and the usage-plan key that meters them (None locally, and
    for a token made before its owner had one: ``kestrel token keys`` gives them one)."""

    owner_id: str
    usage_key: str | None = None


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    owner_id: str
    email: str
    name: str
    created: str


def _owner_from_item(item: Item) -> Owner:
    return Owner(id=item["id"], email=item["email"], name=item.get("name", ""), created=item["created"])


def get_owner(store: ItemStore, owner_id: str) -> Owner:
    item = store.get(keys.owner_key(owner_id))
    if item is None:
        raise NotFound(f"owner {owner_id} not found")
    return _owner_from_item(item)


def ensure_owner(store: ItemStore, email: str, name: str = "") -> Owner:
    """The owner with this email, created if there is none yet (safe under races)."""
    email = email.strip()
    if not _EMAIL.match(email):
        raise InvalidInput(f"{email!r} is not an email address; give one like you@example.com")
    existing = store.get(keys.email_key(email))
    if existing is not None:
        return get_owner(store, existing["owner_id"])
    owner = Owner(id=new_id(), email=email, name=name or email.split("@")[0], created=now_iso())
    profile = {
        PK: keys.owner_key(owner.id)[0],
        SK: keys.PROFILE_SK,
        "id": owner.id,
        "email": email,
        "name": owner.name,
        "created": owner.created,
    }
    try:
        store.transact(
            [
                Put(
                    {PK: keys.email_key(email)[0], SK: keys.email_key(email)[1], "owner_id": owner.id},
                    Condition(exists=False),
                ),
                Put(profile, Condition(exists=False)),
                Put({PK: keys.OWNERS_PK, SK: owner.id, "email": email, "created": owner.created}),
            ]
        )
    except ConditionFailed:
        # Another request created the same email first: use that owner.
        return ensure_owner(store, email, name)
    return owner


def has_owners(store: ItemStore) -> bool:
    return next(iter(store.query(keys.OWNERS_PK, limit=1)), None) is not None


def ensure_usage_key(store: ItemStore, usage_keys: UsageKeys, owner_id: str) -> str:
    """The value of the owner's API key in the usage plan, created on first need.

    One key per owner, so all of an owner's tokens share one rate, burst and monthly quota. Two
    runs racing for the same new owner both create a key; the table keeps the first, and the
    other run deletes its own (an extra key in the plan would meter nobody, but clutters it)."""
    existing = store.get(keys.usage_key_key(owner_id))
    if existing is not None:
        return str(existing["value"])
    created = usage_keys.create_key(owner_id)
    item = {
        PK: keys.usage_key_key(owner_id)[0],
        SK: keys.usage_key_key(owner_id)[1],
        "key_id": created.key_id,
        "value": created.value,
        "created": now_iso(),
    }
    try:
        store.put(item, Condition(exists=False))
    except ConditionFailed:
        usage_keys.delete_key(created.key_id)
        winner = store.get(keys.usage_key_key(owner_id))
        assert winner is not None  # the condition failed because it exists
        return str(winner["value"])
    except BaseException:
        # The write may have happened before the failure: keep the key if the table names it.
        stored = store.get(keys.usage_key_key(owner_id))
        if stored is None or stored["key_id"] != created.key_id:
            usage_keys.delete_key(created.key_id)
        raise
    return created.value


def give_usage_keys(store: ItemStore, usage_keys: UsageKeys) -> tuple[int, int]:
    """Every owner gets a usage key and each of their tokens names it (tokens made before the
    stack metered owners have none, and API Gateway refuses their requests with 403 until then).
    Safe to run again; returns (keys created, tokens updated)."""
    created = updated = 0
    for owner_item in store.query(keys.OWNERS_PK):
        owner_id = str(owner_item[SK])
        had_key = store.get(keys.usage_key_key(owner_id)) is not None
        value = ensure_usage_key(store, usage_keys, owner_id)
        created += not had_key
        for ref in store.query(keys.owner_pk(owner_id), "K#"):
            token = store.get(keys.token_key(ref["token_hash"]))
            if token is None or token.get("usage_key") == value:
                continue
            try:
                store.update(Update(keys.token_key(ref["token_hash"]), set={"usage_key": value}))
            except ConditionFailed:
                continue  # revoked meanwhile
            updated += 1
    return created, updated


def create_token(
    store: ItemStore, owner: Owner, name: str = "", usage_keys: UsageKeys | None = None
) -> tuple[str, TokenInfo]:
    """A new random token for ``owner``: (the token, shown once; what is stored about it).

    With ``usage_keys`` (AWS) the owner gets their API key in the usage plan first (once), and
    the token item names it: the authorizer hands it to API Gateway for every request."""
    usage_key = ensure_usage_key(store, usage_keys, owner.id) if usage_keys is not None else None
    token = secrets.token_hex(20)
    info = TokenInfo(
        token_id=secrets.token_hex(4),
        owner_id=owner.id,
        email=owner.email,
        name=name or "default",
        created=now_iso(),
    )
    token_hash = hash_token(token)
    fields = {
        "token_id": info.token_id,
        "owner_id": owner.id,
        "email": owner.email,
        "name": info.name,
        "created": info.created,
        "token_hash": token_hash,
    }
    metering = {"usage_key": usage_key} if usage_key else {}
    store.transact(
        [
            Put(
                {PK: keys.token_key(token_hash)[0], SK: keys.token_key(token_hash)[1], **fields, **metering},
                Condition(exists=False),
            ),
            Put(
                {
                    PK: keys.owner_pk(owner.id),
                    SK: keys.token_ref_key(owner.id, info.token_id)[1],
                    ORD: f"K#{info.created}#{info.token_id}",
                    **fields,
                }
            ),
        ]
    )
    return token, info


def list_tokens(store: ItemStore) -> list[TokenInfo]:
    """Every token of every owner (an operator's view; tokens themselves are never stored)."""
    found: list[TokenInfo] = []
    for owner_item in store.query(keys.OWNERS_PK):
        for item in store.query(keys.owner_pk(owner_item[SK]), "K#"):
            found.append(TokenInfo(item["token_id"], item["owner_id"], item["email"], item["name"], item["created"]))
    return sorted(found, key=lambda t: t.created)


def revoke_token(store: ItemStore, token_id: str) -> TokenInfo:
    for info in list_tokens(store):
        if info.token_id == token_id:
            ref = store.get(keys.token_ref_key(info.owner_id, token_id))
            assert ref is not None
            store.transact(
                [
                    Delete(keys.token_key(ref["token_hash"])),
                    Delete(keys.token_ref_key(info.owner_id, token_id)),
                ]
            )
            return info
    raise NotFound(f"no token with id {token_id}; `kestrel token list` shows the ids")


def parse_authorization(header: str | None) -> str:
    """The token from an ``Authorization: Token <key>`` header."""
    if not header or not header.strip():
        raise Unauthenticated(
            "Authentication credentials were not provided: send the header 'Authorization: Token <your key>'"
        )
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "token" or not value.strip():
        raise Unauthenticated("The Authorization header must look like 'Token <your key>'")
    return value.strip()


def authenticate(store: ItemStore, header: str | None) -> str:
    """The owner id that the header's token belongs to."""
    return identify(store, header).owner_id


def identify(store: ItemStore, header: str | None) -> Caller:
    """Who the header's token belongs to (one read: the token item names the usage key too)."""
    token = parse_authorization(header)
    if not _TOKEN.match(token):
        raise Unauthenticated("Invalid token: it is not a Kestrel API token (40 hexadecimal characters)")
    token_hash = hash_token(token)
    item = store.get(keys.token_key(token_hash))
    # The lookup is by hash; compare again in constant time so no timing reveals a near match.
    if item is None or not hmac.compare_digest(item["token_hash"], token_hash):
        raise Unauthenticated("Invalid token: it is unknown or was revoked")
    usage_key = item.get("usage_key")
    return Caller(owner_id=str(item["owner_id"]), usage_key=str(usage_key) if usage_key else None)
