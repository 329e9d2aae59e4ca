"""Emoji reactions on messages: add or remove one's own reaction, then tell the room.

Order: find the message -> check write access to its room (members only: the same rule as
sending, ``access_room_by_id(write=True)``; a private room one is not in is ``not_found``, a
public room one has not joined ``forbidden``) -> change it in one transaction
(``storage/reactions.py``) -> commit -> emit ``message:updated`` with the whole record to the
room (every node, through the bus) -> ack ``{message, mine}``.

Idempotent: adding a reaction one has, or removing one one has not, changes nothing, emits
nothing and still acks with the record. The emoji itself is checked by the event's model
(``chatcore.protocol.MessageReact``: one emoji, skin tones and ZWJ sequences included, at most
``EMOJI_MAX_CHARS`` code points). A message carries at most ``REACTIONS_MAX_DISTINCT``
different emojis; a new one past that is ``too_large`` (existing ones can still be added to).
Reactions are for chat rooms: WhatsApp conversations refuse them (the contact would never see
them), and a deleted or archived message is ``not_found``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatcore.errors import Invalid, NotFound, TooLarge
from chatcore.events import MessageRecord

from ..files.service import signed
from ..storage import messages as mdb
from ..storage import reactions as db
from ..storage import users as udb
from .notify import emit, room_channel
from .rooms import access_room_by_id

if TYPE_CHECKING:
    from ..context import Services

REACTIONS_MAX_DISTINCT = 20  # different emojis on one message; keeps every record small


async def do_react(svc: Services, user: udb.User, message_id: int, emoji: str, on: bool) -> tuple[MessageRecord, list[str]]:
    """The message after the change, and the emojis ``user`` now has on it."""
    found = await mdb.get_message(svc.pool, message_id)
    if found is None:
        raise NotFound("message not found")
    room = await access_room_by_id(svc, user, found.room_id, write=True)
    if room.kind == "whatsapp":
        raise Invalid("reactions are not available in WhatsApp conversations", field="id")
    outcome = await db.set_reaction(svc.pool, message_id, user.id, emoji, on, max_distinct=REACTIONS_MAX_DISTINCT)
    if outcome.message is None:
        raise NotFound("message was deleted")
    if outcome.capped:
        raise TooLarge(f"a message carries at most {REACTIONS_MAX_DISTINCT} different emojis", field="emoji")
    msg = signed(svc, outcome.message)
    if outcome.changed:
        await emit(svc, "message:updated", msg.to_wire(), to=room_channel(msg.room_id))
    return msg, list(outcome.mine)
