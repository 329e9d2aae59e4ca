"""``GET /api/v1/search``: full-text search over every message the user may read.

Declared in the same table as ``http.py`` (``chatcore.api``); the query model states the
action's rules (``actions/search.py``: the query's length, the page size, the cursor's form),
so the document promises what the server accepts. The caller's own ``Authorization`` header is
handed to the action, which passes it to chat-archive for the archived part (docs/SEARCH.md).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from chatcore.api import Call, Id, QueryParams, Reply
from chatcore.schemas import MessageRecordWire, Wire

from ..actions import search as actions
from .http import checked, routes, svc_of, user_of

_LEAP_SECOND = re.compile(r"([Tt ]\d\d:\d\d):60")


def parse_instant(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 time (``Z`` or an offset; none: UTC), in UTC. A leap second is
    read as the second before it; a time that leaves the calendar in UTC is clamped to it."""
    at = datetime.fromisoformat(_LEAP_SECOND.sub(r"\1:59", value).replace("Z", "+00:00").replace("z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:
        return (datetime.min if at.year == 1 else datetime.max).replace(tzinfo=UTC)


def _check_instant(value: str) -> str:
    parse_instant(value)
    return value


Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"}), AfterValidator(_check_instant)]


class SearchQuery(QueryParams):
    q: Annotated[str, Field(min_length=1, max_length=actions.QUERY_MAX, pattern=r"^[^\x00]*\S[^\x00]*$",
                            description="words; \"a phrase\" in quotes; or between alternatives; -word excludes"),
                 checked(actions.check_query)]
    room_id: Id | None = Field(default=None, description="only this room (404 if the caller may not read it)")
    from_: Instant | None = Field(default=None, alias="from", description="messages sent at or after this time")
    before: Instant | None = Field(default=None, description="messages sent before this time")
    author: Id | None = Field(default=None, description="only this user's messages")
    cursor: str | None = Field(default=None, pattern=actions.CURSOR_PATTERN,
                               description="next_cursor of the previous page (opaque)")
    limit: int = Field(default=actions.PAGE_DEFAULT, ge=1, le=actions.PAGE_MAX)


class Span(Wire):
    start: int = Field(description="offset in the snippet, in Unicode code points")
    end: int = Field(description="exclusive")


class HitRoom(Wire):
    id: int
    name: str
    kind: Literal["public", "private", "direct", "whatsapp"]


class SearchHit(Wire):
    message: MessageRecordWire
    room: HitRoom
    snippet: str = Field(description="plain text around the matches (never markup)")
    highlights: list[Span] = Field(description="the matched words in snippet")
    source: Literal["hot", "archive"] = Field(description="archive: matched literally, any case (docs/SEARCH.md)")


class SearchPage(Wire):
    hits: list[SearchHit]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last")
    archive_unavailable: bool = Field(description="the archive did not answer: archived hits are missing")


@routes.get("/api/v1/search", "Full-text search in every room the caller may read", query=SearchQuery,
            responses={200: SearchPage},
            description="Ranked hits from the live store, then archived hits (literal match), newest first.")
async def search(call: Call[None, SearchQuery, None]) -> Reply:
    q = call.query
    return Reply(await actions.do_search(
        svc_of(call.request), user_of(call), call.request.headers.get("Authorization", ""), q.q, room_id=q.room_id,
        since=parse_instant(q.from_) if q.from_ else None, before=parse_instant(q.before) if q.before else None,
        author_id=q.author, cursor=q.cursor, limit=q.limit))
