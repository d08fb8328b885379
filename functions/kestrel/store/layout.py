"""Re-keying items of the layout before lists (layout 1) into today's (layout 2).

Layout 1 kept every task, label, image, content marker, membership and model of a workspace in
the workspace's partition (``keys.space_pk``) and ordered listings with a local index on ``ord``
within it. Layout 2 keys each of them by its own id (``keys.own_key``) and lists them through
``lst`` (``keys.list_of``); ``ord`` values are unchanged, so paging cursors stay valid.

``upgrade_item`` is pure and idempotent: an item already in layout 2, or one that never moved
(profiles, tokens, workspaces, global items), comes back as it is. The SQLite adapter runs it
over an old database when it opens it; ``kestrel table migrate`` runs it over a DynamoDB table."""

from __future__ import annotations

from kestrel.ports.items import LIST, PK, SK, Item
from kestrel.store import keys

LAYOUT = 2


def upgrade_item(item: Item) -> Item:
    """``item`` at its layout-2 key, in its list (a new dict; ``item`` is not changed)."""
    pk, sk = str(item[PK]), str(item[SK])
    if not sk.startswith(keys.OWN_KINDS):
        return dict(item)
    space = keys.space_of_pk(pk)
    if space is None:
        return dict(item)  # already keyed by its own id (layout 2)
    moved = {**item, PK: keys.own_key(space, sk)[0]}
    list_key = keys.list_of(space, sk)
    if list_key is not None:
        moved[LIST] = list_key
    return moved
