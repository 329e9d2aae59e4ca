"""Canned replies: saved answers staff insert into a WhatsApp conversation by their shortcut.

Two scopes: ``shared`` (one set for the whole desk, created, changed and deleted by supervisors
and admins) and ``personal`` (each staff member's own, seen and changed by them only). A staff
member sees the shared set and their own; someone else's personal reply is ``not_found``, as if
it did not exist.

A body may hold variables, filled in when the reply is rendered for a conversation
(``do_render``): ``{{contact.name}}`` (the contact's name as staff set it, else their WhatsApp
profile name, or their number) and
``{{agent.name}}`` (the display name of the staff member rendering it). An unknown variable is
refused when the reply is saved (``invalid`` naming it), so rendering never meets one.

Every create, change and delete writes its audit row in the same transaction.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Conflict, Forbidden, Invalid, NotFound
from chatcore.types import DESK_MANAGER_ROLES

from ..storage import canned_replies as db
from ..storage import contacts as cdb
from ..storage import whatsapp as wdb
from . import audit

if TYPE_CHECKING:
    from ..context import Services

SHORTCUT_MAX = 32
SHORTCUT_PATTERN = rf"^[a-z0-9][a-z0-9_-]{{0,{SHORTCUT_MAX - 1}}}$"
BODY_MAX_CHARS = 4096  # WhatsApp's longest text message
VARIABLES = ("contact.name", "agent.name")
LIST_MAX = 200
CREATED, UPDATED, DELETED = "canned_reply.create", "canned_reply.update", "canned_reply.delete"

_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_SHORTCUT = re.compile(SHORTCUT_PATTERN)
# the body rule as one regular expression, for the API document: no NUL; "{{" only as a known
# variable (one optional space inside each brace pair), a single "{" only before another
# character; something other than spaces first. No lookarounds: test-data generators (the
# contract test's) handle them by rejection, which never ends on a pattern like this one.
_KNOWN = "|".join(re.escape(v) for v in VARIABLES)
_PIECE = rf"[^{{\x00]|\{{[^{{\x00]|\{{\{{ ?(?:{_KNOWN}) ?\}}\}}"
BODY_PATTERN = rf"^\s*(?:[^\s{{\x00]|\{{[^{{\x00]|\{{\{{ ?(?:{_KNOWN}) ?\}}\}})(?:{_PIECE})*$"


def check_shortcut(value: Any) -> Any:
    if isinstance(value, str):
        value = value.removeprefix("/")
        if not _SHORTCUT.match(value):
            raise Invalid(f"a shortcut is 1-{SHORTCUT_MAX} lowercase letters, digits, '_' or '-' (typed after '/')",
                          field="shortcut")
    return value


def check_body(value: Any) -> Any:
    """Refuse an empty body, NUL, and a variable other than ``VARIABLES`` (named in the error)."""
    if not isinstance(value, str):
        return value
    if not value.strip() or "\x00" in value:
        raise Invalid("a canned reply needs some text (and no NUL)", field="body")
    for m in _VARIABLE.finditer(value):
        if m.group(1) not in VARIABLES:
            raise Invalid(f"unknown variable {{{{{m.group(1)}}}}}: use {', '.join('{{' + v + '}}' for v in VARIABLES)}",
                          field="body", variable=m.group(1))
    if "{{" in _VARIABLE.sub("", value):
        raise Invalid("'{{' starts a variable: close it with '}}'", field="body")
    return value


def _may_change(user_scope_owner: int | None, actor: audit.Actor) -> None:
    if user_scope_owner is None and actor.user.role not in DESK_MANAGER_ROLES:
        raise Forbidden("only supervisors and admins change shared canned replies")


async def do_list(svc: Services, actor: audit.Actor, prefix: str, limit: int) -> list[db.CannedReply]:
    return await db.visible(svc.pool, actor.user.id, prefix.removeprefix("/"), min(limit, LIST_MAX))


async def do_create(svc: Services, actor: audit.Actor, scope: str, shortcut: str, body: str) -> db.CannedReply:
    owner = None if scope == "shared" else actor.user.id
    _may_change(owner, actor)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            reply = await db.insert(conn, owner, shortcut, body, actor.user.id)
            await audit.record(conn, actor, CREATED, "canned_reply", reply.id, {"scope": scope, "shortcut": shortcut})
    except asyncpg.UniqueViolationError:
        raise Conflict(f"/{shortcut} is already a {scope} canned reply", field="shortcut") from None
    return reply


async def do_update(svc: Services, actor: audit.Actor, reply_id: int, shortcut: str | None,
                    body: str | None) -> db.CannedReply:
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            before = await db.get_visible(conn, actor.user.id, reply_id, for_update=True)
            if before is None:
                raise NotFound("canned reply not found")
            _may_change(before.owner_id, actor)
            reply = await db.update(conn, reply_id, shortcut or before.shortcut, body if body is not None else before.body)
            changed = [f for f in ("shortcut", "body") if getattr(reply, f) != getattr(before, f)]
            await audit.record(conn, actor, UPDATED, "canned_reply", reply_id,
                               {"scope": reply.scope, "shortcut": reply.shortcut, "changed": changed})
    except asyncpg.UniqueViolationError:
        raise Conflict(f"/{shortcut} is already a canned reply in this scope", field="shortcut") from None
    return reply


async def do_delete(svc: Services, actor: audit.Actor, reply_id: int) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        reply = await db.get_visible(conn, actor.user.id, reply_id, for_update=True)
        if reply is None:
            raise NotFound("canned reply not found")
        _may_change(reply.owner_id, actor)
        await db.delete(conn, reply_id)
        await audit.record(conn, actor, DELETED, "canned_reply", reply_id,
                           {"scope": reply.scope, "shortcut": reply.shortcut})


def render(body: str, values: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), body)


async def do_render(svc: Services, actor: audit.Actor, reply_id: int, room_id: int) -> str:
    """The reply's text for the conversation ``room_id``, its variables filled in."""
    reply = await db.get_visible(svc.pool, actor.user.id, reply_id)
    if reply is None:
        raise NotFound("canned reply not found")
    contact = await wdb.contact_by_room(svc.pool, room_id)
    if contact is None:
        raise NotFound("conversation not found")
    person = await cdb.get(svc.pool, contact.contact_id) if contact.contact_id is not None else None
    name = (person.name if person is not None else "") or contact.name or f"+{contact.wa_id}"
    return render(reply.body, {"contact.name": name,
                               "agent.name": actor.user.display_name or actor.user.username})
