"""Rooms and memberships."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from chatcore.events import iso

ROOM_COLS = ("r.id, r.slug, r.name, r.kind, r.topic, r.created_by, r.last_seq, r.archived_upto_seq, r.created_at,"
             " r.archived_at")


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    slug: str
    name: str
    kind: str
    topic: str
    created_by: int | None
    last_seq: int
    archived_upto_seq: int
    created_at: datetime
    archived_at: datetime | None  # set: read-only (sends refused), history readable

    def public(self, **extra: Any) -> dict[str, Any]:
        d = {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "kind": self.kind,
            "topic": self.topic,
            "created_by": self.created_by,
            "last_seq": self.last_seq,
            "archived_upto_seq": self.archived_upto_seq,
            "created_at": iso(self.created_at),
            "archived_at": iso(self.archived_at),
        }
        d.update(extra)
        return d


def _room(row: asyncpg.Record | None) -> Room | None:
    if row is None:
        return None
    return Room(**{k: row[k] for k in Room.__slots__})


async def insert_room(
    conn: asyncpg.Connection, slug: str, name: str, kind: str, topic: str, created_by: int | None
) -> Room:
    """Raises ``asyncpg.UniqueViolationError`` when the slug is taken."""
    row = await conn.fetchrow(
        "INSERT INTO rooms AS r (slug, name, kind, topic, created_by) VALUES ($1, $2, $3, $4, $5)"
        f" RETURNING {ROOM_COLS}",
        slug, name, kind, topic, created_by,
    )
    room = _room(row)
    assert room is not None
    return room


async def get_room(conn: asyncpg.Connection | asyncpg.Pool, room_id: int) -> Room | None:
    return _room(await conn.fetchrow(f"SELECT {ROOM_COLS} FROM rooms r WHERE r.id = $1", room_id))


async def get_room_for_user(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int) -> tuple[Room | None, bool]:
    """The room and whether ``user_id`` is a member, in one round trip."""
    row = await conn.fetchrow(
        f"SELECT {ROOM_COLS}, EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $2) AS member"
        " FROM rooms r WHERE r.id = $1",
        room_id, user_id,
    )
    return (_room(row), bool(row["member"])) if row is not None else (None, False)


async def get_room_by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> Room | None:
    return _room(await conn.fetchrow(f"SELECT {ROOM_COLS} FROM rooms r WHERE r.slug = $1", slug))


async def add_member(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int, role: str = "member") -> bool:
    """Returns True when the user was not a member before."""
    status = await conn.execute(
        "INSERT INTO room_members (room_id, user_id, role, last_read_seq)"
        " SELECT $1, $2, $3, r.last_seq FROM rooms r WHERE r.id = $1"
        " ON CONFLICT (room_id, user_id) DO NOTHING",
        room_id, user_id, role,
    )
    return status.endswith(" 1")


async def remove_member(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int) -> bool:
    status = await conn.execute("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2", room_id, user_id)
    return status.endswith(" 1")


async def is_member(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM room_members WHERE room_id = $1 AND user_id = $2)", room_id, user_id
        )
    )



async def members(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """The members as records, except that ``avatar_file_id`` stands where the record's
    ``avatar_url`` goes: ``actions.rooms.members_view`` signs it."""
    rows = await conn.fetch(
        "SELECT u.id, u.username, u.display_name, u.role, u.kind, m.role AS member_role, u.last_seen_at,"
        " u.avatar_file_id"
        " FROM room_members m JOIN users u ON u.id = m.user_id WHERE m.room_id = $1"
        " ORDER BY m.joined_at LIMIT $2",
        room_id, limit,
    )
    return [
        {
            "id": r["id"],
            "username": r["username"],
            "display_name": r["display_name"],
            "role": r["role"],
            "kind": r["kind"],
            "member_role": r["member_role"],
            "last_seen": iso(r["last_seen_at"]),
            "avatar_file_id": r["avatar_file_id"],
        }
        for r in rows
    ]


async def room_ids_for_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> list[int]:
    return [r[0] for r in await conn.fetch("SELECT room_id FROM room_members WHERE user_id = $1", user_id)]


UNREAD_CAP = 1000  # beyond this a count says "1000+"; counting further would scan the backlog


async def rooms_for_user(pool: asyncpg.Pool, user_id: int, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Rooms the user belongs to (with unread counts) plus public rooms they could join, by id,
    the first ``limit`` with an id above ``after_id``."""
    rows = await pool.fetch(
        f"SELECT {ROOM_COLS}, m.user_id IS NOT NULL AS joined, coalesce(m.last_read_seq, 0) AS last_read_seq,"
        " (SELECT count(*) FROM room_members x WHERE x.room_id = r.id) AS members_count,"
        " (SELECT coalesce(u.display_name, u.username) FROM room_members o JOIN users u ON u.id = o.user_id"
        "   WHERE r.kind = 'direct' AND o.room_id = r.id AND o.user_id <> $1 LIMIT 1) AS peer_name,"
        " (SELECT o.user_id FROM room_members o"
        "   WHERE r.kind = 'direct' AND o.room_id = r.id AND o.user_id <> $1 LIMIT 1) AS peer_id,"
        # others' messages after the read cursor (own ones are read by sending them), capped
        f" (SELECT count(*) FROM (SELECT 1 FROM messages x WHERE m.user_id IS NOT NULL AND x.room_id = r.id"
        f"   AND x.seq > m.last_read_seq AND x.author_id IS DISTINCT FROM $1 LIMIT {UNREAD_CAP}) u) AS unread,"
        f" (SELECT count(*) FROM (SELECT 1 FROM mentions x WHERE m.user_id IS NOT NULL AND x.room_id = r.id"
        f"   AND x.user_id = $1 AND x.seq > m.last_read_seq LIMIT {UNREAD_CAP}) u) AS mentions,"
        " m.notify"
        " FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $1"
        " WHERE r.id > $2 AND ((m.user_id IS NOT NULL AND r.kind <> 'whatsapp') OR r.kind = 'public')"
        " ORDER BY r.id LIMIT $3",
        user_id, after_id, limit,
    )
    out = []
    for row in rows:
        room = _room(row)
        assert room is not None
        joined = bool(row["joined"])
        extra: dict[str, Any] = {
            "joined": joined,
            "members_count": row["members_count"],
            "last_read_seq": row["last_read_seq"],
            "unread": row["unread"],
            "mentions": row["mentions"],
        }
        if joined:
            extra["notify"] = row["notify"]
        if room.kind == "direct":
            extra["peer"] = {"id": row["peer_id"], "name": row["peer_name"]}
        out.append(room.public(**extra))
    return out



# --- room management (actions/rooms.py: rename, topic, archive, delete, roles, directory) ------------


async def update_room(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, name: str | None,
                      topic: str | None) -> Room | None:
    """Set the name and/or topic (None: unchanged)."""
    return _room(await conn.fetchrow(
        f"UPDATE rooms r SET name = coalesce($2, r.name), topic = coalesce($3, r.topic) WHERE r.id = $1"
        f" RETURNING {ROOM_COLS}",
        room_id, name, topic))


async def set_archived(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, archived: bool) -> Room | None:
    return _room(await conn.fetchrow(
        "UPDATE rooms r SET archived_at = CASE WHEN $2 THEN coalesce(r.archived_at, now()) END WHERE r.id = $1"
        f" RETURNING {ROOM_COLS}",
        room_id, archived))


# The room goes with its members and hot messages (foreign keys cascade); the files of those
# messages go to the trash in the same statement, so their URLs stop working at once and the
# sweep deletes the bytes (as deleting one message does).
DELETE_ROOM = (
    "WITH gone AS (DELETE FROM files f USING message_attachments a, messages m"
    "  WHERE m.room_id = $1 AND a.message_id = m.id AND a.file_id = f.id RETURNING f.id),"
    " t AS (INSERT INTO file_trash (id) SELECT id FROM gone ON CONFLICT DO NOTHING)"
    " DELETE FROM rooms WHERE id = $1"
)


async def delete_room(conn: asyncpg.Connection | asyncpg.Pool, room_id: int) -> bool:
    return str(await conn.execute(DELETE_ROOM, room_id)).endswith(" 1")


async def member_ids(conn: asyncpg.Connection | asyncpg.Pool, room_id: int) -> list[int]:
    return [r[0] for r in await conn.fetch("SELECT user_id FROM room_members WHERE room_id = $1", room_id)]


async def member_role(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int) -> str | None:
    """``owner`` or ``member``; None when not a member."""
    role = await conn.fetchval("SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2", room_id, user_id)
    return None if role is None else str(role)


async def set_member_role(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int, role: str) -> bool:
    status = await conn.execute("UPDATE room_members SET role = $3 WHERE room_id = $1 AND user_id = $2",
                                room_id, user_id, role)
    return str(status).endswith(" 1")


async def mark_read_to(conn: asyncpg.Connection | asyncpg.Pool, room_id: int, user_id: int, seq: int) -> None:
    await conn.execute("UPDATE room_members SET last_read_seq = greatest(last_read_seq, $3)"
                       " WHERE room_id = $1 AND user_id = $2", room_id, user_id, seq)


async def directory(pool: asyncpg.Pool, query: str, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    """Public rooms that are not archived, newest first (below ``before_id``), whose name, slug
    or topic contains ``query`` (case-insensitive), with member counts."""
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await pool.fetch(
        f"SELECT {ROOM_COLS}, (SELECT count(*) FROM room_members x WHERE x.room_id = r.id) AS members_count"
        " FROM rooms r WHERE r.kind = 'public' AND r.archived_at IS NULL AND ($2::bigint IS NULL OR r.id < $2)"
        " AND ($1 = '%%' OR r.name ILIKE $1 OR r.slug ILIKE $1 OR r.topic ILIKE $1)"
        " ORDER BY r.id DESC LIMIT $3",
        pattern, before_id, limit)
    out = []
    for row in rows:
        room = _room(row)
        assert room is not None
        out.append(room.public(members_count=row["members_count"]))
    return out


async def users_presence_facts(pool: asyncpg.Pool,
                               user_ids: list[int]) -> dict[int, tuple[str, datetime | None, str | None]]:
    """Kind, last seen and avatar file of each user, for direct-room peers."""
    rows = await pool.fetch("SELECT id, kind, last_seen_at, avatar_file_id FROM users WHERE id = ANY($1::bigint[])",
                            user_ids)
    return {r["id"]: (r["kind"], r["last_seen_at"], r["avatar_file_id"]) for r in rows}
