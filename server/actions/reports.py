"""Desk reports: per day, queue and agent, how many conversations opened and were resolved (by
the assistant alone or by a person), first response and resolution times (median and p90);
and the same window exported as CSV, one row per stay (``storage/reports.py`` defines a stay).

Supervisors and admins read them (``auth="supervisor"``). Windows are whole days in a time
zone, at most ``REPORT_DAYS_MAX`` long; the export streams from a server-side cursor, so its
memory stays flat, and is audited (``report.export``) before the first row leaves.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatcore.errors import Invalid
from chatcore.events import iso

from ..storage import reports as db
from . import audit

if TYPE_CHECKING:
    from ..context import Services

REPORT_DAYS_MAX = 366
EXPORTED = "report.export"
CSV_COLUMNS = ("room_id", "contact_wa_id", "contact_name", "day", "started_at", "queue", "agent",
               "first_response_at", "closed_at", "resolved_by", "first_response_s", "resolution_s")


def window(start: date, end: date, tz: str) -> tuple[datetime, datetime, str]:
    """The UTC instants of ``start`` 00:00 to the end of ``end`` in ``tz``, checked."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {tz!r}: an IANA name such as Europe/Berlin", field="tz") from None
    if end < start:
        raise Invalid("to is before from", field="to")
    if (end - start).days + 1 > REPORT_DAYS_MAX:
        raise Invalid(f"a report covers at most {REPORT_DAYS_MAX} days", field="to", max_days=REPORT_DAYS_MAX)
    first = datetime.combine(start, time(0), zone).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(0), zone).astimezone(UTC)
    return first, after, tz


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _figures(r: Any) -> dict[str, Any]:
    return {
        "opened": r["opened"], "resolved": r["resolved"],
        "resolved_by_ai": r["resolved_by_ai"], "resolved_by_human": r["resolved_by_human"],
        "first_response_s": {"median": _seconds(r["frt_median"]), "p90": _seconds(r["frt_p90"])},
        "resolution_s": {"median": _seconds(r["res_median"]), "p90": _seconds(r["res_p90"])},
    }


async def do_report(svc: Services, start: date, end: date, tz: str, group_by: list[str]) -> dict[str, Any]:
    first, after, tz = window(start, end, tz)
    dims = list(dict.fromkeys(group_by))
    rows = await db.summary(svc.pool, first, after, tz, dims)
    total = (await db.summary(svc.pool, first, after, tz, []))[0]
    queues, agents = await db.names(svc.pool, [r["queue_id"] for r in rows if "queue" in dims and r["queue_id"]],
                                    [r["agent_id"] for r in rows if "agent" in dims and r["agent_id"]])
    out = []
    for r in rows:
        row: dict[str, Any] = {}
        if "day" in dims:
            row["day"] = r["day"].isoformat()
        if "queue" in dims:
            qid = r["queue_id"]
            row["queue"] = None if qid is None else {"id": qid, "name": queues.get(qid, "")}
        if "agent" in dims:
            aid = r["agent_id"]
            row["agent"] = None if aid is None else {"id": aid, "display_name": agents.get(aid, "")}
        out.append(row | _figures(r))
    return {"from": start.isoformat(), "to": end.isoformat(), "tz": tz, "group_by": dims,
            "rows": out, "total": _figures(total)}


def _cell(value: Any) -> str:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a leading '."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def do_export(svc: Services, actor: audit.Actor, start: date, end: date, tz: str) -> AsyncGenerator[bytes, None]:
    """CSV chunks of every stay in the window, header first. The audit row is committed before
    the first chunk is produced."""
    first, after, tz = window(start, end, tz)
    async with svc.pool.acquire() as conn:
        async with conn.transaction():
            await audit.record(conn, actor, EXPORTED, "report", None,
                               {"report": "conversations", "from": start.isoformat(), "to": end.isoformat(), "tz": tz})
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(CSV_COLUMNS)
        async with conn.transaction(readonly=True):
            async for r in db.stays(conn, first, after, tz):
                frt = (r["first_response_at"] - r["started"]).total_seconds() if r["first_response_at"] else None
                res = (r["closed_at"] - r["started"]).total_seconds() if r["closed_at"] else None
                resolved_by = "" if r["closed_at"] is None else "human" if r["human"] else "ai"
                out.writerow([_cell(v) for v in (
                    r["room_id"], r["wa_id"], r["contact_name"], r["day"].isoformat(),
                    iso(r["started"]), r["queue_name"], r["agent_name"],
                    iso(r["first_response_at"]) if r["first_response_at"] else None,
                    iso(r["closed_at"]) if r["closed_at"] else None, resolved_by,
                    _seconds(frt), _seconds(res))])
                if buf.tell() >= 64 * 1024:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue().encode()
