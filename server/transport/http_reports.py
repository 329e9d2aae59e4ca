"""Desk reports (supervisors and admins): figures per day, queue and agent, and a CSV export.

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import Field

from chatcore.api import Call, QueryParams, Reply
from chatcore.schemas import Wire

from ..actions import reports as actions
from .http import actor_of, routes, svc_of

TZ_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$"
GROUP_PATTERN = r"^(?:day|queue|agent)(?:,(?:day|queue|agent)){0,2}$"


class ReportWindow(QueryParams):
    from_: dt.date = Field(alias="from", description="first day (YYYY-MM-DD) in tz")
    to: dt.date = Field(description=f"last day, inclusive; at most {actions.REPORT_DAYS_MAX} days after from")
    tz: str = Field(default="UTC", max_length=64, pattern=TZ_PATTERN, description="IANA time zone the days are counted in")


class ReportQuery(ReportWindow):
    group_by: str = Field(default="day", pattern=GROUP_PATTERN, description="comma-separated: day, queue, agent")


class Seconds(Wire):
    median: float | None = Field(description="seconds; null when no conversation had one")
    p90: float | None


class QueueRef(Wire):
    id: int
    name: str


class AgentRef(Wire):
    id: int
    display_name: str


class Figures(Wire):
    opened: int = Field(description="conversations (stays) that started in the group")
    resolved: int = Field(description="of those, closed")
    resolved_by_ai: int = Field(description="closed with no person involved: the assistant alone")
    resolved_by_human: int
    first_response_s: Seconds = Field(description="start to the first human reply")
    resolution_s: Seconds = Field(description="start to close")


class ReportRow(Figures):
    day: str | None = Field(default=None, description="when grouped by day")
    queue: QueueRef | None = Field(default=None, description="when grouped by queue; null: never routed")
    agent: AgentRef | None = Field(default=None, description="when grouped by agent; null: no agent")


class ConversationReport(Wire):
    from_: str = Field(alias="from")
    to: str
    tz: str
    group_by: list[str]
    rows: list[ReportRow]
    total: Figures


@routes.get("/api/v1/reports/conversations", "Conversation figures per day, queue and agent (supervisors, admins)",
            auth="supervisor", query=ReportQuery, responses={200: ConversationReport},
            description="Computed from the conversations' timelines: a stay starts when a conversation opens or "
                        "reopens. Medians and p90 are interpolated (percentile_cont).")
async def conversation_report(call: Call[None, ReportQuery, None]) -> Reply:
    q = call.query
    return Reply(await actions.do_report(svc_of(call.request), q.from_, q.to, q.tz, q.group_by.split(",")))


@routes.get("/api/v1/reports/conversations/export", "Every conversation stay of a window as CSV (supervisors, admins)",
            auth="supervisor", query=ReportWindow, responses={200: "text/csv"},
            description="Streamed, one row per stay; the window is bounded. Audited (report.export).")
async def export_conversations(call: Call[None, ReportWindow, None]) -> web.StreamResponse:
    q, request = call.query, call.request
    chunks = actions.do_export(svc_of(request), actor_of(call), q.from_, q.to, q.tz)
    try:
        first = await anext(chunks)  # the window is checked and the audit row written before any header goes out
        resp = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="conversations-{q.from_}-{q.to}.csv"'})
        await resp.prepare(request)
        await resp.write(first)
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        await chunks.aclose()  # a client gone mid-stream: the cursor and its connection go back now
