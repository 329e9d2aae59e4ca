"""The audit log's writers: who changed access or data, and the compliance permission's grants,
revocations and the reads made through it.

Audit is a side effect of an action, written with ``record`` on the action's own connection
inside its transaction, never from a route: a change commits with its row or not at all. The
actor is an ``Actor`` (the user and the client address the request came from); the address
goes into ``meta.ip``. ``None`` is the command line (an operator on the host).

Compliance lets a user read private rooms and direct conversations they are not a member of
(the rule is ``chatcore.access``). Only admins grant or revoke it (REST or the
``chat-server set-compliance`` command). Every change is written to ``audit_log`` in the same
transaction as the change, so there is no grant without its record. Granting bumps nothing;
revoking takes effect on the next request, because the permission is read from the user's
row whenever it is about to be used (a socket's cached user is never trusted for it).

Every request that reads a private room or DM through the permission (live history,
``do_history``, or the archive, through ``POST /api/v1/access/rooms``) writes one audit row
before the messages are returned; if the row cannot be written, the read fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from chatcore.errors import Invalid, NotFound
from chatcore.events import iso

from ..storage import audit as db
from ..storage import users as udb

if TYPE_CHECKING:
    from ..context import Services

GRANT, REVOKE, READ = "compliance.grant", "compliance.revoke", "compliance.read"
# staff reading the archive through chat-archive (one row per request; ``POST /api/v1/access/rooms``)
ArchiveAction = Literal["archive.query", "archive.search", "archive.export", "archive.retention"]
RETENTION = "archive.retention"  # admins only: a refused request leaves no row
AUDITED_ROOM_IDS_MAX = 100  # a row lists at most this many of the rooms a request could read


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, for the audit row: the user and the client address of their request."""

    user: udb.User
    ip: str | None = None


async def record(conn: asyncpg.Connection, actor: Actor | None, action: str, target_type: str,
                 target_id: int | None, meta: dict[str, Any] | None = None) -> int:
    """One audit row, in the caller's transaction (``conn`` inside ``conn.transaction()``)."""
    full = dict(meta or {})
    if actor is not None and actor.ip is not None:
        full["ip"] = actor.ip
    return await db.insert_entry(conn, actor.user.id if actor is not None else None, action, target_type, target_id,
                                 full)


async def set_compliance(pool: asyncpg.Pool, actor_id: int | None, target_id: int, enabled: bool,
                         via: str, ip: str | None = None) -> udb.User | None:
    """Grant or revoke, with its audit row in the same transaction; ``None`` when there is no
    such human user (contacts and the assistant never log in).

    ``actor_id`` is ``None`` for the command line (an operator on the host, no user account)."""
    async with pool.acquire() as conn, conn.transaction():
        before = await udb.get_user(conn, target_id)
        if before is None or before.kind != "human":
            return None
        user = await udb.set_compliance(conn, target_id, enabled)
        assert user is not None  # the row exists: read in this transaction, users are never deleted
        await db.insert_entry(conn, actor_id, GRANT if enabled else REVOKE, "user", target_id,
                              {"via": via, "was": before.compliance} | ({"ip": ip} if ip is not None else {}))
    return user


async def do_set_compliance(svc: Services, admin: Actor, target_id: Any, enabled: Any) -> udb.User:
    if not isinstance(enabled, bool):
        raise Invalid("enabled must be true or false", field="enabled")
    if not isinstance(target_id, int) or isinstance(target_id, bool) or target_id <= 0:
        raise NotFound("user not found")
    user = await set_compliance(svc.pool, admin.user.id, target_id, enabled, "api", admin.ip)
    if user is None:
        raise NotFound("user not found")
    return user


AUDIT_PAGE_MAX = 200


async def do_list_audit(svc: Services, *, actor_id: int | None, action: str | None, target_type: str | None,
                        since: datetime | None, before: datetime | None, cursor: int | None,
                        limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the audit log, newest first, and the cursor of the next page (``None``: the last)."""
    limit = min(limit, AUDIT_PAGE_MAX)
    rows = await db.list_entries(svc.pool, actor_id=actor_id, action=action, target_type=target_type, since=since,
                                 before=before, before_id=cursor, limit=limit + 1)
    more = len(rows) > limit
    entries = [{
        "id": r["id"], "action": r["action"], "target_type": r["target_type"], "target_id": r["target_id"],
        "meta": r["meta"], "created_at": iso(r["created_at"]),
        "actor": None if r["actor_id"] is None else {
            "id": r["actor_id"], "username": r["actor_username"], "display_name": r["actor_display_name"]},
    } for r in rows[:limit]]
    return entries, entries[-1]["id"] if more else None


async def record_compliance_read(svc: Services, user_id: int, room_ids: list[int], via: str) -> None:
    """One row per request that read ``room_ids`` only through the compliance permission."""
    await db.insert_entry(svc.pool, user_id, READ, "room", room_ids[0] if len(room_ids) == 1 else None,
                          {"via": via, "room_ids": room_ids})
