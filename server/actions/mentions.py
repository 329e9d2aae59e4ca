"""Mentions: who a stored message names, their unread counts, and the ``mention`` event.

After a message is stored (``messages.do_send_message``), its ``@username`` tokens that name
members of the room are resolved in one query and stored with it: ``meta.mentions`` lists their
ids (the record is the same on every path: ack, events, history, sync, archive), and each
mentioned person gets a ``mentions`` row, so the room list and the ``room:join`` ack can say how
many mentions they have not read. After commit each of them who has not muted the room
(``notify: none``) gets ``mention {room_id, message_id, seq}`` on their user channel, on
whichever node they are connected to.

``@room`` (every member) and ``@here`` (the members online now, from presence) work only for
the room's owners and admins (``room_members.role``) and server admins; from anybody else they
are plain text: the message is sent, nobody is notified, no error (a refusal would lose the
message over a word). They are stored as ``meta.mention_all: "room" | "here"``. ``room`` and
``here`` are keywords, never usernames.

Limits: at most ``MAX_MENTIONS`` distinct names per message are looked up (the rest is text);
tokens inside inline code and code blocks are not mentions. The assistant's ``@assistant``
trigger (``actions/assistant.py``) reads the body and is not changed by this. An edit does not
mention anyone anew. The message is stored first and its mentions a statement later: a server
that dies between the two leaves the message without them (no notification, nothing else lost).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from chatcore.errors import Forbidden, Invalid
from chatcore.events import MessageRecord

from ..storage import mentions as db
from ..storage import rooms as rooms_db
from .notify import emit, user_channel
from .rooms import access_room_by_id

if TYPE_CHECKING:
    from ..context import Services
    from ..storage.users import User

log = logging.getLogger(__name__)

MAX_MENTIONS = 20  # distinct @names looked up per message
BROADCASTS = ("room", "here")
BROADCAST_ROLES = ("owner", "admin")  # room roles that may use @room / @here

# usernames are [A-Za-z0-9_.-]{3,32} (actions/auth.py); not after a word character or '@'
# (an e-mail address, '@@x'); a trailing '.' or '-' is the sentence's, not the name's
TOKEN = re.compile(r"(?<![\w@])@([A-Za-z0-9_.-]{3,32})(?![A-Za-z0-9_])")
CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)


def mention_tokens(body: str) -> tuple[list[str], set[str]]:
    """The distinct lower-case names a body mentions (at most ``MAX_MENTIONS``, in order) and the
    broadcast keywords (``room``, ``here``) it uses. Code spans and blocks do not count."""
    if "@" not in body:
        return [], set()
    names: list[str] = []
    broadcasts: set[str] = set()
    for raw in TOKEN.findall(CODE.sub(" ", body)):
        name = raw.rstrip(".-").lower()
        if name in BROADCASTS:
            broadcasts.add(name)
        elif len(name) >= 3 and name not in names and len(names) < MAX_MENTIONS:
            names.append(name)
    return names, broadcasts


def may_broadcast(user: User, room_role: str | None) -> bool:
    return user.role == "admin" or room_role in BROADCAST_ROLES


async def store_mentions(svc: Services, user: User, msg: MessageRecord) -> tuple[MessageRecord, list[int]]:
    """Resolve and store the mentions of a just-stored message of ``user``. Returns the record
    as stored (with ``meta.mentions``) and the users to send ``mention`` to."""
    names, broadcasts = mention_tokens(msg.body)
    if not names and not broadcasts:
        return msg, []
    found = await db.resolve(svc.pool, msg.room_id, user.id, names)
    mentioned = [found.named[n] for n in names if n in found.named and found.named[n] != user.id]
    meta: dict[str, Any] = {"mentions": mentioned}
    targets = list(mentioned)
    everyone = False
    if broadcasts and may_broadcast(user, found.sender_role):
        if "room" in broadcasts:
            meta["mention_all"], everyone = "room", True
        else:
            meta["mention_all"] = "here"
            targets += await _online_members(svc, msg.room_id)
    if not mentioned and "mention_all" not in meta:
        return msg, []
    stored = await db.store(svc.pool, msg, meta, list(dict.fromkeys(targets)), everyone)
    return stored if stored is not None else (msg, [])


async def _online_members(svc: Services, room_id: int) -> list[int]:
    ids = await rooms_db.member_ids(svc.pool, room_id)
    try:
        online = await svc.presence.online(ids)
    except Exception as exc:  # Redis away: @here reaches nobody rather than failing the send
        log.warning("presence unavailable for @here: %s", type(exc).__name__)
        return []
    return [uid for uid, on in online.items() if on]


async def emit_mentions(svc: Services, msg: MessageRecord, users: list[int]) -> None:
    """``mention`` to each user's channel, after commit, in one emit (one encode, every node)."""
    if users:
        event = {"room_id": msg.room_id, "message_id": msg.id, "seq": msg.seq}
        await emit(svc, "mention", event, to=[user_channel(u) for u in users])


def check_notify(value: Any) -> str:
    if value not in db.NOTIFY_LEVELS:
        raise Invalid("notify must be one of all, mentions, none", field="notify")
    return str(value)


async def do_set_room_settings(svc: Services, user: User, room_id: int, notify: Any) -> dict[str, Any]:
    """Store the user's notification setting for a room they are a member of."""
    notify = check_notify(notify)
    room = await access_room_by_id(svc, user, room_id)
    if not await db.set_notify(svc.pool, room.id, user.id, notify):
        raise Forbidden("join the room first")
    return await room_settings(svc, user, room.id)


async def room_settings(svc: Services, user: User, room_id: int) -> dict[str, Any]:
    found = await db.counts(svc.pool, room_id, user.id)
    mentions, notify = found if found is not None else (0, "all")
    return {"room_id": room_id, "notify": notify, "mentions": mentions}
