"""The audit log listing (admins): who changed access or data, filtered and paged newest first.

Routes join ``http.routes`` on import (``server/app.py`` imports this module). Supervisors are
refused like every other non-admin: the log names every admin action and client address.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from chatcore.api import Call, Cursor, Id, QueryParams, Reply
from chatcore.schemas import Wire

from ..actions import audit as actions
from .http import routes, svc_of
from .http_search import Instant, parse_instant

NAME_PATTERN = r"^[a-z_]+(?:\.[a-z_]+)*$"


class AuditQuery(QueryParams):
    actor: Id | None = Field(default=None, description="only this user's actions")
    action: str | None = Field(default=None, max_length=64, pattern=NAME_PATTERN,
                               description="e.g. user.role, note.add, conversation.assign")
    target_type: str | None = Field(default=None, max_length=32, pattern=NAME_PATTERN,
                                    description="e.g. user, conversation, wa_account, canned_reply, room")
    from_: Instant | None = Field(default=None, alias="from", description="entries at or after this time")
    before: Instant | None = Field(default=None, description="entries before this time")
    cursor: Cursor | None = Field(default=None, description="next_cursor of the previous page")
    limit: int = Field(default=50, ge=1, le=actions.AUDIT_PAGE_MAX)


class AuditActor(Wire):
    id: int
    username: str
    display_name: str


class AuditEntry(Wire):
    id: int
    actor: AuditActor | None = Field(description="null: the command line on the host")
    action: str
    target_type: str
    target_id: int | None
    meta: dict[str, Any] = Field(description="the action's details; ip: the client's address")
    created_at: str


class AuditPage(Wire):
    entries: list[AuditEntry] = Field(description="newest first")
    next_cursor: int | None = Field(description="pass as cursor for the next (older) page; null on the last")


@routes.get("/api/v1/audit", "The audit log, newest first (admins)", auth="admin", query=AuditQuery,
            responses={200: AuditPage})
async def list_audit(call: Call[None, AuditQuery, None]) -> Reply:
    q = call.query
    entries, next_cursor = await actions.do_list_audit(
        svc_of(call.request), actor_id=q.actor, action=q.action, target_type=q.target_type,
        since=parse_instant(q.from_) if q.from_ else None, before=parse_instant(q.before) if q.before else None,
        cursor=q.cursor, limit=q.limit)
    return Reply({"entries": entries, "next_cursor": next_cursor})
