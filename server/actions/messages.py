"""Messages: send (idempotent on client_id), edit, delete, history, sync.

Send order: validate -> rate limit -> insert with the room's next seq in one transaction ->
commit -> fan-out -> ack. A retry with the same ``client_id`` returns the stored message and
emits nothing new.

Attachments (upload ids, at most ``MAX_ATTACHMENTS``) are checked before the insert (unknown ->
``invalid``, someone else's -> ``forbidden``, attached already -> ``conflict``) and linked by the
insert statement itself, whose constraints repeat the checks atomically for concurrent sends.
Every record that leaves here carries freshly signed download URLs (``files.service.signed``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from chatcore.errors import Archived, Conflict, Forbidden, Invalid, NotFound, TooLarge, Unavailable
from chatcore.events import Attachment, MessageRecord, iso

from ..files.service import signed, signed_wire
from ..storage import archived as adb
from ..storage import files as fdb
from ..storage import messages as db
from ..storage import users as udb
from . import audit
from .files import MAX_ATTACHMENTS
from .mentions import emit_mentions, store_mentions
from .notify import emit, room_channel
from .rooms import access_room_by_id, is_staff

MESSAGE_DELETED = "message.delete"

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

# The shapes of the socket payloads (ids, the client_id length, the rooms per sync, an aware
# changed_since) are checked once, by their models in chatcore/protocol.py, before these
# actions run; the checks here are the rules read from configuration (body length, page size).
SYNC_MAX_PER_ROOM = 500  # more missed than this -> the client reloads the room (resync)
SYNC_MAX_CHANGED = 200  # edits and deletions replayed per room; more: resync
SYNC_CHANGE_MARGIN = timedelta(seconds=10)


def check_body(svc: Services, body: Any, *, may_be_empty: bool = False) -> str:
    if may_be_empty and body is None:
        return ""
    if not isinstance(body, str):
        raise Invalid("body must be a string", field="body")
    if len(body) > svc.config.limits.max_body_chars:
        raise TooLarge(f"body is longer than {svc.config.limits.max_body_chars} characters", field="body")
    if not body.strip() and not may_be_empty:
        raise Invalid("body must not be empty", field="body")
    return body


def check_attachment_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and 1 <= len(v) <= 64 for v in value):
        raise Invalid("attachments must be a list of upload ids", field="attachments")
    if len(value) > MAX_ATTACHMENTS:
        raise TooLarge(f"a message has at most {MAX_ATTACHMENTS} attachments", field="attachments")
    if len(set(value)) != len(value):
        raise Invalid("an upload is listed twice", field="attachments")
    return value


async def _own_uploads(svc: Services, user: udb.User, ids: list[str], client_id: str) -> list[Attachment] | MessageRecord:
    """The uploads as attachments, in the order given; or the stored message when this send is a
    retry of one that attached them already."""
    rows = await fdb.get_files(svc.pool, ids)
    for file_id in ids:
        row = rows.get(file_id)
        if row is None:
            raise Invalid(f"unknown upload {file_id} (uploads not attached within the time limit are deleted)",
                          field="attachments")
        if row.owner_id != user.id:
            raise Forbidden("only the uploader can attach an upload", field="attachments")
    if any(rows[i].message_id is not None for i in ids):
        existing = await db.find_by_client_id(svc.pool, user.id, client_id)
        if existing is not None:
            return existing
        raise Conflict("an upload can be attached to one message only; upload it again", field="attachments")
    return [rows[i].attachment() for i in ids]


async def do_send_message(
    svc: Services,
    user: udb.User,
    room_id: int,
    body: str,
    client_id: str,
    reply_to: int | None = None,
    attachments: list[str] | None = None,
) -> tuple[MessageRecord, dict[str, Any]]:
    """Store and fan out a user's message; the stored record, with signed attachment URLs, and
    its wire form (the room's event carried it; the ack carries the same)."""
    started = time.perf_counter()
    upload_ids = check_attachment_ids(attachments)
    body = check_body(svc, body, may_be_empty=bool(upload_ids))
    svc.limiter.hit_batched("send", str(user.id), svc.config.limits.messages_per_10s, 10)
    files: list[Attachment] = []
    if upload_ids:
        found = await _own_uploads(svc, user, upload_ids, client_id)
        if isinstance(found, MessageRecord):
            svc.metrics.send_retries.inc()
            return _wire(signed(svc, _same_retry(found, room_id)))
        files = found
    fields = dict(author_id=user.id, author_kind="user", author_name=user.display_name, body=body,
                  client_id=client_id, reply_to=reply_to, attachments=files)
    try:
        # the common case in one round trip, batched with concurrent sends to the room
        stored = await svc.batcher.insert_member_message(room_id, **fields)
        if stored is None:
            stored = await _send_checked(svc, user, room_id, fields)
    except asyncpg.UniqueViolationError as exc:
        # a retry (or a concurrent duplicate) of a stored message: return it, emit nothing
        existing = await db.find_by_client_id(svc.pool, user.id, client_id)
        if existing is None:
            if exc.constraint_name == fdb.ATTACHMENT_PKEY:  # another send attached it meanwhile
                raise Conflict("an upload can be attached to one message only; upload it again",
                               field="attachments") from None
            raise
        svc.metrics.send_retries.inc()
        return _wire(signed(svc, _same_retry(existing, room_id)))
    except asyncpg.ForeignKeyViolationError:
        # the orphan sweep deleted an upload between the check and the insert
        raise Invalid("an upload has expired; upload it again", field="attachments") from None
    msg, kind = stored
    msg, mentioned = await store_mentions(svc, user, msg)
    msg = signed(svc, msg)
    svc.metrics.user_messages.inc()
    wire = msg.to_wire()  # encoded by the emit at once, so the ack may carry the same dict
    await emit(svc, "message", wire, to=room_channel(room_id))
    await emit_mentions(svc, msg, mentioned)
    svc.metrics.send_latency.observe(time.perf_counter() - started)
    await after_user_message(svc, kind, msg)
    return msg, wire


def _wire(msg: MessageRecord) -> tuple[MessageRecord, dict[str, Any]]:
    return msg, msg.to_wire()


async def _send_checked(svc: Services, user: udb.User, room_id: int, fields: dict[str, Any]) -> tuple[MessageRecord, str]:
    """The slow path: say why the fast path refused, or store a staff reply in a WhatsApp room."""
    room = await access_room_by_id(svc, user, room_id, write=True)
    meta: dict[str, Any] = {}
    if room.kind == "whatsapp":
        if not is_staff(user):
            raise Forbidden("only staff can write in WhatsApp conversations")
        if svc.whatsapp is not None:
            # refuse before storing what cannot go out (outside the 24-hour window; a file of a
            # type or size WhatsApp does not take)
            meta = await svc.whatsapp.check_outbound(room.id, fields.get("attachments") or ())
        elif fields.get("attachments"):
            # nothing could deliver the files: refuse rather than drop them silently
            raise Invalid("files cannot be sent to WhatsApp conversations here", field="attachments")
    msg = await db.insert_message(svc.pool, room.id, meta=meta, **fields)
    return msg, room.kind


def _same_retry(msg: MessageRecord, room_id: int) -> MessageRecord:
    if msg.room_id != room_id:
        raise Invalid("client_id was already used for another room", field="client_id")
    return msg


async def after_user_message(svc: Services, room_kind: str, msg: MessageRecord) -> None:
    """Work that follows a committed message: WhatsApp delivery, assistant triggers."""
    if room_kind == "whatsapp":
        if svc.whatsapp is not None:
            await svc.whatsapp.on_staff_message(msg.room_id, msg)
        return
    if svc.assistant is not None:
        await svc.assistant.maybe_trigger(room_kind, msg)


async def store_system_message(
    svc: Services, room_id: int, body: str, *, author_kind: str = "system", author_id: int | None = None,
    author_name: str | None = None, meta: dict[str, Any] | None = None,
) -> MessageRecord:
    """Store and emit a message that no user sent (assistant replies, notices, contacts)."""
    msg = await db.insert_message(
        svc.pool, room_id, author_id=author_id, author_kind=author_kind, author_name=author_name,
        body=body, meta=meta,
    )
    svc.metrics.messages.labels(author_kind).inc()
    await emit(svc, "message", msg.to_wire(), to=room_channel(room_id))
    return msg


async def _check_may_change(svc: Services, user: udb.User, msg: MessageRecord) -> None:
    await access_room_by_id(svc, user, msg.room_id)
    if msg.author_id != user.id and user.role != "admin":
        raise Forbidden("only the author can change this message")
    if msg.deleted_at is not None:
        raise NotFound("message was deleted")


async def do_edit_message(svc: Services, user: udb.User, message_id: int, body: str) -> MessageRecord:
    """Edit a message still in PostgreSQL. A message the relay moved to the archive can be
    deleted, not edited (``archived``): the archive is the record of what was said."""
    body = check_body(svc, body)
    msg = await db.get_message(svc.pool, message_id)
    if msg is not None:
        await _check_may_change(svc, user, msg)
        updated = await db.edit_message(svc.pool, msg.id, body)
        if updated is not None:
            updated = signed(svc, updated)
            await emit(svc, "message:updated", updated.to_wire(), to=room_channel(updated.room_id))
            return updated
        # deleted meanwhile, or moved to the archive by the relay between the read and the update
    archived = await adb.get_archived(svc.pool, message_id)
    if archived is None:
        raise NotFound("message not found" if msg is None else "message was deleted")
    await _check_may_change(svc, user, archived)
    raise Archived("this message is in the archive: it can be deleted, not edited")


async def do_delete_message(svc: Services, user: udb.User, message_id: int) -> MessageRecord:
    """Delete a message: in PostgreSQL while it is hot; once archived, by a tombstone that the
    relay carries to chat-archive (its text, files and reactions leave the archive, its search
    and its export). A server admin deleting someone else's message is audited
    (``message.delete``) in the same transaction."""
    msg = await db.get_message(svc.pool, message_id)
    if msg is not None:
        await _check_may_change(svc, user, msg)
        async with svc.pool.acquire() as conn, conn.transaction():
            deleted = await db.delete_message(conn, msg.id)
            if deleted is not None:
                await _audit_moderation(conn, user, deleted)
        if deleted is not None:
            await emit(svc, "message:updated", deleted.to_wire(), to=room_channel(deleted.room_id))
            return deleted
        # the relay moved it to the archive between the read and the update: delete it there
    archived = await adb.get_archived(svc.pool, message_id)
    if archived is None:
        raise NotFound("message not found")
    await _check_may_change(svc, user, archived)
    async with svc.pool.acquire() as conn, conn.transaction():
        gone = await adb.delete_archived(conn, message_id)
        if gone is not None:
            await _audit_moderation(conn, user, gone, archived=True)
    if gone is None:
        raise NotFound("message was deleted")
    await emit(svc, "message:updated", gone.to_wire(), to=room_channel(gone.room_id))
    return gone


async def _audit_moderation(conn: asyncpg.Connection, user: udb.User, msg: MessageRecord, archived: bool = False) -> None:
    """A server admin removing another person's message is a staff action on data: one audit row."""
    if user.role == "admin" and msg.author_id != user.id:
        await audit.record(conn, audit.Actor(user), MESSAGE_DELETED, "message", msg.id,
                           {"room_id": msg.room_id, "author_id": msg.author_id, "archived": archived})


def check_limit(svc: Services, limit: Any, default: int = 50) -> int:
    if limit is None:
        return default
    if not isinstance(limit, int) or isinstance(limit, bool) or not (1 <= limit <= svc.config.limits.history_page_max):
        raise Invalid(f"limit must be 1-{svc.config.limits.history_page_max}", field="limit")
    return limit


async def do_history(svc: Services, user: udb.User, room_id: Any, before_seq: Any, limit: Any) -> dict[str, Any]:
    """A page of the ``limit`` messages before ``before_seq``, ascending; continues into the archive."""
    limit = check_limit(svc, limit)
    if before_seq is not None and (not isinstance(before_seq, int) or isinstance(before_seq, bool) or before_seq < 1):
        raise Invalid("before_seq must be a positive integer", field="before_seq")
    room = await access_room_by_id(svc, user, room_id, compliance="history")
    messages, has_more = await db.history(svc.pool, room.id, before_seq, limit)
    stops_under = messages[0].seq if messages else before_seq  # None: the page reached the room's end
    if has_more or svc.archive is None or (stops_under is not None and stops_under <= 1):
        return {"messages": signed_wire(svc, messages), "has_more": has_more}
    # The hot part ran out. Read the watermark after it: the relay deletes rows and advances
    # ``archived_upto_seq`` in one transaction, so this covers every row the hot read missed.
    archived_upto = await svc.pool.fetchval("SELECT archived_upto_seq FROM rooms WHERE id = $1", room.id)
    below = messages[0].seq if messages else min(before_seq or archived_upto + 1, archived_upto + 1)
    if archived_upto == 0 or below <= 1:
        return {"messages": signed_wire(svc, messages), "has_more": False}
    if len(messages) == limit:
        return {"messages": signed_wire(svc, messages), "has_more": True}
    hot = signed_wire(svc, messages)
    try:
        archived, has_more = await svc.archive.history(room.id, below, limit - len(messages))
    except Unavailable:
        # the hot part still answers; the client may ask again for the older part
        return {"messages": hot, "has_more": True, "archive_unavailable": True}
    if not archived or archived[-1].seq != below - 1:
        # Seqs are gap-free, so the archive must hold seq below-1. It does not yet: the relay
        # moved it through Kafka and chat-archive has not stored it. Answer the hot part only,
        # so the client asks again instead of skipping those messages.
        return {"messages": hot, "has_more": True, "archive_pending": True}
    # archived records carry attachment metadata without URLs: signed here, like the hot ones
    return {"messages": signed_wire(svc, archived) + hot, "has_more": has_more}


async def do_sync(svc: Services, user: udb.User, cursors: Mapping[str, int],
                  since: datetime | None = None) -> dict[str, Any]:
    """Replay what a reconnecting client missed: messages with seq > its cursor, per room, and,
    given ``since`` (``changed_since``, the newest server time the client has seen), the
    messages it already has that were edited or deleted since then. ``cursors`` maps room ids
    (decimal keys) to non-negative seqs (``protocol.SyncQuery``)."""
    as_of = await svc.pool.fetchval("SELECT now()")
    out: dict[str, Any] = {}
    for key, cursor in cursors.items():
        room_id = int(key)
        try:
            room = await access_room_by_id(svc, user, room_id)
        except (NotFound, Forbidden) as exc:
            out[str(room_id)] = {"messages": [], "resync": True, "error": exc.to_dict()}
            continue
        if cursor < room.archived_upto_seq:
            out[str(room_id)] = {"messages": [], "resync": True}
            continue
        missed = await db.after(svc.pool, room.id, cursor, SYNC_MAX_PER_ROOM + 1)
        resync = len(missed) > SYNC_MAX_PER_ROOM
        entry: dict[str, Any] = {"messages": [] if resync else signed_wire(svc, missed), "resync": resync,
                                 "last_seq": room.last_seq}
        if since is not None and not resync:
            # the margin covers edits whose transaction began before `since` and committed after
            edits = await db.changed(svc.pool, room.id, cursor, since - SYNC_CHANGE_MARGIN, SYNC_MAX_CHANGED + 1)
            if len(edits) > SYNC_MAX_CHANGED:
                entry.update(messages=[], resync=True)
            else:
                entry["changed"] = signed_wire(svc, edits)
        out[str(room_id)] = entry
    return {"rooms": out, "as_of": iso(as_of)}

