"""Contacts: the person behind WhatsApp conversations, across business numbers and identifiers.

A contact (``contacts``) is found by any identifier it is known by (``contact_identities``):
``wa_id`` (the number's digits the Cloud API sends), ``bsuid`` (the business-scoped user id of
2026 webhooks, ``from_user_id``) and ``phone`` (E.164). ``resolve_inbound`` runs in the webhook's
transaction for every message: it matches on the BSUID first (it survives a number change),
then the number, adds the identifiers not known yet, and makes a contact only when none
matched. So a payload with only ``from_user_id``, with both, or with only ``from`` lands on one
person, and a new number with the same BSUID stays that person.

Staff edit the name, email, notes and attributes (``do_update``). A name staff set is never
overwritten by a later WhatsApp profile name (``name_edited``). Every staff edit writes one audit
row (``contact.update``) in its transaction; a change reaches staff sockets as
``contact:updated`` after the commit.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from chatcore.errors import Invalid, NotFound, TooLarge

from ..storage import contacts as db
from ..storage import labels as ldb
from ..storage import whatsapp as wdb
from . import audit
from .notify import STAFF_CHANNEL, emit

if TYPE_CHECKING:
    from ..context import Services

NAME_MAX = 200
EMAIL_MAX = 254
NOTES_MAX = 4000
ATTRIBUTES_MAX_KEYS = 50
ATTRIBUTE_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
ATTRIBUTE_VALUE_MAX = 500  # characters of a string value
ATTRIBUTES_MAX_BYTES = 8192  # the whole object as JSON
EMAIL_PATTERN = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
PAGE_MAX = 200
UPDATED = "contact.update"
EDITABLE = ("name", "email", "notes", "attributes")

_KEY = re.compile(ATTRIBUTE_KEY_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_E164_DIGITS = re.compile(r"^[1-9]\d{6,14}$")


def e164(wa_id: str | None) -> str | None:
    """The phone number of a ``wa_id`` (digits), or None when it is not one (a BSUID)."""
    return "+" + wa_id if wa_id and _E164_DIGITS.match(wa_id) else None


# --- inbound ---------------------------------------------------------------------------------


async def resolve_inbound(conn: asyncpg.Connection, wa_id: str | None, bsuid: str | None,
                          profile_name: str | None) -> int:
    """The contact id of a message's sender, made or extended as needed (in the caller's
    transaction). A BSUID names one person for good; a number may move to another person (it
    is recycled, or the BSUID's owner changed numbers), so the BSUID decides when both are known."""
    phone = e164(wa_id)
    pairs: list[tuple[str, str]] = []
    if bsuid:
        pairs.append(("bsuid", bsuid))
    if wa_id:
        pairs.append(("wa_id", wa_id))
    if phone:
        pairs.append(("phone", phone))
    await db.lock_identities(conn, pairs)
    known = await db.identities_known(conn, pairs)
    contact_id = next((known[p] for p in pairs if p in known), None)
    if contact_id is None:
        contact_id = await db.insert(conn, profile_name or "", phone)
    for pair in pairs:
        if known.get(pair) != contact_id:
            await db.put_identity(conn, *pair, contact_id)
    await db.note_profile(conn, contact_id, profile_name, phone)
    return contact_id


# --- views -------------------------------------------------------------------------------------


async def views(conn: Any, contacts: list[db.Contact]) -> list[dict[str, Any]]:
    ids = [c.id for c in contacts]
    identities = await db.identities_of(conn, ids)
    labels = await ldb.of_contacts(conn, ids)
    return [c.to_wire(identities[c.id], labels[c.id]) for c in contacts]


async def view(conn: Any, contact: db.Contact) -> dict[str, Any]:
    return (await views(conn, [contact]))[0]


async def publish(svc: Services, contact_id: int) -> dict[str, Any]:
    contact = await db.get(svc.pool, contact_id)
    if contact is None:
        raise NotFound("contact not found")
    wire = await view(svc.pool, contact)
    await emit(svc, "contact:updated", wire, to=STAFF_CHANNEL)
    return wire


# --- checks ------------------------------------------------------------------------------------


def check_name(value: Any) -> Any:
    if isinstance(value, str) and (not value.strip() or len(value.strip()) > NAME_MAX or "\x00" in value):
        raise Invalid(f"a name is 1-{NAME_MAX} characters (not only spaces, no NUL)", field="name")
    return value


def check_email(value: Any) -> Any:
    if isinstance(value, str) and value and (len(value) > EMAIL_MAX or not _EMAIL.match(value)):
        raise Invalid("email must look like name@example.com ('' removes it)", field="email")
    return value


def check_attributes(value: Any) -> Any:
    """A flat JSON object: at most ``ATTRIBUTES_MAX_KEYS`` keys of ``ATTRIBUTE_KEY_PATTERN``,
    values strings (``ATTRIBUTE_VALUE_MAX`` characters), numbers, booleans or null, and
    ``ATTRIBUTES_MAX_BYTES`` as JSON (``too_large`` past it)."""
    if not isinstance(value, dict):
        return value
    if len(value) > ATTRIBUTES_MAX_KEYS:
        raise TooLarge(f"at most {ATTRIBUTES_MAX_KEYS} attributes", field="attributes")
    for key, item in value.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise Invalid("an attribute's name is 1-64 letters, digits, '_', '.' or '-'", field="attributes")
        if isinstance(item, str) and (len(item) > ATTRIBUTE_VALUE_MAX or "\x00" in item):
            raise Invalid(f"an attribute's text is at most {ATTRIBUTE_VALUE_MAX} characters, without NUL",
                          field="attributes", attribute=key)
        if isinstance(item, (dict, list)):
            raise Invalid("attributes hold text, numbers, true/false or null, not objects or lists",
                          field="attributes", attribute=key)
    if len(orjson.dumps(value)) > ATTRIBUTES_MAX_BYTES:
        raise TooLarge(f"attributes are at most {ATTRIBUTES_MAX_BYTES} bytes as JSON", field="attributes")
    return value


# --- staff actions ------------------------------------------------------------------------------


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_terms(q: str | None) -> tuple[str | None, str | None]:
    """An ILIKE pattern for names and email, and the digits to look for in numbers (when the query
    has at least three: fewer would match almost every number)."""
    q = (q or "").strip()
    if not q:
        return None, None
    digits = re.sub(r"\D", "", q) if re.fullmatch(r"[\d\s+()\-.]+", q) else ""
    return _like(q), digits if len(digits) >= 3 else None


async def check_label(conn: Any, label_id: int | None) -> None:
    """A filter by a label that does not exist is ``not_found`` (naming the field), not an empty page."""
    if label_id is not None and await ldb.get(conn, label_id) is None:
        raise NotFound("label not found", field="label")


async def inbox_filters(svc: Services, label_id: int | None, q: str | None) -> dict[str, Any]:
    """The conversation list's label and search filters as ``storage.whatsapp.conversations``
    takes them (``label_id``, ``like``, ``digits``, ``text``); an unknown label is ``not_found``."""
    await check_label(svc.pool, label_id)
    like, digits = search_terms(q)
    return {"label_id": label_id, "like": like, "digits": digits, "text": (q or "").strip() or None}


async def do_list(svc: Services, q: str | None, label_id: int | None, cursor: int | None,
                  limit: int) -> tuple[list[dict[str, Any]], int | None]:
    await check_label(svc.pool, label_id)
    like, digits = search_terms(q)
    limit = min(limit, PAGE_MAX)
    found = await db.search(svc.pool, like=like, digits=digits, label_id=label_id, before_id=cursor, limit=limit + 1)
    more = len(found) > limit
    page = found[:limit]
    return await views(svc.pool, page), page[-1].id if more else None


async def do_get(svc: Services, contact_id: int) -> dict[str, Any]:
    contact = await db.get(svc.pool, contact_id)
    if contact is None:
        raise NotFound("contact not found")
    return await view(svc.pool, contact)


async def do_update(svc: Services, actor: audit.Actor, contact_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Change the fields given (``EDITABLE``); ``email`` ``""`` removes it; ``attributes`` replaces
    the whole object. A name set here is kept over later profile names."""
    check_name(fields.get("name"))
    check_email(fields.get("email"))
    check_attributes(fields.get("attributes"))
    if "notes" in fields and (len(fields["notes"]) > NOTES_MAX or "\x00" in fields["notes"]):
        raise Invalid(f"notes are at most {NOTES_MAX} characters, without NUL", field="notes")
    values: dict[str, Any] = {}
    if "name" in fields:
        values["name"] = fields["name"].strip()
    if "email" in fields:
        values["email"] = fields["email"].strip() or None
    if "notes" in fields:
        values["notes"] = fields["notes"]
    if "attributes" in fields:
        values["attributes"] = fields["attributes"]
    async with svc.pool.acquire() as conn, conn.transaction():
        before = await db.get(conn, contact_id, for_update=True)
        if before is None:
            raise NotFound("contact not found")
        changed = [k for k, v in values.items() if getattr(before, k) != v]
        if "name" in values:
            values["name_edited"] = True
        if not changed and not (values.get("name_edited") and not before.name_edited):
            return await view(conn, before)
        await db.update(conn, contact_id, **values)
        await audit.record(conn, actor, UPDATED, "contact", contact_id, {"changed": changed or ["name"]})
    wire = await publish(svc, contact_id)
    for room_id in await db.conversation_rooms(svc.pool, contact_id, PAGE_MAX):
        await _publish_conversation(svc, room_id)
    return wire


async def _publish_conversation(svc: Services, room_id: int) -> None:
    """``conversation:updated`` with the conversation's view as it is now (contact name, labels)."""
    if svc.whatsapp is not None:
        await svc.whatsapp.publish(room_id)


async def do_conversations(svc: Services, contact_id: int, limit: int) -> list[Any]:
    if await db.get(svc.pool, contact_id) is None:
        raise NotFound("contact not found")
    return await wdb.contact_conversations(svc.pool, contact_id, min(limit, PAGE_MAX))
