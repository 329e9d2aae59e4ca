"""Campaigns: an approved template sent to every row of a CSV, paced, resumable, watched live.

Lifecycle (``campaigns.status``)::

    draft --start--> running --pause--> paused --resume--> running --(nothing left)--> completed
    draft | running | paused --cancel--> cancelled (queued recipients: skipped, "cancelled")

A campaign is created as a draft naming a number, an approved template and the CSV columns that
fill its parameters (header ones, then body ones); its recipients come from a CSV upload that is
checked whole (header, UTF-8, phones, duplicates, values, row limit) before anything is kept:
one problem and nothing is stored, the answer lists the problems with their line numbers.
Recipients can also be the contacts carrying a label (``do_from_label``): each variable is
filled from contact fields (``{{contact.name}}``, ...) or a fixed text; a contact that cannot
be sent to (no phone, an empty value, opted out, a phone another contact already has) is left
out and reported, the others are kept.

Sending is ``sender.py`` (``CampaignSender``): every node runs it; recipients are claimed in
PostgreSQL and paced through Redis.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Invalid, NotFound, TooLarge
from whatsapp_bridge.templates import PARAM_MAX_CHARS, render

from ..storage import campaigns as db
from ..storage import labels as ldb
from ..storage import whatsapp as wdb
from . import audit
from .wa_templates import check_params

if TYPE_CHECKING:
    from ..context import Services

E164 = re.compile(r"^\+[1-9]\d{7,14}$")  # E.164: a country code and at most 15 digits in all
PHONE_JUNK = re.compile(r"[\s\-().]")
CSV_LINE_MAX = 8192  # characters of one CSV line; a longer one is an error, not a memory spike
CSV_BATCH = 2000  # rows copied into the staging table at once
ERRORS_MAX = 100  # problems listed in one refusal
PREVIEW_ROWS = 5
DIRTY_KEY = "campaign:dirty"  # campaign ids whose progress changed (a Redis set)


def normalise_phone(raw: str) -> str | None:
    """``raw`` as E.164 (``+`` and digits), or None. A number must carry its country code:
    ``+49 170 1234567``, ``0049 170 1234567`` and ``491701234567`` are the same number."""
    cleaned = PHONE_JUNK.sub("", raw)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    elif not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    return cleaned if E164.match(cleaned) else None


async def mark_dirty(svc: Services, campaign_id: int) -> None:
    await svc.redis.sadd(svc.config.redis_prefix + DIRTY_KEY, str(campaign_id))


# --- create, list, change -------------------------------------------------------------------------

async def do_create(svc: Services, actor: audit.Actor, account_id: int, name: str, template: str, language: str,
                    variables: list[str], start_at: datetime | None) -> db.Campaign:
    if await wdb.get_account(svc.pool, account_id) is None:
        raise Invalid("no such WhatsApp number", field="account_id")
    if start_at is not None and start_at <= datetime.now(UTC):
        raise Invalid("start_at is in the past", field="start_at")
    if len(set(variables)) != len(variables):
        raise Invalid("a column may fill one parameter only", field="variables")
    if any(v.strip().lower() == "phone" for v in variables):
        raise Invalid("the phone column cannot fill a parameter", field="variables")
    check_params(await db.get_template(svc.pool, account_id, template, language), variables, field="variables")
    async with svc.pool.acquire() as conn, conn.transaction():
        campaign = await db.insert_campaign(conn, account_id, name, template, language, variables, start_at,
                                            actor.user.id)
        await audit.record(conn, actor, "campaign.create", "campaign", campaign.id,
                           {"template": template, "language": language})
    return campaign


async def get(svc: Services, campaign_id: int) -> db.Campaign:
    campaign = await db.get_campaign(svc.pool, campaign_id)
    if campaign is None:
        raise NotFound("campaign not found")
    return campaign


async def stats(svc: Services, campaign_id: int) -> dict[str, Any]:
    campaign = await get(svc, campaign_id)
    counts = await db.counts(svc.pool, campaign_id)
    failures = [{"code": r["code"], "title": r["title"], "count": r["count"]}
                for r in await db.failures_by_code(svc.pool, campaign_id)]
    return {"campaign_id": campaign.id, "status": campaign.status, "counts": counts, "failures": failures}


_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    # action: (statuses it starts from, the status it leads to)
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("draft", "running", "paused"), "cancelled"),
}


async def _locked(conn: Any, campaign_id: int) -> db.Campaign:
    """The campaign, its row locked until the transaction ends; ``not_found`` when it is gone."""
    campaign = await db.get_campaign(conn, campaign_id, for_update=True)
    if campaign is None:
        raise NotFound("campaign not found")
    return campaign


async def do_move(svc: Services, actor: audit.Actor, campaign_id: int, action: str) -> db.Campaign:
    """Start, pause, resume or cancel; anything else from the current status is ``conflict``."""
    sources, target = _MOVES[action]
    async with svc.pool.acquire() as conn, conn.transaction():
        campaign = await _locked(conn, campaign_id)
        if campaign.status not in sources:
            raise Conflict(f"cannot {action} a campaign that is {campaign.status}", status=campaign.status)
        fields: dict[str, Any] = {"status": target, "pause_reason": "by_staff" if action == "pause" else None}
        if action in ("start", "resume"):
            template = await db.get_template(conn, campaign.account_id, campaign.template, campaign.language)
            check_params(template, campaign.variables, field="variables")
            if (await db.counts(conn, campaign_id))["queued"] == 0:
                raise Invalid("the campaign has no recipients to send to: upload a CSV first", field="recipients")
        if action == "start":
            fields["started_at"] = datetime.now(UTC)
        if action == "cancel":
            fields["finished_at"] = datetime.now(UTC)
            await db.cancel_queued(conn, campaign_id)
        campaign = await db.update_campaign(conn, campaign_id, **fields)
        await audit.record(conn, actor, f"campaign.{action}", "campaign", campaign_id, {"status": target})
    await mark_dirty(svc, campaign_id)
    return campaign


async def do_delete(svc: Services, actor: audit.Actor, campaign_id: int) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        campaign = await _locked(conn, campaign_id)
        if campaign.status == "running":
            raise Conflict("pause or cancel the campaign before deleting it", status=campaign.status)
        await db.delete_campaign(conn, campaign_id)
        await audit.record(conn, actor, "campaign.delete", "campaign", campaign_id, {"name": campaign.name})


# --- the CSV --------------------------------------------------------------------------------------

class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, line: int, message: str, column: str | None = None) -> None:
        self.total += 1
        if len(self.items) < ERRORS_MAX:
            self.items.append({"line": line, "column": column, "message": message})


async def _lines(chunks: AsyncIterator[bytes], problems: _Problems) -> AsyncIterator[tuple[int, str]]:
    """Numbered text lines of a UTF-8 byte stream (a BOM dropped). Bad UTF-8 is reported with
    its line and ends the stream (nothing after it can be trusted)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    pending, line_no, first = "", 0, True
    async for chunk in chunks:
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            # the line of the first bad byte: lines before it in this chunk, after those yielded
            where = line_no + 1 + pending.count("\n") + chunk[:max(0, exc.start)].count(b"\n")
            problems.add(where, "the file is not UTF-8 text (save it as CSV UTF-8)")
            return
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            line_no += 1
            yield line_no, line.rstrip("\r")
        if len(pending) > CSV_LINE_MAX:
            problems.add(line_no + 1, f"the line is longer than {CSV_LINE_MAX} characters")
            return
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        problems.add(line_no + 1, "the file is not UTF-8 text (save it as CSV UTF-8)")
        return
    if pending.strip():
        yield line_no + 1, pending.rstrip("\r")


def _fields(line: str) -> list[str] | None:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if rows else []


async def do_upload(svc: Services, actor: audit.Actor, campaign_id: int,
                    chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Replace a draft's recipients with the CSV in ``chunks``: all rows or none."""
    limit = svc.config.campaign_max_recipients
    problems = _Problems()
    async with svc.pool.acquire() as conn, conn.transaction():
        campaign = await _locked(conn, campaign_id)
        if campaign.status != "draft":
            raise Conflict("recipients can only be uploaded to a draft campaign", status=campaign.status)
        await db.create_staging(conn)
        columns: dict[str, int] | None = None
        batch: list[tuple[int, str, list[str]]] = []
        rows = 0
        async for line_no, line in _lines(chunks, problems):
            fields = _fields(line)
            if columns is None:
                columns = _header(fields, campaign.variables, problems)
                if columns is None:
                    break
                continue
            if not line.strip():
                continue
            rows += 1
            if rows > limit:
                raise TooLarge(f"the file has more than {limit} rows (CAMPAIGN_MAX_RECIPIENTS)", limit=limit)
            row = _row(line_no, fields, columns, campaign.variables, problems)
            if row is not None:
                batch.append(row)
            if len(batch) >= CSV_BATCH:
                await db.stage_rows(conn, batch)
                batch = []
        if columns is None and not problems.total:
            problems.add(1, "the file is empty: the first line must name the columns (phone, ...)")
        if batch:
            await db.stage_rows(conn, batch)
        for dup in await db.staged_duplicates(conn, ERRORS_MAX):
            lines = list(dup["lines"])
            for ln in lines[1:]:
                problems.add(ln, f"duplicate phone {dup['phone']} (first on line {lines[0]})", "phone")
        if problems.total:
            raise Invalid(f"the CSV has {problems.total} problem(s); nothing was stored",
                          reason="csv", problems=problems.items, problem_count=problems.total)
        if rows == 0:
            raise Invalid("the CSV has no recipients", reason="csv", problems=[], problem_count=0)
        count = await db.replace_recipients_from_staging(conn, campaign_id)
        await audit.record(conn, actor, "campaign.recipients", "campaign", campaign_id, {"recipients": count})
    return {"recipients": count, "preview": await preview(svc, campaign_id)}


def _header(fields: list[str] | None, variables: list[str], problems: _Problems) -> dict[str, int] | None:
    if fields is None:
        problems.add(1, "the header line is not valid CSV")
        return None
    names = [f.strip() for f in fields]
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        problems.add(1, "the header names a column twice")
        return None
    columns = {n: i for i, n in enumerate(names)}
    if "phone" not in lowered:
        problems.add(1, "the header has no phone column", "phone")
        return None
    columns["phone"] = lowered.index("phone")
    missing = [v for v in variables if v not in columns]
    for v in missing:
        problems.add(1, f"the header has no column {v!r}, which fills a template parameter", v)
    return None if missing else columns


def _row(line_no: int, fields: list[str] | None, columns: dict[str, int], variables: list[str],
         problems: _Problems) -> tuple[int, str, list[str]] | None:
    if fields is None:
        problems.add(line_no, "not valid CSV (a quote is not closed; values cannot span lines)")
        return None
    width = max(columns.values()) + 1
    if len(fields) != width:
        problems.add(line_no, f"{len(fields)} values, the header has {width} columns")
        return None
    raw = fields[columns["phone"]].strip()
    phone = normalise_phone(raw)
    ok = True
    if phone is None:
        problems.add(line_no, f"{raw!r} is not a phone number with its country code (E.164)", "phone")
        ok = False
    params: list[str] = []
    for v in variables:
        value = fields[columns[v]].strip()
        if not value:
            problems.add(line_no, "empty value: WhatsApp refuses an empty template parameter", v)
            ok = False
        elif len(value) > PARAM_MAX_CHARS:
            problems.add(line_no, f"longer than {PARAM_MAX_CHARS} characters", v)
            ok = False
        params.append(value)
    return (line_no, phone, params) if ok and phone is not None else None


async def preview(svc: Services, campaign_id: int) -> list[dict[str, Any]]:
    campaign = await get(svc, campaign_id)
    template = await db.get_template(svc.pool, campaign.account_id, campaign.template, campaign.language)
    components = template.components if template is not None else []
    return [{"line": r["line"], "phone": r["phone"], "text": render(components, list(r["params"]))}
            for r in await db.first_recipients(svc.pool, campaign_id, PREVIEW_ROWS)]


async def export_rows(pool: asyncpg.Pool, campaign_id: int, page: int = 1000) -> AsyncIterator[list[asyncpg.Record]]:
    after = 0
    while True:
        rows = await db.list_recipients(pool, campaign_id, None, after, page)
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


# --- recipients from a contact label --------------------------------------------------------------

CONTACT_FIELD = re.compile(r"\{\{\s*contact\.([A-Za-z0-9_.-]+)\s*\}\}")
LEFT_OUT_MAX = ERRORS_MAX  # left-out contacts listed in one answer (all are counted)


def default_source(column: str) -> str:
    """What fills ``column`` when the request names no source: the contact field of that name
    (``name``, ``email``, ``phone``), else the contact attribute of that name."""
    return f"{{{{contact.{column}}}}}" if column in ("name", "email", "phone") else \
        f"{{{{contact.attributes.{column}}}}}"


def check_sources(variables: list[str], sources: dict[str, str]) -> dict[str, str]:
    """Every variable's source text; unknown variables or placeholders are ``invalid``."""
    unknown = sorted(set(sources) - set(variables))
    if unknown:
        raise Invalid(f"the campaign has no variable {unknown[0]!r}", field="variables", variable=unknown[0])
    for column, text in sources.items():
        for m in CONTACT_FIELD.finditer(text):
            field = m.group(1)
            if field not in ("name", "email", "phone") and not re.fullmatch(r"attributes\.[A-Za-z0-9_.-]{1,64}", field):
                raise Invalid(f"{{{{contact.{field}}}}} is not a contact field (name, email, phone, attributes.<key>)",
                              field="variables", variable=column)
    return {v: sources.get(v, default_source(v)) for v in variables}


def _fill(text: str, contact: asyncpg.Record) -> str:
    def one(m: re.Match[str]) -> str:
        field = m.group(1)
        if field.startswith("attributes."):
            value = (contact["attributes"] or {}).get(field.removeprefix("attributes."))
            return "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        return str(contact[field] or "")
    return CONTACT_FIELD.sub(one, text).strip()


async def do_from_label(svc: Services, actor: audit.Actor, campaign_id: int, label_id: int,
                        sources: dict[str, str]) -> dict[str, Any]:
    """Replace a draft's recipients with the contacts carrying ``label_id``; those that cannot
    be sent to are left out and listed (``left_out``: contact, reason, the variable if any)."""
    limit = svc.config.campaign_max_recipients
    left_out: list[dict[str, Any]] = []
    left_out_count = 0

    def leave_out(contact: asyncpg.Record, reason: str, variable: str | None = None) -> None:
        nonlocal left_out_count
        left_out_count += 1
        if len(left_out) < LEFT_OUT_MAX:
            left_out.append({"contact_id": contact["id"], "name": contact["name"], "phone": contact["phone"],
                             "reason": reason, "variable": variable})

    async with svc.pool.acquire() as conn, conn.transaction():
        campaign = await _locked(conn, campaign_id)
        if campaign.status != "draft":
            raise Conflict("recipients can only be set on a draft campaign", status=campaign.status)
        if await ldb.get(conn, label_id) is None:
            raise NotFound("label not found")
        filled = check_sources(campaign.variables, sources)
        await db.create_staging(conn)
        seen: set[str] = set()
        position = 0
        async for contacts in db.labelled_contacts(conn, label_id, campaign.account_id, CSV_BATCH):
            batch: list[tuple[int, str, list[str]]] = []
            for contact in contacts:
                phone = normalise_phone(contact["phone"] or "")
                if phone is None:
                    leave_out(contact, "no_phone")
                    continue
                if contact["opted_out"]:
                    leave_out(contact, "opted_out")
                    continue
                if phone in seen:
                    leave_out(contact, "duplicate_phone")
                    continue
                params = [_fill(filled[v], contact) for v in campaign.variables]
                bad = next((v for v, p in zip(campaign.variables, params, strict=True)
                            if not p or len(p) > PARAM_MAX_CHARS), None)
                if bad is not None:
                    leave_out(contact, "empty_value" if not params[campaign.variables.index(bad)] else "too_long", bad)
                    continue
                seen.add(phone)
                position += 1
                if position > limit:
                    raise TooLarge(f"the label has more than {limit} contacts to send to (CAMPAIGN_MAX_RECIPIENTS)",
                                   limit=limit)
                batch.append((position, phone, params))
            if batch:
                await db.stage_rows(conn, batch)
        if position == 0:
            raise Invalid("no contact with this label can be sent to; nothing was stored", reason="label",
                          left_out=left_out, left_out_count=left_out_count)
        count = await db.replace_recipients_from_staging(conn, campaign_id)
        await audit.record(conn, actor, "campaign.recipients", "campaign", campaign_id,
                           {"recipients": count, "label_id": label_id, "left_out": left_out_count})
    return {"recipients": count, "preview": await preview(svc, campaign_id), "left_out": left_out,
            "left_out_count": left_out_count}
