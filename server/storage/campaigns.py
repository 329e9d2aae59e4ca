"""Templates (synced from the Graph API), campaigns, their recipients, and opt-outs.

A recipient's state only moves forward: ``queued -> sending -> sent -> delivered -> read``,
or ends ``failed``, ``skipped`` or ``unknown``. ``sending`` is committed before the Graph call
and names the worker that claimed it (``claimed_by``): a row left ``sending`` by a dead worker
becomes ``unknown``, never ``queued`` again, so nobody is sent a campaign twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from chatcore.events import iso

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

TEMPLATE_COLS = "id, account_id, name, language, status, category, components, param_counts, synced_at"
CAMPAIGN_COLS = ("id, account_id, name, template, language, variables, status, pause_reason, start_at, created_by,"
                 " created_at, started_at, finished_at")
RECIPIENT_COLS = ("id, campaign_id, line, phone, params, state, attempts, wamid, sent_at, replied_at, error_code,"
                  " error_title, reason, updated_at")
# where a recipient ends: nothing more is sent to it
DONE_STATES = ("sent", "delivered", "read", "failed", "skipped", "unknown")
STATE_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}


@dataclass(frozen=True, slots=True)
class Template:
    id: int
    account_id: int
    name: str
    language: str
    status: str
    category: str
    components: list[Any]
    param_counts: dict[str, int]
    synced_at: datetime

    @property
    def param_total(self) -> int:
        return sum(self.param_counts.values())

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "account_id": self.account_id, "name": self.name, "language": self.language,
                "status": self.status, "category": self.category, "components": self.components,
                "param_counts": {"header": self.param_counts.get("header", 0),
                                 "body": self.param_counts.get("body", 0)},
                "synced_at": iso(self.synced_at)}


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    account_id: int
    name: str
    template: str
    language: str
    variables: list[str]
    status: str
    pause_reason: str | None
    start_at: datetime | None
    created_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "account_id": self.account_id, "name": self.name, "template": self.template,
                "language": self.language, "variables": self.variables, "status": self.status,
                "pause_reason": self.pause_reason, "start_at": iso(self.start_at), "created_by": self.created_by,
                "created_at": iso(self.created_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at)}


def _template(row: asyncpg.Record | None) -> Template | None:
    return None if row is None else Template(**dict(row))


def _campaign(row: asyncpg.Record | None) -> Campaign | None:
    return None if row is None else Campaign(**dict(row))


def recipient_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "line": row["line"], "phone": row["phone"], "params": row["params"],
            "state": row["state"], "attempts": row["attempts"], "wamid": row["wamid"], "sent_at": iso(row["sent_at"]),
            "replied_at": iso(row["replied_at"]),
            "error": None if row["error_code"] is None and row["error_title"] is None else
            {"code": row["error_code"], "title": row["error_title"]},
            "reason": row["reason"], "updated_at": iso(row["updated_at"])}


# --- templates ------------------------------------------------------------------------------------

async def set_waba_id(conn: Conn, account_id: int, waba_id: str) -> None:
    await conn.execute("UPDATE wa_accounts SET waba_id = $2 WHERE id = $1", account_id, waba_id)


async def waba_id(conn: Conn, account_id: int) -> str | None:
    value = await conn.fetchval("SELECT waba_id FROM wa_accounts WHERE id = $1", account_id)
    return value if isinstance(value, str) else None


async def replace_templates(conn: asyncpg.Connection, account_id: int, templates: Iterable[dict[str, Any]]) -> int:
    """The account's templates become exactly ``templates`` (name, language, status, category,
    components, param_counts); one transaction is the caller's."""
    names: list[tuple[str, str]] = []
    for t in templates:
        await conn.execute(
            "INSERT INTO wa_templates (account_id, name, language, status, category, components, param_counts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id, name, language) DO UPDATE SET"
            " status = EXCLUDED.status, category = EXCLUDED.category, components = EXCLUDED.components,"
            " param_counts = EXCLUDED.param_counts, synced_at = now()",
            account_id, t["name"], t["language"], t["status"], t["category"], t["components"], t["param_counts"])
        names.append((t["name"], t["language"]))
    await conn.execute(
        "DELETE FROM wa_templates WHERE account_id = $1 AND (name, language) NOT IN"
        " (SELECT * FROM unnest($2::text[], $3::text[]))",
        account_id, [n for n, _ in names], [lang for _, lang in names])
    return len(names)


async def list_templates(conn: Conn, account_id: int) -> list[Template]:
    rows = await conn.fetch(f"SELECT {TEMPLATE_COLS} FROM wa_templates WHERE account_id = $1 ORDER BY name, language",
                            account_id)
    return [Template(**dict(r)) for r in rows]


async def get_template(conn: Conn, account_id: int, name: str, language: str) -> Template | None:
    return _template(await conn.fetchrow(
        f"SELECT {TEMPLATE_COLS} FROM wa_templates WHERE account_id = $1 AND name = $2 AND language = $3",
        account_id, name, language))


async def set_template_status(conn: Conn, account_id: int, name: str, language: str, status: str) -> None:
    """What a send learnt from Meta (a template paused or disabled), until the next sync."""
    await conn.execute("UPDATE wa_templates SET status = $4 WHERE account_id = $1 AND name = $2 AND language = $3",
                       account_id, name, language, status)


# --- campaigns ------------------------------------------------------------------------------------

async def insert_campaign(conn: Conn, account_id: int, name: str, template: str, language: str,
                          variables: list[str], start_at: datetime | None, created_by: int) -> Campaign:
    c = _campaign(await conn.fetchrow(
        "INSERT INTO campaigns (account_id, name, template, language, variables, start_at, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {CAMPAIGN_COLS}",
        account_id, name, template, language, variables, start_at, created_by))
    assert c is not None
    return c


async def get_campaign(conn: Conn, campaign_id: int, *, for_update: bool = False) -> Campaign | None:
    lock = " FOR UPDATE" if for_update else ""
    return _campaign(await conn.fetchrow(f"SELECT {CAMPAIGN_COLS} FROM campaigns WHERE id = $1{lock}", campaign_id))


async def list_campaigns(conn: Conn, limit: int, before: int | None) -> list[Campaign]:
    rows = await conn.fetch(f"SELECT {CAMPAIGN_COLS} FROM campaigns WHERE ($2::bigint IS NULL OR id < $2)"
                            " ORDER BY id DESC LIMIT $1", limit, before)
    return [Campaign(**dict(r)) for r in rows]


async def update_campaign(conn: Conn, campaign_id: int, **fields: Any) -> Campaign:
    allowed = {"status", "pause_reason", "start_at", "started_at", "finished_at"}
    assert fields and set(fields) <= allowed
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
    c = _campaign(await conn.fetchrow(f"UPDATE campaigns SET {sets} WHERE id = $1 RETURNING {CAMPAIGN_COLS}",
                                      campaign_id, *fields.values()))
    assert c is not None
    return c


async def pause_if_running(conn: Conn, campaign_id: int, reason: str) -> bool:
    return (await conn.execute("UPDATE campaigns SET status = 'paused', pause_reason = $2"
                               " WHERE id = $1 AND status = 'running'", campaign_id, reason)).endswith(" 1")


async def delete_campaign(conn: Conn, campaign_id: int) -> None:
    await conn.execute("DELETE FROM campaigns WHERE id = $1", campaign_id)


async def running_campaigns(conn: Conn) -> list[asyncpg.Record]:
    """Running campaigns that are due, with their account's number and token."""
    return await conn.fetch(
        "SELECT c.id, c.account_id, c.template, c.language, a.phone_number_id, a.access_token"
        " FROM campaigns c JOIN wa_accounts a ON a.id = c.account_id"
        " WHERE c.status = 'running' AND (c.start_at IS NULL OR c.start_at <= now()) ORDER BY c.id")


async def complete_if_done(conn: Conn, campaign_id: int) -> bool:
    return (await conn.execute(
        "UPDATE campaigns SET status = 'completed', finished_at = now() WHERE id = $1 AND status = 'running'"
        " AND NOT EXISTS (SELECT 1 FROM campaign_recipients WHERE campaign_id = $1 AND state IN ('queued', 'sending'))",
        campaign_id)).endswith(" 1")


async def counts(conn: Conn, campaign_id: int) -> dict[str, int]:
    """Cumulative counts (sent counts every recipient Meta took, whatever happened after)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS total,"
        " count(*) FILTER (WHERE state = 'queued') AS queued,"
        " count(*) FILTER (WHERE state = 'sending') AS sending,"
        " count(*) FILTER (WHERE wamid IS NOT NULL) AS sent,"
        " count(*) FILTER (WHERE state IN ('delivered', 'read')) AS delivered,"
        " count(*) FILTER (WHERE state = 'read') AS read,"
        " count(*) FILTER (WHERE state = 'failed') AS failed,"
        " count(*) FILTER (WHERE replied_at IS NOT NULL) AS replied,"
        " count(*) FILTER (WHERE state = 'skipped') AS skipped,"
        " count(*) FILTER (WHERE state = 'unknown') AS unknown"
        " FROM campaign_recipients WHERE campaign_id = $1", campaign_id)
    return {k: int(v) for k, v in dict(row).items()}


async def failures_by_code(conn: Conn, campaign_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT error_code AS code, min(error_title) AS title, count(*) AS count FROM campaign_recipients"
        " WHERE campaign_id = $1 AND state = 'failed' GROUP BY error_code ORDER BY count(*) DESC, error_code",
        campaign_id)


# --- recipients -----------------------------------------------------------------------------------

async def create_staging(conn: asyncpg.Connection) -> None:
    """A temporary table for one upload (dropped at commit): rows are checked there in SQL,
    so a large file never sits in memory."""
    await conn.execute("CREATE TEMP TABLE upload_rows (line integer, phone text, params text[]) ON COMMIT DROP")


async def stage_rows(conn: asyncpg.Connection, rows: list[tuple[int, str, list[str]]]) -> None:
    await conn.copy_records_to_table("upload_rows", records=rows,
                                     columns=["line", "phone", "params"])


async def staged_duplicates(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT phone, array_agg(line ORDER BY line) AS lines FROM upload_rows GROUP BY phone"
                            " HAVING count(*) > 1 ORDER BY min(line) LIMIT $1", limit)


async def replace_recipients_from_staging(conn: asyncpg.Connection, campaign_id: int) -> int:
    await conn.execute("DELETE FROM campaign_recipients WHERE campaign_id = $1", campaign_id)
    status = await conn.execute("INSERT INTO campaign_recipients (campaign_id, line, phone, params)"
                                " SELECT $1, line, phone, to_jsonb(params) FROM upload_rows ORDER BY line", campaign_id)
    return int(status.split()[-1])


async def labelled_contacts(conn: asyncpg.Connection, label_id: int, account_id: int,
                            batch: int) -> AsyncIterator[list[asyncpg.Record]]:
    """The contacts carrying ``label_id``, oldest first, in batches (a cursor: the caller's
    transaction), each with whether its phone opted out of ``account_id``'s campaigns."""
    cursor = conn.cursor(
        "SELECT c.id, c.name, c.phone, c.email, c.attributes, (o.phone IS NOT NULL) AS opted_out"
        " FROM contact_labels cl JOIN contacts c ON c.id = cl.contact_id"
        " LEFT JOIN wa_opt_outs o ON o.account_id = $2 AND o.phone = c.phone"
        " WHERE cl.label_id = $1 ORDER BY c.id", label_id, account_id, prefetch=batch)
    rows: list[asyncpg.Record] = []
    async for row in cursor:
        rows.append(row)
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


async def first_recipients(conn: Conn, campaign_id: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {RECIPIENT_COLS} FROM campaign_recipients WHERE campaign_id = $1"
                            " ORDER BY id LIMIT $2", campaign_id, limit)


async def list_recipients(conn: Conn, campaign_id: int, state: str | None, after: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {RECIPIENT_COLS} FROM campaign_recipients WHERE campaign_id = $1"
                            " AND ($2::text IS NULL OR state = $2) AND id > $3 ORDER BY id LIMIT $4",
                            campaign_id, state, after, limit)


async def cancel_queued(conn: Conn, campaign_id: int) -> None:
    await conn.execute("UPDATE campaign_recipients SET state = 'skipped', reason = 'cancelled', updated_at = now()"
                       " WHERE campaign_id = $1 AND state = 'queued'", campaign_id)


async def claim(conn: asyncpg.Connection, campaign_id: int, worker: str) -> tuple[asyncpg.Record, str | None] | None:
    """The next due recipient of a running campaign, moved to ``sending`` for ``worker`` (the
    caller commits before calling the Graph API); skipped at once, with its reason, when its
    phone opted out or was sent a campaign message of this number in the last 24 hours (then
    the reason is returned with it and nothing is to be sent)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT r.id, r.phone, r.params, r.attempts, c.account_id FROM campaign_recipients r"
            " JOIN campaigns c ON c.id = r.campaign_id"
            " WHERE r.campaign_id = $1 AND r.state = 'queued' AND r.next_attempt_at <= now() AND c.status = 'running'"
            " ORDER BY r.next_attempt_at, r.id LIMIT 1 FOR UPDATE OF r SKIP LOCKED", campaign_id)
        if row is None:
            return None
        reason = await conn.fetchval(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM wa_opt_outs WHERE account_id = $1 AND phone = $2) THEN 'opted_out'"
            " WHEN EXISTS (SELECT 1 FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id"
            "   WHERE r.phone = $2 AND c.account_id = $1 AND r.id <> $3"
            "   AND r.sent_at > now() - interval '24 hours') THEN 'contacted_today' END",
            row["account_id"], row["phone"], row["id"])
        if reason is not None:
            await conn.execute("UPDATE campaign_recipients SET state = 'skipped', reason = $2, updated_at = now()"
                               " WHERE id = $1", row["id"], reason)
            return row, reason
        await conn.execute("UPDATE campaign_recipients SET state = 'sending', claimed_by = $2, claimed_at = now(),"
                           " attempts = attempts + 1, updated_at = now() WHERE id = $1", row["id"], worker)
        return row, None


async def mark_sent(conn: Conn, recipient_id: int, worker: str, wamid: str) -> bool:
    """Record Meta's answer; also for a row marked ``unknown`` meanwhile (its worker looked dead
    but was not): the wamid resolves it."""
    return (await conn.execute(
        "UPDATE campaign_recipients SET state = 'sent', wamid = $3, sent_at = now(), reason = NULL,"
        " updated_at = now() WHERE id = $1 AND claimed_by = $2 AND state IN ('sending', 'unknown')",
        recipient_id, worker, wamid)).endswith(" 1")


async def mark_retry(conn: Conn, recipient_id: int, worker: str, delay_s: float, code: int | None,
                     title: str) -> None:
    """A passing failure: Meta did not take the message, so it goes back to the queue."""
    await conn.execute(
        "UPDATE campaign_recipients SET state = 'queued', claimed_by = NULL,"
        " next_attempt_at = now() + make_interval(secs => $3), error_code = $4, error_title = $5, updated_at = now()"
        " WHERE id = $1 AND claimed_by = $2 AND state = 'sending'", recipient_id, worker, delay_s, code, title)


async def mark_failed(conn: Conn, recipient_id: int, worker: str | None, state: str, code: int | None,
                      title: str, reason: str) -> None:
    await conn.execute(
        "UPDATE campaign_recipients SET state = $3, error_code = $4, error_title = $5, reason = $6, updated_at = now()"
        " WHERE id = $1 AND ($2::text IS NULL OR claimed_by = $2) AND state IN ('sending', 'queued')",
        recipient_id, worker, state, code, title, reason)


async def pause_and_requeue(conn: asyncpg.Connection, campaign_id: int, recipient_id: int, worker: str,
                            reason: str) -> bool:
    """Meta refused the send for a reason that holds for the whole campaign (its template paused):
    the campaign pauses and this recipient, not sent, waits. One transaction, the pause first: a
    recipient queued again while the campaign still ran would be claimed and sent again by
    another lane. True when this call paused the campaign."""
    async with conn.transaction():
        paused = await pause_if_running(conn, campaign_id, reason)
        await conn.execute("UPDATE campaign_recipients SET state = 'queued', claimed_by = NULL, updated_at = now()"
                           " WHERE id = $1 AND claimed_by = $2 AND state = 'sending'", recipient_id, worker)
    return paused


async def sending_workers(conn: Conn) -> list[str]:
    return [r["claimed_by"] for r in await conn.fetch(
        "SELECT DISTINCT claimed_by FROM campaign_recipients WHERE state = 'sending'")]


async def mark_unknown(conn: Conn, worker: str) -> list[int]:
    """``worker`` died with these recipients in flight: Meta may or may not have them."""
    rows = await conn.fetch(
        "UPDATE campaign_recipients SET state = 'unknown', reason = 'sender_lost', updated_at = now()"
        " WHERE state = 'sending' AND claimed_by = $1 RETURNING campaign_id", worker)
    return sorted({r["campaign_id"] for r in rows})


async def apply_status(conn: Conn, wamid: str, status: str, code: int | None, title: str | None) -> int | None:
    """A delivery status for a campaign message; returns the campaign id when it moved forward
    (statuses only advance; ``failed`` only from ``sent`` or ``unknown``)."""
    if status == "failed":
        return await conn.fetchval(
            "UPDATE campaign_recipients SET state = 'failed', error_code = $2, error_title = $3, updated_at = now()"
            " WHERE wamid = $1 AND state IN ('sent', 'unknown') RETURNING campaign_id", wamid, code, title)
    if status not in STATE_RANK:
        return None
    lower = [s for s, rank in STATE_RANK.items() if rank < STATE_RANK[status]] + ["unknown"]
    return await conn.fetchval(
        "UPDATE campaign_recipients SET state = $2, updated_at = now() WHERE wamid = $1 AND state = ANY($3::text[])"
        " AND state NOT IN ('queued', 'sending') RETURNING campaign_id", wamid, status, lower)


async def mark_replied(conn: Conn, account_id: int, phone: str) -> asyncpg.Record | None:
    """The latest campaign message of this number to ``phone`` (last 30 days) got a reply."""
    return await conn.fetchrow(
        "UPDATE campaign_recipients SET replied_at = now(), updated_at = now() WHERE id = ("
        " SELECT r.id FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id"
        " WHERE c.account_id = $1 AND r.phone = $2 AND r.wamid IS NOT NULL AND r.replied_at IS NULL"
        " AND r.sent_at > now() - interval '30 days' ORDER BY r.sent_at DESC LIMIT 1)"
        " RETURNING campaign_id", account_id, phone)


async def opt_out(conn: Conn, account_id: int, phone: str, keyword: str) -> bool:
    return (await conn.execute("INSERT INTO wa_opt_outs (account_id, phone, keyword) VALUES ($1, $2, $3)"
                               " ON CONFLICT DO NOTHING", account_id, phone, keyword)).endswith(" 1")


async def set_contact_campaign(conn: Conn, account_id: int, wa_id: str, campaign_id: int) -> int | None:
    return await conn.fetchval("UPDATE wa_contacts SET campaign_id = $3 WHERE account_id = $1 AND wa_id = $2"
                               " RETURNING room_id", account_id, wa_id, campaign_id)
