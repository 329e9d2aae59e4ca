"""The wire shapes every API shares, as pydantic models: one statement of each record that both
the REST document (OpenAPI) and the Socket.IO event document are generated from.

These describe what the services send; the hot paths keep serialising with the records'
``to_wire`` (``chatcore/events.py``) and tests check that the two agree. Request models live
next to the routes and events that take them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorCode = Literal[
    "unauthorized", "forbidden", "not_found", "invalid", "rate_limited", "too_large", "unavailable",
    "conflict", "unsupported_type", "archived", "deactivated", "password_change_required", "internal",
]


class Wire(BaseModel):
    """A record the server sends: every field it sends is declared, nothing else appears."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorDetail(Wire):
    code: ErrorCode = Field(description="stable error code; clients branch on it")
    message: str = Field(description="readable text for people; may change")
    details: dict[str, Any] | None = Field(
        default=None, description="e.g. the request field at fault (field) or seconds to wait (retry_after)"
    )


class ErrorBody(Wire):
    """The body of every HTTP error response."""

    error: ErrorDetail


class UserRecord(Wire):
    id: int
    username: str
    display_name: str
    role: Literal["user", "staff", "supervisor", "admin"]
    kind: Literal["human", "assistant", "contact"]
    avatar_url: str | None = Field(
        default=None, description="signed, short-lived URL of the user's picture (a WebP thumbnail, docs/FILES.md "
                                  "Avatars); null: no picture, show initials")


class RoomRecord(Wire):
    model_config = ConfigDict(extra="allow", frozen=True)  # views add counts (members_count, joined, unread)

    id: int
    slug: str
    name: str
    kind: Literal["public", "private", "direct", "whatsapp"]
    topic: str
    created_by: int | None
    last_seq: int
    archived_upto_seq: int
    created_at: str | None
    archived_at: str | None = Field(default=None, description="set: archived, read-only (sends refused)")


class AttachmentWire(Wire):
    """A file attached to a message (docs/FILES.md). The URLs are short-lived and signed; a new
    copy of the record carries fresh ones."""

    id: str = Field(description="opaque upload id")
    name: str
    mime: str = Field(description="detected from the content")
    size: int = Field(ge=0, description="bytes")
    url: str | None = Field(description="signed download URL; null only in archive storage")
    thumb_url: str | None = Field(description="signed thumbnail URL (images), else null")
    width: int | None
    height: int | None
    status: Literal["ready", "pending", "unavailable"] | None = Field(
        default=None, description="absent when the file is ready; WhatsApp media: pending while the server fetches "
                                  "it, unavailable when the fetch failed (url and thumb_url are then null; staff may "
                                  "retry: POST /api/v1/wa/conversations/{id}/media/{attachment_id}/retry)")


class ReactionWire(Wire):
    """One emoji's reactions on a message (docs/PROTOCOL.md, Reactions)."""

    emoji: str = Field(description="one emoji (skin tones and ZWJ sequences included)")
    count: int = Field(ge=1, description="how many users reacted with it")
    user_ids: list[int] = Field(max_length=10, description="the first users who reacted with it (at most 10), "
                                                           "in order; whether the reader reacted is not in the record")


class MessageRecordWire(Wire):
    """The one message record: Socket.IO ``message`` events, REST history, the Kafka archive
    record (plus ``v``) and the archive API."""

    id: int
    room_id: int
    seq: int = Field(ge=1, description="gap-free per room; clients detect gaps and resume by it")
    author_id: int | None
    author_kind: Literal["user", "assistant", "contact", "system"]
    author_name: str | None
    body: str = Field(description="empty when deleted")
    created_at: str
    client_id: str | None
    reply_to: int | None
    edited_at: str | None
    deleted_at: str | None
    meta: dict[str, Any]
    attachments: list[AttachmentWire] = Field(default_factory=list, description="[] when none, and when deleted")
    reactions: list[ReactionWire] = Field(
        default_factory=list, description="per emoji, in the order first used; [] when none, and when deleted")


# --- the REST records built on the ones above (views of rooms and users, envelopes) -------------

class Peer(Wire):
    id: int | None
    name: str | None
    kind: Literal["human", "assistant", "contact"] | None = Field(default=None, description="absent for a peer gone")
    status: Literal["online", "offline"] | None = Field(
        default=None, description="live presence at this answer (the assistant is always online); null: unknown."
        " presence events update it")
    last_seen: str | None = None
    avatar_url: str | None = Field(default=None, description="the peer's picture, as in the user record")


class MemberRecord(UserRecord):
    """A room member as ``GET /rooms/{id}`` and ``room:join`` list it."""

    member_role: Literal["owner", "member"]
    last_seen: str | None


class RoomView(RoomRecord):
    """A room as one user sees it: the record plus that user's counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    members_count: int
    joined: bool
    last_read_seq: int | None = Field(default=None, description="room lists only")
    unread: int | None = Field(default=None, description="room lists only; capped")
    mentions: int | None = Field(default=None, description="room lists only: unread mentions of the user; capped")
    notify: Literal["all", "mentions", "none"] | None = Field(
        default=None, description="room lists, rooms the user belongs to: their notification setting")
    peer: Peer | None = Field(default=None, description="direct rooms in room lists: the other member")
    members: list[MemberRecord] | None = Field(default=None, description="GET /rooms/{id} only")


class TokenPair(Wire):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: str = Field(description="the access token's lifetime in seconds (a decimal string)")


class Session(TokenPair):
    """A login: the user and a fresh token pair."""

    user: UserRecord


class UserEnvelope(Wire):
    user: UserRecord


class UsersPage(Wire):
    users: list[UserRecord]


class RoomEnvelope(Wire):
    room: RoomView


class RoomsPage(Wire):
    rooms: list[RoomView]
    has_more: bool
    next_cursor: int | None = Field(description="pass as after_id for the next page; null on the last")


class MessagesPage(Wire):
    messages: list[MessageRecordWire] = Field(description="ascending by seq")
    has_more: bool
    archive_unavailable: bool | None = Field(default=None, description="older messages are in an archive that did not answer")
    archive_pending: bool | None = Field(default=None, description="the archive has not stored the next older ones yet")
