"""The Socket.IO event contract as pydantic models: every client event's payload and ack, the
error ack, and every event the server sends.

chat-server validates each incoming payload with its model (``CLIENT_EVENTS``) before it calls
an action, and the AsyncAPI document (``chatcore/asyncapi.py``, served at
``/api/v1/asyncapi.json``) is generated from the same tables, so the document cannot drift from
what the server accepts. The server does not validate what it sends: broadcasts keep their
``to_wire`` dicts (a pydantic round trip per message on the fan-out path would cost more than
the fan-out), and ``tests/server/test_event_contract.py`` checks every ack and event a real
server sends against these models.

One statement per rule. Shape rules (strict types, positive ids, the ``client_id`` length, the
rooms per ``sync``, an aware ``changed_since``) live here and the actions take typed values.
Rules read from configuration (``MAX_MESSAGE_CHARS``, which answers ``too_large``; the
``history`` page maximum, which REST shares) stay the actions' checks (``check_body``,
``check_limit``); the fields here only type them and name the setting, and the document fills
the configured values in (``CONFIG_LIMIT``).

Payload models forbid unknown fields. A new optional field (e.g. ``message:send``
``attachments``) is added to its model with a default; old clients keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import emoji as emoji_lib
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import Invalid
from .events import parse_iso
from .schemas import ErrorDetail, MemberRecord, MessageRecordWire, RoomRecord, UserRecord, Wire
from .types import ID_MAX

CLIENT_ID_MAX = 64
SYNC_MAX_ROOMS = 200
# code points in one reaction emoji: the longest RGI sequences (ZWJ families with skin tones,
# subdivision flags) have 10; a bound keeps a junk string from reaching the emoji table
EMOJI_MAX_CHARS = 16

# Marks a field whose bound is a configuration value, not a constant: the document builder
# replaces {"x-config-limit": {keyword: setting}} by {keyword: value of limits.<setting>}.
CONFIG_LIMIT = "x-config-limit"


def _omitted(description: str = "") -> Any:
    """A field the server leaves out (rather than sending null) when it has nothing to say."""

    def drop_default(schema: dict[str, Any]) -> None:
        schema.pop("default", None)

    return Field(default=None, description=description or None, json_schema_extra=drop_default)


# --- what clients send ----------------------------------------------------------------------


class Payload(BaseModel):
    """A client event's payload. Strict: JSON ``true`` is not 1 and ``"1"`` is not 1."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


RoomId = Annotated[int, Field(gt=0, le=ID_MAX, description="a room id")]
MessageId = Annotated[int, Field(gt=0, le=ID_MAX, description="a message id")]
Body = Annotated[str, Field(
    description="plain text, not blank (unless the message has attachments); longer than MAX_MESSAGE_CHARS characters is too_large",
    json_schema_extra={CONFIG_LIMIT: {"maxLength": "max_body_chars"}},
)]
def _room_key_in_range(value: str) -> str:
    if int(value) > ID_MAX:
        raise ValueError("room id out of range")
    return value


RoomKey = Annotated[
    str, Field(pattern=r"^[1-9][0-9]{0,18}$", description="a room id, as an object key"), AfterValidator(_room_key_in_range)
]


def _aware_time(value: Any) -> datetime:
    try:
        parsed = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError("must be an ISO-8601 time with a time zone, as the server sends them")
    return parsed


AwareTime = Annotated[datetime, BeforeValidator(_aware_time)]


class RoomRef(Payload):
    room_id: RoomId


class MessageSend(Payload):
    room_id: RoomId
    body: Body
    client_id: str = Field(
        min_length=1, max_length=CLIENT_ID_MAX,
        description="the sender's idempotency key (use a UUID): a retry with it returns the stored message",
    )
    reply_to: MessageId | None = None
    attachments: list[str] | None = Field(
        default=None,
        description="upload ids (POST /api/v1/uploads) of the sender's own unattached uploads, at most 10 "
                    "(more is too_large); with attachments the body may be empty",
    )


class MessageEdit(Payload):
    id: MessageId
    body: Body


class MessageDelete(Payload):
    id: MessageId


def _one_emoji(value: str) -> str:
    # the emoji package's table of fully-qualified and component sequences (Unicode's
    # emoji-test.txt): one emoji, not text, not several emojis, not an emoji with text around it
    if not emoji_lib.is_emoji(value):
        raise ValueError("must be exactly one emoji")
    return value


ReactionEmoji = Annotated[str, Field(
    min_length=1, max_length=EMOJI_MAX_CHARS,
    description="exactly one emoji (skin tones, ZWJ sequences and flags included); anything else is invalid",
), AfterValidator(_one_emoji)]


class MessageReact(Payload):
    id: MessageId
    emoji: ReactionEmoji
    on: bool = Field(description="true adds the caller's reaction, false removes it; both are idempotent")


class TypingSet(Payload):
    room_id: RoomId
    typing: bool


class HistoryQuery(Payload):
    room_id: RoomId
    before_seq: Annotated[int, Field(ge=1, le=ID_MAX)] | None = Field(default=None, description="page before this seq; none: the latest")
    limit: int | None = Field(
        default=None, description="messages per page, 1 to HISTORY_PAGE_MAX; 50 when left out",
        json_schema_extra={"minimum": 1, CONFIG_LIMIT: {"maximum": "history_page_max"}},
    )


class SyncQuery(Payload):
    cursors: dict[RoomKey, Annotated[int, Field(ge=0, le=ID_MAX)]] = Field(
        max_length=SYNC_MAX_ROOMS, description="room id -> the last seq the client holds (0: none)",
        json_schema_extra={"additionalProperties": False},  # keys: only the room id pattern
    )
    changed_since: AwareTime | None = Field(
        default=None, description="the newest server time the client has seen; adds each room's changed messages"
    )


class ReadMark(Payload):
    room_id: RoomId
    seq: int = Field(ge=0, le=ID_MAX, description="the last seq read")


class AuthRenew(Payload):
    token: str = Field(description="a new access token of the same user")


# --- acks -----------------------------------------------------------------------------------


class Ack(Wire):
    ok: Literal[True]


class ErrorAck(Wire):
    """The ack of every refused client event."""

    ok: Literal[False]
    error: ErrorDetail


class EmptyAck(Ack):
    pass


class MessageAck(Ack):
    message: MessageRecordWire


class ReactAck(Ack):
    message: MessageRecordWire
    mine: list[str] = Field(description="the emojis the caller now has on this message")


class RoomView(RoomRecord):
    """A room record as the socket sends it, with the counts of the asking user's view."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members_count: int = _omitted("room:join only")
    joined: bool = _omitted("whether the user is a member")


Presence = Literal["online", "offline"]
NotifyLevel = Literal["all", "mentions", "none"]


class ReadCursor(Wire):
    user_id: int
    last_read_seq: int


class JoinAck(Ack):
    room: RoomView
    members: list[MemberRecord]
    presence: dict[str, Presence] = Field(description="user id -> presence, for every member")
    messages: list[MessageRecordWire] = Field(description="the latest page, ascending seq")
    has_more: bool
    read_cursors: list[ReadCursor] = _omitted(
        "every member's read cursor, for \"seen by\"; only in rooms with read receipts "
        "(direct rooms, and rooms of at most READ_RECEIPTS_MAX_MEMBERS members)")
    mentions: int = Field(ge=0, description="the user's unread mentions in the room (capped at 1000); 0 for non-members")
    notify: NotifyLevel = Field(description="the user's notification setting for the room; all for non-members")


class HistoryAck(Ack):
    messages: list[MessageRecordWire] = Field(description="ascending seq")
    has_more: bool
    archive_unavailable: bool = Field(default=False, description="chat-archive did not answer; ask again")
    archive_pending: bool = Field(default=False, description="the older messages are on their way to the archive")


class SyncRoom(Wire):
    messages: list[MessageRecordWire] = Field(description="every message with seq above the cursor")
    resync: bool = Field(description="the gap is too large or reaches the archive: reload the room")
    last_seq: int = _omitted("absent with resync for an archived gap or a refused room")
    changed: list[MessageRecordWire] = _omitted("with changed_since: messages up to the cursor edited or deleted since")
    error: ErrorDetail = _omitted("the room is gone or no longer readable")


class SyncAck(Ack):
    rooms: dict[str, SyncRoom] = Field(description="room id -> what the client missed there")
    as_of: str = Field(description="the server time of this answer, for the next changed_since")


class ReadAck(Ack):
    last_read_seq: int
    mentions: int = Field(ge=0, description="the mentions still unread above the cursor")


class AuthAck(Ack):
    expires_at: int = Field(description="the new token's exp, seconds since the epoch")


# --- what the server sends ------------------------------------------------------------------


class TypingUser(Wire):
    id: int
    display_name: str


class TypingEventWire(Wire):
    room_id: int
    user: TypingUser
    typing: bool
    ttl_ms: int = Field(description="drop the indicator after this long without a refresh")


class PresenceEventWire(Wire):
    user_id: int
    status: Presence
    last_seen: str | None


class MemberJoined(Wire):
    room_id: int
    user: UserRecord
    presence: Presence = _omitted("the member's presence at that moment; absent when Redis could not say")


class MemberLeft(Wire):
    room_id: int
    user: UserRecord


class AssistantDeltaWire(Wire):
    room_id: int
    reply_id: str = Field(description="the final message carries it as meta.reply_id")
    text: str


class WaContact(Wire):
    id: int | None = Field(description="the contact (person) id: GET /api/v1/contacts/{id}")
    wa_id: str = Field(description="the address replies go to: the number's digits, or the BSUID when no number is known")
    name: str = Field(description="the contact's name (as staff set it, else the WhatsApp profile name)")
    bsuid: str | None = Field(description="the business-scoped user id WhatsApp sent, if any")


class LabelRef(Wire):
    id: int
    name: str
    color: str = Field(description="#rrggbb")


class LabelView(Wire):
    id: int
    name: str
    color: str = Field(description="#rrggbb")
    created_at: str
    updated_at: str


class LabelDeleted(Wire):
    id: int


class ContactIdentity(Wire):
    kind: Literal["wa_id", "bsuid", "phone"]
    value: str


class ContactView(Wire):
    """A person behind WhatsApp conversations (staff only)."""

    id: int
    name: str
    name_edited: bool = Field(description="staff set the name: WhatsApp profile names no longer replace it")
    phone: str | None = Field(description="E.164, from WhatsApp")
    email: str | None
    notes: str
    attributes: dict[str, str | int | float | bool | None]
    identities: list[ContactIdentity]
    labels: list[LabelRef]
    created_at: str
    updated_at: str


class WaAssignee(Wire):
    id: int
    username: str
    display_name: str


class WaLastMessage(Wire):
    id: int
    seq: int
    body: str
    author_kind: Literal["user", "assistant", "contact", "system"]
    created_at: str


class QueueRef(Wire):
    id: int
    name: str
    color: str = Field(description="#rrggbb")


class WaCampaignRef(Wire):
    id: int
    name: str


class ConversationView(Wire):
    room_id: int
    account_id: int | None = Field(description="the Cloud API number; null on a linked device")
    session_id: int | None = Field(description="the linked-device session; null on the Cloud API")
    channel: Literal["cloud_api", "linked_device"]
    business_phone: str
    contact: WaContact
    labels: list[LabelRef]
    status: Literal["open", "pending", "closed"]
    ai_enabled: bool
    mode: Literal["ai", "human"]
    assignee: WaAssignee | None
    queue: QueueRef | None = Field(description="the queue (department) it is in; null: in none")
    routing: Literal["routed", "menu", "menu_again"] = Field(
        description="menu: the greeting menu was sent and the contact's answer is awaited")
    unread: int
    last_message: WaLastMessage | None
    last_inbound_at: str | None
    window_open: bool = Field(description="within WhatsApp's 24-hour service window")
    campaign: WaCampaignRef | None = Field(default=None, description="the campaign the contact replied to")
    updated_at: str | None


class WaError(Wire):
    code: int | None
    title: str | None
    state: str = _omitted("why a send failed (e.g. rate_limited, undeliverable); sends only")


class WaStatus(Wire):
    room_id: int
    message_id: int
    status: Literal["queued", "sent", "delivered", "read", "failed"]
    error: WaError | None
    wamid: str | None = _omitted("WhatsApp's message id")
    retry_in_s: float = _omitted("queued: seconds until the outbox tries again")


class WaSessionEvent(Wire):
    """A linked-device session's link changed (admins only)."""

    session_id: int
    kind: Literal["qr", "pairing_code", "connected", "disconnected", "logged_out", "qr_expired"]
    status: str = Field(description="the session's status after the change")
    reason: str | None
    qr: str = _omitted("kind qr: the text to render as a QR code")
    qr_svg: str = _omitted("kind qr: the same QR code as an SVG document")
    pairing_code: str = _omitted("kind pairing_code: the code to type on the phone")
    jid: str = _omitted("kind connected: the linked device's JID")


class NoteAuthor(Wire):
    id: int
    username: str
    display_name: str


class NoteView(Wire):
    """A private note in a WhatsApp conversation: staff only, never sent to the contact."""

    id: int
    room_id: int = Field(description="the conversation's room id")
    author: NoteAuthor
    body: str
    created_at: str


class QueueMember(Wire):
    user_id: int
    username: str
    display_name: str
    capacity: int | None = Field(description="open conversations auto-assigned at most; null: DESK_AGENT_CAPACITY")


class QueueView(Wire):
    """A queue (department) of the support desk."""

    id: int
    name: str
    color: str = Field(description="#rrggbb")
    description: str
    greeting: str = Field(description="sent to the contact when a conversation is routed to the queue")
    away_message: str = Field(description="sent once when a conversation waits and no agent is available")
    members: list[QueueMember]
    created_at: str
    updated_at: str = Field(description="moves forward by at least a millisecond with every change, its members' "
                                        "included: of two states heard out of order, the greater is the newer")


class QueueDeleted(Wire):
    id: int


class ConversationHidden(Wire):
    """To a staff member's own sockets: a conversation moved out of what they see (routed or
    transferred to a queue of others); drop it."""

    room_id: int


class TimelineRef(Wire):
    id: int
    name: str


class ConversationEventView(Wire):
    """A system event in a conversation's timeline: staff only, never sent to the contact."""

    id: int
    room_id: int = Field(description="the conversation's room id")
    kind: Literal["opened", "reopened", "routed", "assigned", "taken_over", "handed_back", "transferred",
                  "first_response", "closed"]
    actor: TimelineRef | None = Field(description="the staff member who acted; null: the contact or the desk itself")
    queue: TimelineRef | None = Field(description="the conversation's queue after the event")
    from_queue: TimelineRef | None
    from_user: TimelineRef | None
    to_user: TimelineRef | None
    note: str = Field(description="the optional note of a transfer or assignment")
    meta: dict[str, Any] = Field(description="e.g. via (menu, ai, default) for routed, auto for assigned")
    created_at: str


class ConversationHandover(Wire):
    """To the agents who lost (``from``) or gained (``to``) a conversation."""

    role: Literal["from", "to"]
    conversation: ConversationView
    event: ConversationEventView


class CampaignProgress(Wire):
    """A campaign's counts (supervisors and admins). Every count but ``queued`` and ``sending``
    only grows; events are sent one node at a time per campaign, and ``seq`` orders them."""

    campaign_id: int
    seq: int = Field(description="grows by one per event of this campaign: keep the highest")
    status: Literal["draft", "running", "paused", "completed", "cancelled"]
    pause_reason: str | None
    total: int
    queued: int
    sending: int = Field(description="claimed by a node, the Graph API call under way")
    sent: int = Field(description="taken by Meta (a wamid), whatever happened after")
    delivered: int = Field(description="delivered or read")
    read: int
    failed: int
    replied: int
    skipped: int = Field(description="opted out, contacted in the last 24 hours, or cancelled")
    unknown: int = Field(description="the sender was lost mid-call: maybe sent, never sent again")


class ReadUpdated(Wire):
    room_id: int
    user_id: int
    last_read_seq: int = Field(description="the member's read cursor moved up to this seq")


class MentionEventWire(Wire):
    room_id: int
    message_id: int
    seq: int = Field(description="the message's seq; the mention is read once the read cursor reaches it")


class RoomUpdated(RoomRecord):
    """A room after its owners renamed it, changed its topic, archived or unarchived it, or
    changed a member's role."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RoomDeleted(Wire):
    room_id: int


class MemberRemoved(Wire):
    room_id: int
    user_id: int = Field(description="the user removed: the receiving user (sent to their own channel only)")


class SessionEnded(Wire):
    reason: Literal["expired", "revoked", "logged_out"]


# --- the event tables -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientEvent:
    payload: type[Payload]
    ack: type[Ack]
    summary: str


@dataclass(frozen=True, slots=True)
class ServerEvent:
    payload: type[BaseModel]
    summary: str


CLIENT_EVENTS: dict[str, ClientEvent] = {
    "room:join": ClientEvent(RoomRef, JoinAck, "Open a room (joining it if public): its members and latest page"),
    "room:leave": ClientEvent(RoomRef, EmptyAck, "Leave a room"),
    "message:send": ClientEvent(MessageSend, MessageAck, "Send a message; idempotent on client_id"),
    "message:edit": ClientEvent(MessageEdit, MessageAck, "Edit one's own message"),
    "message:delete": ClientEvent(MessageDelete, MessageAck, "Delete one's own message (body becomes empty)"),
    "typing": ClientEvent(TypingSet, EmptyAck, "Start or stop the typing indicator"),
    "history": ClientEvent(HistoryQuery, HistoryAck, "A page of older messages, continuing into the archive"),
    "sync": ClientEvent(SyncQuery, SyncAck, "What a reconnecting client missed, per room"),
    "read": ClientEvent(ReadMark, ReadAck, "Move the read cursor"),
    "message:react": ClientEvent(MessageReact, ReactAck, "Add or remove one's emoji reaction to a message"),
    "auth": ClientEvent(AuthRenew, AuthAck, "Renew the socket's token in band"),
}

SERVER_EVENTS: dict[str, ServerEvent] = {
    "message": ServerEvent(MessageRecordWire, "A new message in a room of the user"),
    "message:updated": ServerEvent(MessageRecordWire, "A message after an edit, a delete or a reaction change"),
    "read:updated": ServerEvent(ReadUpdated, "A member's read cursor moved (rooms with read receipts only)"),
    "typing": ServerEvent(TypingEventWire, "Someone in the room started or stopped typing"),
    "presence": ServerEvent(PresenceEventWire, "A user came online or went offline"),
    "member:joined": ServerEvent(MemberJoined, "A user joined or was added to the room"),
    "member:left": ServerEvent(MemberLeft, "A user left the room"),
    "room:added": ServerEvent(RoomView, "The user was added to a room (invite, new direct conversation)"),
    "room:updated": ServerEvent(RoomUpdated, "The room's name, topic, archived state or member roles changed"),
    "room:deleted": ServerEvent(RoomDeleted, "The room was deleted; drop it"),
    "member:removed": ServerEvent(MemberRemoved, "The user was removed from a room by its owner; drop it"),
    "assistant:delta": ServerEvent(AssistantDeltaWire, "The next chunk of a streaming assistant reply"),
    "conversation:updated": ServerEvent(ConversationView, "A WhatsApp conversation changed (staff only)"),
    "wa:status": ServerEvent(WaStatus, "Delivery status of an outbound WhatsApp message (staff only)"),
    "wa:session": ServerEvent(WaSessionEvent, "A linked-device session's QR code, pairing code or link state (admins only)"),
    "note:added": ServerEvent(NoteView, "A private note was added to a WhatsApp conversation (staff only)"),
    "conversation:event": ServerEvent(ConversationEventView, "A system event in a conversation's timeline (staff who see it)"),
    "conversation:handover": ServerEvent(ConversationHandover, "A conversation was assigned to or taken from the user"),
    "conversation:hidden": ServerEvent(ConversationHidden, "A conversation left what the staff member sees: drop it"),
    "queue:updated": ServerEvent(QueueView, "A queue was created or changed (supervisors, admins, its members)"),
    "queue:deleted": ServerEvent(QueueDeleted, "A queue was deleted (supervisors, admins, its members)"),
    "contact:updated": ServerEvent(ContactView, "A contact was changed by staff or got a label (staff only)"),
    "label:updated": ServerEvent(LabelView, "A label was created or changed (staff only)"),
    "label:deleted": ServerEvent(LabelDeleted, "A label was deleted: drop it everywhere (staff only)"),
    "campaign:progress": ServerEvent(CampaignProgress, "A campaign's counts changed (supervisors and admins only)"),
    "mention": ServerEvent(MentionEventWire, "The user was mentioned in a room they have not muted (their user channel only)"),
    "session:ended": ServerEvent(SessionEnded, "The socket's authorisation ended; a server disconnect follows"),
}


def invalid_payload(exc: ValidationError) -> Invalid:
    """The ``invalid`` error for a payload its model refused, naming the top-level field."""
    first = exc.errors(include_url=False)[0]
    loc = first["loc"]
    if not loc:
        return Invalid("payload must be an object")
    field = str(loc[0])
    if first["type"] == "missing":
        return Invalid(f"{field} is required", field=field)
    if first["type"] == "extra_forbidden":
        return Invalid(f"{field} is not a field of this event", field=field)
    where = ".".join(str(p) for p in loc)
    return Invalid(f"{where}: {first['msg']}", field=field)
