"""Queues (departments), their members, routing rules of WhatsApp numbers, assignment picks
and the conversation timeline (``conversation_events``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from chatcore.events import iso

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

QUEUE_COLS = "q.id, q.name, q.color, q.description, q.greeting, q.away_message, q.created_at, q.updated_at"

# Whether staff member ``$uid`` sees WhatsApp conversation ``c`` (the one visibility rule; see
# docs/DESK.md): its queue is one of theirs, or it is assigned to them, or it is in no queue.
# Supervisors and admins see every conversation: callers apply this to staff only.
VISIBLE_SQL = (
    "(c.queue_id IS NULL OR c.assignee_id IS NOT DISTINCT FROM {uid}"
    " OR EXISTS (SELECT 1 FROM queue_members qm WHERE qm.queue_id = c.queue_id AND qm.user_id = {uid}))"
)

# One desk-wide lock held by every assignment transaction, on every node: the load counted when
# an agent is picked is the load committed, so two nodes never both fill an agent's last slot.
# Assignments are a few per second at most; the lock is held for two short queries.
ASSIGN_LOCK_KEY = 0x51_7E_00_17


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    username: str
    display_name: str
    capacity: int | None

    def to_wire(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "username": self.username, "display_name": self.display_name,
                "capacity": self.capacity}


@dataclass(frozen=True, slots=True)
class Queue:
    id: int
    name: str
    color: str
    description: str
    greeting: str
    away_message: str
    created_at: datetime
    updated_at: datetime
    members: tuple[Member, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color, "description": self.description,
                "greeting": self.greeting, "away_message": self.away_message,
                "members": [m.to_wire() for m in self.members],
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}


async def _members(conn: Conn, queue_ids: list[int]) -> dict[int, list[Member]]:
    rows = await conn.fetch(
        "SELECT m.queue_id, m.user_id, u.username, u.display_name, m.capacity FROM queue_members m"
        " JOIN users u ON u.id = m.user_id WHERE m.queue_id = ANY($1::bigint[]) ORDER BY m.queue_id, m.user_id",
        queue_ids)
    out: dict[int, list[Member]] = {}
    for r in rows:
        out.setdefault(r["queue_id"], []).append(Member(r["user_id"], r["username"], r["display_name"], r["capacity"]))
    return out


async def _with_members(conn: Conn, rows: list[asyncpg.Record]) -> list[Queue]:
    members = await _members(conn, [r["id"] for r in rows])
    return [Queue(**dict(r), members=tuple(members.get(r["id"], ()))) for r in rows]


async def list_queues(conn: Conn, member_id: int | None = None) -> list[Queue]:
    """Every queue, or (``member_id``) the queues that user belongs to; by name."""
    rows = await conn.fetch(
        f"SELECT {QUEUE_COLS} FROM queues q WHERE $1::bigint IS NULL"
        " OR EXISTS (SELECT 1 FROM queue_members m WHERE m.queue_id = q.id AND m.user_id = $1) ORDER BY q.name, q.id",
        member_id)
    return await _with_members(conn, list(rows))


async def get_queue(conn: Conn, queue_id: int, *, for_update: bool = False) -> Queue | None:
    lock = " FOR UPDATE" if for_update else ""
    rows = await conn.fetch(f"SELECT {QUEUE_COLS} FROM queues q WHERE q.id = $1{lock}", queue_id)
    found = await _with_members(conn, list(rows))
    return found[0] if found else None


async def insert_queue(conn: asyncpg.Connection, **values: str) -> int:
    cols = list(values)
    return int(await conn.fetchval(
        f"INSERT INTO queues ({', '.join(cols)}) VALUES ({', '.join(f'${i}' for i in range(1, len(cols) + 1))})"
        " RETURNING id", *values.values()))


# Every change moves ``updated_at`` forward by at least a millisecond (the wire's precision): the
# row is locked by then, so the changes of a queue are in commit order, and a client that hears
# them out of order (two requests' events, an answer after an event) keeps the newest.
NEXT_VERSION = "updated_at = greatest(clock_timestamp(), updated_at + interval '1 millisecond')"


async def update_queue(conn: asyncpg.Connection, queue_id: int, **values: str) -> None:
    """Sets the given fields (none: only ``updated_at`` moves, for a change of its members)."""
    allowed = {"name", "color", "description", "greeting", "away_message"}
    assert set(values) <= allowed
    sets = "".join(f", {k} = ${i}" for i, k in enumerate(values, start=2))
    await conn.execute(f"UPDATE queues SET {NEXT_VERSION}{sets} WHERE id = $1", queue_id, *values.values())


async def delete_queue(conn: asyncpg.Connection, queue_id: int) -> bool:
    return (await conn.execute("DELETE FROM queues WHERE id = $1", queue_id)).endswith(" 1")


async def set_members(conn: asyncpg.Connection, queue_id: int, members: list[tuple[int, int | None]]) -> None:
    await conn.execute("DELETE FROM queue_members WHERE queue_id = $1", queue_id)
    await conn.executemany("INSERT INTO queue_members (queue_id, user_id, capacity) VALUES ($1, $2, $3)",
                           [(queue_id, uid, cap) for uid, cap in members])


async def staff_ids(conn: Conn, user_ids: list[int], roles: list[str]) -> set[int]:
    """Those of ``user_ids`` that are active users holding one of ``roles``."""
    rows = await conn.fetch("SELECT id FROM users WHERE id = ANY($1::bigint[]) AND role = ANY($2::text[])"
                            " AND deactivated_at IS NULL", user_ids, roles)
    return {int(r["id"]) for r in rows}


async def is_member(conn: Conn, queue_id: int, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM queue_members WHERE queue_id = $1 AND user_id = $2)",
                                    queue_id, user_id))


async def member_ids(conn: Conn, queue_id: int) -> list[int]:
    return [int(r["user_id"]) for r in await conn.fetch(
        "SELECT user_id FROM queue_members WHERE queue_id = $1 ORDER BY user_id", queue_id)]


async def queues_with_waiting(conn: Conn) -> list[int]:
    """Queues that have conversations waiting for an agent."""
    return [int(r["queue_id"]) for r in await conn.fetch(
        "SELECT DISTINCT queue_id FROM wa_contacts c WHERE c.queue_id IS NOT NULL AND c.assignee_id IS NULL"
        " AND c.status <> 'closed' AND c.routing_state = 'routed' AND NOT c.ai_enabled")]


async def queue_ids_of(conn: Conn, user_id: int) -> list[int]:
    return [int(r["queue_id"]) for r in await conn.fetch(
        "SELECT queue_id FROM queue_members WHERE user_id = $1", user_id)]


async def conversation_visible(conn: Conn, room_id: int, user_id: int) -> bool:
    """Whether staff member ``user_id`` sees the WhatsApp conversation of ``room_id`` (``VISIBLE_SQL``);
    true for a room that is no conversation (the rest of the rule decides)."""
    row = await conn.fetchrow(
        f"SELECT {VISIBLE_SQL.format(uid='$2::bigint')} AS visible FROM wa_contacts c WHERE c.room_id = $1",
        room_id, user_id)
    return row is None or bool(row["visible"])


def _sees(queue: str, assignee: str) -> str:
    """``VISIBLE_SQL`` for staff user ``u`` and a conversation in ``queue`` held by ``assignee``."""
    return (f"({queue}::bigint IS NULL OR u.id IS NOT DISTINCT FROM {assignee}::bigint"
            f" OR EXISTS (SELECT 1 FROM queue_members qm WHERE qm.queue_id = {queue}::bigint AND qm.user_id = u.id))")


async def staff_losing_sight(conn: Conn, before: tuple[int | None, int | None],
                             after: tuple[int | None, int | None]) -> list[int]:
    """The active staff members (supervisors and admins see everything) who saw a conversation in
    queue ``before[0]`` held by ``before[1]`` and no longer see it in ``after``."""
    rows = await conn.fetch(
        f"SELECT u.id FROM users u WHERE u.role = 'staff' AND u.deactivated_at IS NULL"
        f" AND {_sees('$1', '$2')} AND NOT {_sees('$3', '$4')} ORDER BY u.id", *before, *after)
    return [r["id"] for r in rows]


# --- routing rules ---------------------------------------------------------------------------------

async def get_routing(conn: Conn, account_id: int) -> tuple[str, int | None] | None:
    row = await conn.fetchrow("SELECT routing, default_queue_id FROM wa_accounts WHERE id = $1", account_id)
    return None if row is None else (str(row["routing"]), row["default_queue_id"])


async def set_routing(conn: asyncpg.Connection, account_id: int, routing: str, default_queue_id: int | None) -> bool:
    status = await conn.execute("UPDATE wa_accounts SET routing = $2, default_queue_id = $3 WHERE id = $1",
                                account_id, routing, default_queue_id)
    return status.endswith(" 1")


# --- assignment --------------------------------------------------------------------------------------

async def lock_assignments(conn: asyncpg.Connection) -> None:
    """Take the desk-wide assignment lock until the transaction ends (``ASSIGN_LOCK_KEY``)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", ASSIGN_LOCK_KEY)


async def pick_agent(conn: asyncpg.Connection, queue_id: int, online_ids: list[int], default_capacity: int) -> int | None:
    """The online member of the queue with the fewest open conversations, below their capacity
    (ties: the lowest id); ``None`` when every one is full or nobody is online. Call it under
    ``lock_assignments``."""
    return await conn.fetchval(
        "SELECT user_id FROM (SELECT m.user_id, COALESCE(m.capacity, $3) AS cap,"
        "  (SELECT count(*) FROM wa_contacts c WHERE c.assignee_id = m.user_id AND c.status <> 'closed') AS load"
        "  FROM queue_members m JOIN users u ON u.id = m.user_id"
        "  WHERE m.queue_id = $1 AND m.user_id = ANY($2::bigint[]) AND u.deactivated_at IS NULL"
        "   AND u.role IN ('staff', 'supervisor', 'admin')) t"
        " WHERE load < cap ORDER BY load, user_id LIMIT 1",
        queue_id, online_ids, default_capacity)


async def waiting_in_queue(conn: asyncpg.Connection, queue_id: int, limit: int) -> list[int]:
    """Room ids of the queue's waiting conversations, oldest first, locked (others skipped)."""
    return [int(r["room_id"]) for r in await conn.fetch(
        "SELECT room_id FROM wa_contacts c WHERE c.queue_id = $1 AND c.assignee_id IS NULL AND c.status <> 'closed'"
        " AND c.routing_state = 'routed' AND NOT c.ai_enabled ORDER BY c.queued_at NULLS LAST, c.id LIMIT $2"
        " FOR UPDATE SKIP LOCKED", queue_id, limit)]


# --- the timeline ------------------------------------------------------------------------------------

EVENT_COLS = ("e.id, e.room_id, e.kind, e.actor_id, ua.display_name AS actor_name, e.queue_id, q.name AS queue_name,"
              " e.from_queue_id, fq.name AS from_queue_name, e.from_user_id, fu.display_name AS from_user_name,"
              " e.to_user_id, tu.display_name AS to_user_name, e.note, e.meta, e.created_at")
EVENT_JOINS = (" LEFT JOIN users ua ON ua.id = e.actor_id LEFT JOIN queues q ON q.id = e.queue_id"
               " LEFT JOIN queues fq ON fq.id = e.from_queue_id LEFT JOIN users fu ON fu.id = e.from_user_id"
               " LEFT JOIN users tu ON tu.id = e.to_user_id")


def event_wire(r: asyncpg.Record) -> dict[str, Any]:
    def ref(id_: int | None, name: str | None) -> dict[str, Any] | None:
        return None if id_ is None else {"id": id_, "name": name or ""}

    return {"id": r["id"], "room_id": r["room_id"], "kind": r["kind"], "actor": ref(r["actor_id"], r["actor_name"]),
            "queue": ref(r["queue_id"], r["queue_name"]), "from_queue": ref(r["from_queue_id"], r["from_queue_name"]),
            "from_user": ref(r["from_user_id"], r["from_user_name"]), "to_user": ref(r["to_user_id"], r["to_user_name"]),
            "note": r["note"], "meta": r["meta"], "created_at": iso(r["created_at"])}


async def insert_event(conn: asyncpg.Connection, room_id: int, kind: str, actor_id: int | None = None, *,
                       queue_id: int | None = None, from_queue_id: int | None = None, from_user_id: int | None = None,
                       to_user_id: int | None = None, note: str = "", meta: dict[str, Any] | None = None) -> int:
    return int(await conn.fetchval(
        "INSERT INTO conversation_events (room_id, kind, actor_id, queue_id, from_queue_id, from_user_id, to_user_id,"
        " note, meta) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        room_id, kind, actor_id, queue_id, from_queue_id, from_user_id, to_user_id, note, meta or {}))


async def events_by_id(conn: Conn, ids: list[int]) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {EVENT_COLS} FROM conversation_events e{EVENT_JOINS}"
                            " WHERE e.id = ANY($1::bigint[]) ORDER BY e.id", ids)
    return [event_wire(r) for r in rows]


async def list_events(conn: Conn, room_id: int, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events of the conversation older than ``before_id``, oldest first."""
    rows = await conn.fetch(
        f"SELECT * FROM (SELECT {EVENT_COLS} FROM conversation_events e{EVENT_JOINS}"
        " WHERE e.room_id = $1 AND ($2::bigint IS NULL OR e.id < $2) ORDER BY e.id DESC LIMIT $3) t ORDER BY id",
        room_id, before_id, limit)
    return [event_wire(r) for r in rows]


async def has_event(conn: Conn, room_id: int, kind: str, since_id: int = 0) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM conversation_events WHERE room_id = $1 AND kind = $2 AND id > $3)",
        room_id, kind, since_id))


async def last_event_id(conn: Conn, room_id: int, kinds: list[str]) -> int:
    return int(await conn.fetchval(
        "SELECT COALESCE(max(id), 0) FROM conversation_events WHERE room_id = $1 AND kind = ANY($2::text[])",
        room_id, kinds))
