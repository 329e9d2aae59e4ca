"""WhatsApp accounts, contacts (conversations) and per-message delivery state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from chatcore.events import iso

from .queues import VISIBLE_SQL

ACCOUNT_COLS = "id, phone_number_id, display_phone, name, access_token, app_secret, verify_token, created_at"
CONTACT_COLS = (
    "c.id, c.account_id, c.wa_id, c.name, c.room_id, c.ai_enabled, c.assignee_id, c.status,"
    " c.last_inbound_at, c.staff_read_seq, c.updated_at, c.queue_id, c.routing_state, c.away_sent, c.queued_at,"
    " c.contact_id, c.bsuid, c.session_id, c.channel"
)
# what a conversation view adds to the row: the contact's name (staff may have edited it) and
# the conversation's labels
CONVERSATION_EXTRA = (
    " p.name AS person_name,"
    " (SELECT coalesce(json_agg(json_build_object('id', l.id, 'name', l.name, 'color', l.color)"
    "    ORDER BY lower(l.name), l.id), '[]'::json)"
    "  FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.room_id = c.room_id) AS labels"
)
# a conversation's business side: a Cloud API number, or a linked session (0020_wa_sessions.sql)
CHANNEL_JOIN = ("LEFT JOIN wa_accounts a ON a.id = c.account_id LEFT JOIN wa_sessions ws ON ws.id = c.session_id")
BUSINESS_PHONE = "COALESCE(a.display_phone, '+' || ws.phone, ws.name, '') AS display_phone"

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    phone_number_id: str
    display_phone: str
    name: str
    access_token: str
    app_secret: str
    verify_token: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        # secrets never leave the server
        return {"id": self.id, "phone_number_id": self.phone_number_id, "display_phone": self.display_phone,
                "name": self.name, "created_at": iso(self.created_at)}

    def __repr__(self) -> str:
        return f"Account(id={self.id}, phone_number_id={self.phone_number_id!r})"


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    account_id: int | None  # None for a linked-device conversation
    wa_id: str
    name: str
    room_id: int
    ai_enabled: bool
    assignee_id: int | None
    status: str
    last_inbound_at: datetime | None
    staff_read_seq: int
    updated_at: datetime
    contact_id: int | None = None  # the person (``contacts``)
    bsuid: str | None = None  # their business-scoped user id, when WhatsApp sent one
    queue_id: int | None = None
    routing_state: str = "routed"  # routed, menu, menu_again (server/actions/queues.py)
    away_sent: bool = False
    queued_at: datetime | None = None
    session_id: int | None = None
    channel: str = "cloud_api"


def _account(row: asyncpg.Record | None) -> Account | None:
    return None if row is None else Account(**dict(row))


def _contact(row: asyncpg.Record | None) -> Contact | None:
    return None if row is None else Contact(**{k: row[k] for k in Contact.__slots__})


async def insert_account(pool: Conn, phone_number_id: str, display_phone: str, name: str, access_token: str, app_secret: str, verify_token: str) -> Account:
    row = await pool.fetchrow(
        "INSERT INTO wa_accounts (phone_number_id, display_phone, name, access_token, app_secret, verify_token)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ACCOUNT_COLS}",
        phone_number_id, display_phone, name, access_token, app_secret, verify_token,
    )
    acc = _account(row)
    assert acc is not None
    return acc


async def list_accounts(pool: Conn) -> list[Account]:
    return [Account(**dict(r)) for r in await pool.fetch(f"SELECT {ACCOUNT_COLS} FROM wa_accounts ORDER BY id")]


async def get_account(pool: Conn, account_id: int) -> Account | None:
    return _account(await pool.fetchrow(f"SELECT {ACCOUNT_COLS} FROM wa_accounts WHERE id = $1", account_id))


async def delete_account(pool: Conn, account_id: int) -> bool:
    return (await pool.execute("DELETE FROM wa_accounts WHERE id = $1", account_id)).endswith(" 1")


async def get_contact(conn: Conn, account_id: int, wa_id: str) -> Contact | None:
    return _contact(await conn.fetchrow(
        f"SELECT {CONTACT_COLS} FROM wa_contacts c WHERE c.account_id = $1 AND c.wa_id = $2", account_id, wa_id))


async def contact_by_room(conn: Conn, room_id: int, *, for_update: bool = False) -> Contact | None:
    lock = " FOR UPDATE" if for_update else ""
    return _contact(await conn.fetchrow(f"SELECT {CONTACT_COLS} FROM wa_contacts c WHERE c.room_id = $1{lock}", room_id))


async def contact_of_person(conn: Conn, account_id: int, person_id: int) -> Contact | None:
    """The conversation of the person ``person_id`` (``contacts.id``) on the business number."""
    return _contact(await conn.fetchrow(
        f"SELECT {CONTACT_COLS} FROM wa_contacts c WHERE c.account_id = $1 AND c.contact_id = $2",
        account_id, person_id))


async def get_session_contact(conn: Conn, session_id: int, wa_id: str) -> Contact | None:
    return _contact(await conn.fetchrow(
        f"SELECT {CONTACT_COLS} FROM wa_contacts c WHERE c.session_id = $1 AND c.wa_id = $2", session_id, wa_id))


async def insert_contact(conn: asyncpg.Connection, account_id: int | None, wa_id: str, name: str, room_id: int,
                         contact_id: int | None = None, bsuid: str | None = None,
                         session_id: int | None = None) -> Contact:
    """A conversation on a Cloud API number (``account_id``) or a linked session (``session_id``)."""
    row = await conn.fetchrow(
        "INSERT INTO wa_contacts AS c (account_id, wa_id, name, room_id, contact_id, bsuid, session_id, channel)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        f" RETURNING {CONTACT_COLS}",
        account_id, wa_id, name, room_id, contact_id, bsuid, session_id,
        "cloud_api" if session_id is None else "linked_device",
    )
    contact = _contact(row)
    assert contact is not None
    return contact


async def update_contact(conn: Conn, contact_id: int, **fields: Any) -> Contact:
    allowed = {"name", "ai_enabled", "assignee_id", "status", "last_inbound_at", "staff_read_seq", "queue_id",
               "routing_state", "away_sent", "queued_at", "wa_id", "bsuid", "contact_id"}
    assert fields and set(fields) <= allowed
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
    row = await conn.fetchrow(
        f"UPDATE wa_contacts AS c SET {sets}, updated_at = now() WHERE c.id = $1 RETURNING {CONTACT_COLS}",
        contact_id, *fields.values(),
    )
    contact = _contact(row)
    assert contact is not None
    return contact


async def claim_contact(conn: Conn, contact_id: int, user_id: int) -> Contact | None:
    """Take the conversation for ``user_id`` (human mode, open) unless another person holds it:
    one conditional UPDATE, so of concurrent claims (any node) exactly one matches the row."""
    return _contact(await conn.fetchrow(
        "UPDATE wa_contacts AS c SET ai_enabled = false, assignee_id = $2, status = 'open', updated_at = now()"
        f" WHERE c.id = $1 AND (c.assignee_id IS NULL OR c.assignee_id = $2) RETURNING {CONTACT_COLS}",
        contact_id, user_id))


async def hand_off(conn: Conn, contact_id: int) -> Contact | None:
    """The assistant hands the conversation to people (human mode, pending) if it still answers
    it: None when a person took it over meanwhile (or it is not the assistant's)."""
    return _contact(await conn.fetchrow(
        "UPDATE wa_contacts AS c SET ai_enabled = false, status = 'pending', updated_at = now()"
        f" WHERE c.id = $1 AND c.ai_enabled AND c.assignee_id IS NULL RETURNING {CONTACT_COLS}", contact_id))


async def claim_away(conn: Conn, queue_id: int) -> list[int]:
    """Room ids of the queue's waiting conversations whose contact has not had the away message
    in this stay, marked as having it (each claimed once, whatever node asks)."""
    return [int(r["room_id"]) for r in await conn.fetch(
        "UPDATE wa_contacts c SET away_sent = true WHERE c.queue_id = $1 AND c.assignee_id IS NULL"
        " AND c.status <> 'closed' AND c.routing_state = 'routed' AND NOT c.ai_enabled AND NOT c.away_sent"
        " RETURNING c.room_id", queue_id)]


_VIEW_SELECT = (
    f"SELECT {CONTACT_COLS}, r.last_seq, {BUSINESS_PHONE},"
    " (SELECT row_to_json(x) FROM (SELECT m.id, m.seq, m.body, m.author_kind, m.created_at"
    "    FROM messages m WHERE m.room_id = c.room_id ORDER BY m.seq DESC LIMIT 1) x) AS last_message,"
    " u.id AS a_id, u.username AS a_username, u.display_name AS a_display_name,"
    " q.name AS q_name, q.color AS q_color, cp.id AS campaign_id, cp.name AS campaign_name,"
    f" {CONVERSATION_EXTRA}"
    f" FROM wa_contacts c JOIN rooms r ON r.id = c.room_id {CHANNEL_JOIN}"
    " LEFT JOIN users u ON u.id = c.assignee_id LEFT JOIN queues q ON q.id = c.queue_id"
    " LEFT JOIN contacts p ON p.id = c.contact_id LEFT JOIN campaigns cp ON cp.id = c.campaign_id"
)


async def conversations(pool: Conn, *, status: str | None, assignee_id: int | None, unassigned: bool,
                        ai: bool | None, unread: bool | None, limit: int, queue_id: int | None = None,
                        visible_to: int | None = None, label_id: int | None = None,
                        like: str | None = None, digits: str | None = None, text: str | None = None,
                        ) -> list[asyncpg.Record]:
    """``visible_to``: a staff member's id, to list only what they see (``queues.VISIBLE_SQL``);
    ``label_id``: with that label; ``like`` (an ILIKE pattern on the contact's names and email),
    ``digits`` (a substring of their number) and ``text`` (a full-text query on the messages,
    the ``chat_search`` index of storage/search.py): any of the three matches."""
    return await pool.fetch(
        f"{_VIEW_SELECT}"
        " WHERE ($1::text IS NULL OR c.status = $1)"
        "   AND ($2::bigint IS NULL OR c.assignee_id = $2)"
        "   AND (NOT $3 OR c.assignee_id IS NULL)"
        "   AND ($4::boolean IS NULL OR c.ai_enabled = $4)"
        "   AND ($5::boolean IS NULL OR (r.last_seq > c.staff_read_seq) = $5)"
        "   AND ($7::bigint IS NULL OR c.queue_id = $7)"
        f"   AND ($8::bigint IS NULL OR {VISIBLE_SQL.format(uid='$8')})"
        "   AND ($9::bigint IS NULL OR EXISTS (SELECT 1 FROM conversation_labels cl"
        "        WHERE cl.room_id = c.room_id AND cl.label_id = $9))"
        "   AND ($10::text IS NULL OR c.name ILIKE $10 OR p.name ILIKE $10 OR p.email ILIKE $10"
        "        OR ($11::text IS NOT NULL AND (c.wa_id LIKE '%' || $11 || '%' OR p.phone LIKE '%' || $11 || '%'))"
        "        OR ($12::text IS NOT NULL AND EXISTS (SELECT 1 FROM messages m WHERE m.room_id = c.room_id"
        "            AND m.deleted_at IS NULL"
        "            AND m.search_doc @@ websearch_to_tsquery('chat_search', chat_unaccent($12)))))"
        " ORDER BY c.updated_at DESC LIMIT $6",
        status, assignee_id, unassigned, ai, unread, limit, queue_id, visible_to, label_id, like, digits, text,
    )


async def conversation_row(pool: Conn, room_id: int) -> asyncpg.Record | None:
    rows = await pool.fetch(f"{_VIEW_SELECT} WHERE c.room_id = $1", room_id)
    return rows[0] if rows else None


async def contact_conversations(pool: Conn, contact_id: int, limit: int) -> list[asyncpg.Record]:
    """The conversations of the person ``contact_id`` on every business number, the most recently
    active first."""
    return await pool.fetch(f"{_VIEW_SELECT} WHERE c.contact_id = $1 ORDER BY c.updated_at DESC, c.id DESC LIMIT $2",
                            contact_id, limit)


async def claim_inbound(conn: asyncpg.Connection, wamid: str, room_id: int) -> bool:
    """Reserve an inbound wamid; False when it was seen before (a webhook replay)."""
    status = await conn.execute(
        "INSERT INTO wa_messages (message_id, room_id, wamid, direction, status) VALUES (0, $1, $2, 'in', 'received')"
        " ON CONFLICT (wamid) DO NOTHING",
        room_id, wamid,
    )
    return status.endswith(" 1")


async def claim_sent(conn: asyncpg.Connection, wamid: str, room_id: int) -> None:
    """Record the wamid of a message the business sent from elsewhere (the linked phone), as
    sent; the caller checked (under the transaction) that it was not seen before."""
    await conn.execute(
        "INSERT INTO wa_messages (message_id, room_id, wamid, direction, status) VALUES (0, $1, $2, 'out', 'sent')",
        room_id, wamid,
    )


async def set_inbound_message(conn: asyncpg.Connection, wamid: str, message_id: int) -> None:
    await conn.execute("UPDATE wa_messages SET message_id = $2 WHERE wamid = $1", wamid, message_id)


async def insert_outbound(pool: Conn, message_id: int, room_id: int) -> int:
    return int(await pool.fetchval(
        "INSERT INTO wa_messages (message_id, room_id, direction, status) VALUES ($1, $2, 'out', 'queued') RETURNING id",
        message_id, room_id))


async def outbound_sent(pool: asyncpg.Pool, row_id: int, wamids: list[str]) -> None:
    """The first chunk's wamid goes on the queued row; further chunks get rows of their own."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("UPDATE wa_messages SET wamid = $2, status = 'sent', updated_at = now()"
                                  " WHERE id = $1 RETURNING message_id, room_id", row_id, wamids[0])
        for extra in wamids[1:]:
            await conn.execute("INSERT INTO wa_messages (message_id, room_id, wamid, direction, status)"
                               " VALUES ($1, $2, $3, 'out', 'sent') ON CONFLICT (wamid) DO NOTHING",
                               row["message_id"], row["room_id"], extra)


async def outbound_retry_later(pool: Conn, row_id: int, code: int | None, title: str, delay_s: float) -> int:
    """Keep the row queued for another attempt after ``delay_s``; returns the attempts so far."""
    return int(await pool.fetchval(
        "UPDATE wa_messages SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $4),"
        " error_code = $2, error_title = $3, updated_at = now() WHERE id = $1 RETURNING attempts",
        row_id, code, title, delay_s))


async def claim_due_outbound(pool: Conn, limit: int, lease_s: float, stuck_after_s: float) -> list[asyncpg.Record]:
    """Queued outbound rows whose next attempt is due, or whose first attempt has been running for
    ``stuck_after_s`` (its node died mid-send); each claimed for ``lease_s`` so that one node
    sends it. Skips rows another node is claiming."""
    return await pool.fetch(
        "UPDATE wa_messages w SET next_attempt_at = now() + make_interval(secs => $2), updated_at = now()"
        " WHERE w.id IN (SELECT id FROM wa_messages WHERE direction = 'out' AND status = 'queued'"
        "  AND (next_attempt_at <= now()"
        "   OR (next_attempt_at IS NULL AND updated_at < now() - make_interval(secs => $3)))"
        "  ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING w.id, w.message_id, w.room_id, w.attempts",
        limit, lease_s, stuck_after_s)


async def outbound_failed(pool: Conn, row_id: int, code: int | None, title: str) -> None:
    await pool.execute("UPDATE wa_messages SET status = 'failed', error_code = $2, error_title = $3, updated_at = now()"
                       " WHERE id = $1", row_id, code, title)


async def get_by_wamid_for_update(conn: asyncpg.Connection, wamid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, message_id, room_id, status FROM wa_messages WHERE wamid = $1 FOR UPDATE", wamid)


async def set_status(conn: asyncpg.Connection, row_id: int, status: str, code: int | None, title: str | None) -> None:
    await conn.execute("UPDATE wa_messages SET status = $2, error_code = $3, error_title = $4, updated_at = now()"
                       " WHERE id = $1", row_id, status, code, title)
