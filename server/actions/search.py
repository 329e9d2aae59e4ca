"""Search: every message the user may read, hot store first, then the archive.

Order of a search:

1. check the query (non-blank, at most ``QUERY_MAX`` characters; operators and quotes are the
   query language, not errors);
2. decide the rooms: with ``room_id``, that room if ``access_room_by_id`` lets the user read it
   (else ``not_found``, as everywhere); without, every room ``chatcore.access.can_read_room``
   allows the user (their rooms, public rooms, WhatsApp rooms for staff). The compliance
   permission does not reach search: it is for reading a named room's history, audited;
3. hot store: PostgreSQL full-text search in those rooms (``storage/search.py``), ranked;
4. when the hot hits run out and some of those rooms have archived messages, continue into
   chat-archive's literal search with the user's own bearer token: chat-archive asks chat-server
   about this user and applies the same rule (the service token, which chat-server uses for
   history it already checked, is never used for search). chat-server also keeps only archive
   hits in the rooms it computed, not deleted, and below each room's ``archived_upto_seq`` (a
   message the relay moved but has not deleted yet is still a hot hit: never twice).
   No answer from the archive: the hot hits with ``archive_unavailable: true``.

The cursor is opaque to clients; it is ``h<score>.<micros>.<id>`` (the last hot hit: the next
page starts below it) or ``a[<archive cursor>]`` (in the archive part).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chatcore.access import Principal, can_read_room
from chatcore.errors import Invalid, Unavailable
from chatcore.events import MessageRecord

from ..files.service import signed_wire
from ..storage import search as db
from .rooms import access_room_by_id

if TYPE_CHECKING:
    from ..context import Services
    from ..storage.users import User

QUERY_MAX = 200  # characters; a longer query is a pasted text, not a search
PAGE_DEFAULT, PAGE_MAX = 20, 50
SNIPPET_MAX = 240  # characters of an archived hit's snippet (hot ones: ts_headline's fragments)
ELLIPSIS = "…"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR_PATTERN = r"^(h[0-9]{1,12}\.[0-9]{1,16}\.[0-9]{1,18}|a([0-9]{1,16}\.[0-9]{1,18})?)$"
_HOT_CURSOR = re.compile(r"^h([0-9]{1,12})\.([0-9]{1,16})\.([0-9]{1,18})$")
_ARCHIVE_CURSOR = re.compile(r"^a([0-9]{1,16}\.[0-9]{1,18})?$")
_STRIP_MARKERS = {ord(c): None for c in db.MARKERS}


def check_query(q: Any) -> str:
    if not isinstance(q, str) or not q.strip() or len(q) > QUERY_MAX or "\x00" in q:
        raise Invalid(f"q must be 1-{QUERY_MAX} characters, not only spaces", field="q")
    return q.strip()


@dataclass(frozen=True, slots=True)
class Cursor:
    hot: db.After | None  # below this hit in the hot store
    archive: bool  # in the archive part
    archive_cursor: str | None  # chat-archive's own cursor


def decode_cursor(value: str | None) -> Cursor:
    if value is None:
        return Cursor(None, False, None)
    if m := _HOT_CURSOR.match(value):
        at = EPOCH + timedelta(microseconds=int(m[2]))
        return Cursor(db.After(int(m[1]), at, int(m[3])), False, None)
    if m := _ARCHIVE_CURSOR.match(value):
        return Cursor(None, True, m[1])
    raise Invalid("cursor is not one this server gave", field="cursor")


def _hot_cursor(hit: db.HotHit) -> str:
    micros = (hit.message.created_at - EPOCH) // timedelta(microseconds=1)
    return f"h{hit.score}.{micros}.{hit.message.id}"


def _parse_marked(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Text with ts_headline's markers -> (plain text, [start, end) spans)."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    length, start = 0, -1
    for ch in text:
        if ch == db.MARK_START:
            start = length
        elif ch == db.MARK_STOP:
            if start >= 0 and length > start:
                spans.append((start, length))
            start = -1
        else:
            out.append(ch)
            length += 1
    return "".join(out), spans


def _locate(plain: str, spans: list[tuple[int, int]], folded: str, at: int) -> tuple[int, int, list[tuple[int, int]]]:
    """Where a fragment's words are in ``folded`` (from ``at`` on): (start, end, match spans),
    or start -1. ts_headline leaves out some tokens (markup-like ``<...>`` ones), so the fragment
    is not always one substring: its words are found one by one, in order."""
    found: list[tuple[int, int, int]] = []  # (start in plain, end in plain, start in folded)
    for m in re.finditer(r"\w+", plain):
        p = folded.find(m[0], at)
        if p < 0:
            continue
        found.append((m.start(), m.end(), p))
        at = p + len(m[0])
    if not found:
        return -1, -1, []
    out = []
    for s, e in spans:
        inside = [f for f in found if f[0] >= s and f[1] <= e]
        if inside:
            out.append((inside[0][2], inside[-1][2] + inside[-1][1] - inside[-1][0]))
    return found[0][2], found[-1][2] + found[-1][1] - found[-1][0], out


def hot_snippet(body: str, folded: str, headline: str) -> tuple[str, list[tuple[int, int]]]:
    """The headline's fragments cut from the original text (accents and markup-like text kept),
    with the match spans, in Unicode code points. ``folded`` is ``chat_unaccent`` of ``body``
    without the marker characters: one character for one, so positions found in it are
    positions in the original. A short body comes back whole."""
    clean = body.translate(_STRIP_MARKERS)
    if len(clean) != len(folded):  # not aligned (cannot happen with chat_unaccent): the headline as is
        plain, spans = _parse_marked(headline.replace(db.FRAGMENT_SEP, " " + ELLIPSIS + " "))
        return plain, spans
    whole = len(clean) <= db.WHOLE_MAX
    text, spans, at = ("", [], 0)
    whole_spans: list[tuple[int, int]] = []
    for fragment in headline.split(db.FRAGMENT_SEP):
        start, end, found = _locate(*_parse_marked(fragment), folded, at)
        if start < 0:
            continue
        if whole:
            whole_spans += found
        else:
            prefix = (" " if text else "") + (ELLIPSIS if start > 0 else "")
            base = len(text) + len(prefix) - start
            text += prefix + clean[start:end]
            spans += [(base + s, base + e) for s, e in found]
        at = end
    if whole:
        return clean, whole_spans
    if not text:
        return clean[:SNIPPET_MAX], []
    if at < len(clean.rstrip()):
        text += ELLIPSIS
    return text, spans


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    literal: str  # what chat-archive matches as a substring, any case
    excluded: tuple[str, ...]  # -words: hits containing them are dropped


def archive_query(q: str) -> ArchiveQuery:
    """The websearch query as the archive's literal match can take it: quotes removed, ``-word``
    terms left out of the literal and used to drop hits; ``or`` stays a literal word."""
    words, excluded = [], []
    for token in q.replace('"', " ").split():
        if token.startswith("-") and len(token) > 1:
            excluded.append(token[1:].casefold())
        elif token != "-":
            words.append(token)
    return ArchiveQuery(" ".join(words), tuple(excluded))


def archive_snippet(body: str, literal: str) -> tuple[str, list[tuple[int, int]]]:
    matches = [(m.start(), m.end()) for m in re.finditer(re.escape(literal), body, re.IGNORECASE)] if literal else []
    if len(body) <= SNIPPET_MAX or not matches:
        return body[:SNIPPET_MAX], [s for s in matches if s[1] <= SNIPPET_MAX]
    start = max(0, matches[0][0] - SNIPPET_MAX // 3)
    end = min(len(body), start + SNIPPET_MAX)
    prefix = ELLIPSIS if start > 0 else ""
    shift = len(prefix) - start
    text = prefix + body[start:end] + (ELLIPSIS if end < len(body) else "")
    return text, [(s + shift, e + shift) for s, e in matches if s >= start and e <= end]


def _hit(message: dict[str, Any], room: db.RoomInfo, snippet: tuple[str, list[tuple[int, int]]],
         source: str) -> dict[str, Any]:
    return {"message": message, "room": {"id": room.id, "name": room.name, "kind": room.kind},
            "snippet": snippet[0], "highlights": [{"start": s, "end": e} for s, e in snippet[1]], "source": source}


async def readable_room_ids(svc: Services, user: User, room_id: int | None) -> list[int]:
    if room_id is not None:
        return [(await access_room_by_id(svc, user, room_id)).id]
    principal = Principal(user.id, user.role)
    return [f.id for f in await db.searchable_rooms(svc.pool, user.id) if can_read_room(principal, f)]


async def do_search(svc: Services, user: User, authorization: str, q: Any, *, room_id: int | None = None,
                    since: datetime | None = None, before: datetime | None = None, author_id: int | None = None,
                    cursor: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """A page of hits: ``{hits, next_cursor, archive_unavailable}``, best first (hot hits by
    rank, then archived hits newest first)."""
    q = check_query(q)
    size = limit or PAGE_DEFAULT
    if not 1 <= size <= PAGE_MAX:
        raise Invalid(f"limit must be 1-{PAGE_MAX}", field="limit")
    position = decode_cursor(cursor)
    room_ids = await readable_room_ids(svc, user, room_id)
    hits: list[dict[str, Any]] = []
    page: dict[str, Any] = {"hits": hits, "next_cursor": None, "archive_unavailable": False}
    if not room_ids:
        return page
    if not position.archive:
        found = await db.search_hot(svc.pool, q, room_ids, author_id=author_id, since=since, before=before,
                                    after=position.hot, limit=size + 1)
        rooms = await db.rooms_info(svc.pool, list({h.message.room_id for h in found}))
        wires = signed_wire(svc, [h.message for h in found[:size]])
        for h, wire in zip(found[:size], wires, strict=True):
            hits.append(_hit(wire, rooms[h.message.room_id], hot_snippet(h.message.body, h.folded, h.headline),
                             "hot"))
        if len(found) > size:
            page["next_cursor"] = _hot_cursor(found[size - 1])
            return page
    if not await _archive_may_hold(svc, room_ids, since):
        return page
    if len(hits) == size:
        page["next_cursor"] = "a"  # the archive part starts on the next page
        return page
    await _archive_part(svc, page, authorization, q, room_ids, room_id=room_id, since=since, before=before,
                        author_id=author_id, archive_cursor=position.archive_cursor, size=size - len(hits))
    return page


async def _archive_may_hold(svc: Services, room_ids: list[int], since: datetime | None) -> bool:
    """Whether archived messages could match: some room has them, and the time range reaches
    back past the hot retention (messages leave PostgreSQL once older than it)."""
    if since is not None and since > datetime.now(UTC) - timedelta(seconds=svc.config.hot_retention_s):
        return False
    return await db.any_archived(svc.pool, room_ids)


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _archive_part(svc: Services, page: dict[str, Any], authorization: str, q: str, room_ids: list[int], *,
                        room_id: int | None, since: datetime | None, before: datetime | None, author_id: int | None,
                        archive_cursor: str | None, size: int) -> None:
    query = archive_query(q)
    if not query.literal:
        return
    if svc.archive is None:
        page["archive_unavailable"] = True
        return
    params = {"q": query.literal, "limit": str(size), "order": "desc"}
    if room_id is not None:
        params["room_id"] = str(room_id)
    elif author_id is not None:
        params["user_id"] = str(author_id)
    else:
        params["scope"] = "readable"
    if room_id is not None and author_id is not None:
        params["user_id"] = str(author_id)  # chat-archive's room search takes both
    if since is not None:
        params["from"] = _instant(since)
    if before is not None:
        params["to"] = _instant(before)
    if archive_cursor is not None:
        params["cursor"] = archive_cursor
    try:
        found, next_cursor = await svc.archive.search(authorization, params)
    except Unavailable:
        page["archive_unavailable"] = True
        return
    readable = set(room_ids)
    rooms = await db.rooms_info(svc.pool, list({m.room_id for m in found if m.room_id in readable}))
    kept: list[MessageRecord] = [
        m for m in found
        # the user's rooms as chat-server computed them; archived only (below archived_upto_seq:
        # one the relay has not deleted yet is a hot hit); the author filter applies in a room too
        if m.room_id in rooms and m.seq <= rooms[m.room_id].archived_upto_seq and m.deleted_at is None
        and (author_id is None or m.author_id == author_id)
        and not any(word in m.body.casefold() for word in query.excluded)
    ]
    for m, wire in zip(kept, signed_wire(svc, kept), strict=True):
        page["hits"].append(_hit(wire, rooms[m.room_id], archive_snippet(m.body, query.literal), "archive"))
    page["next_cursor"] = f"a{next_cursor}" if next_cursor else None
