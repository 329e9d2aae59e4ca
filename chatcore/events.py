"""Typed records that cross a process or package boundary.

One frozen dataclass per record, one place (``to_wire``/``from_wire``) that turns each into
JSON-ready dicts. The message record has the same flat shape everywhere: Socket.IO
``message`` events, REST history, the Kafka archive record (plus ``v``) and the archive API,
reactions included (a summary per emoji, ``Reaction``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

ARCHIVE_TOPIC = "chat.messages.archive"
ARCHIVE_DLQ_TOPIC = "chat.messages.archive.dlq"
ARCHIVE_RECORD_VERSION = 1
ARCHIVE_OP_DELETE = "delete"  # a tombstone record (``archive_tombstone``); records without ``op`` are messages
REACTION_USER_IDS_MAX = 10  # user ids a reaction summary names; ``count`` says how many reacted

# an attachment's status when its bytes are not (yet) in the store; absent means ready
ATTACHMENT_PENDING = "pending"
ATTACHMENT_UNAVAILABLE = "unavailable"
ATTACHMENT_STATUSES = (ATTACHMENT_PENDING, ATTACHMENT_UNAVAILABLE)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO-8601 with milliseconds and a Z suffix, or None."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message: its metadata, plus short-lived signed URLs once a server
    that holds the file-URL secret has signed it (``chatcore/files.py``). Stored records, the
    Kafka record and archive documents carry no URLs (they would expire); every API re-signs.
    An attachment has a thumbnail exactly when it has width and height (an image we decoded).

    ``status`` is None for a file whose bytes are in the store (``ready``; the field is then left
    out of every dict, so records without one are unchanged). Media a WhatsApp contact sent are
    recorded before their bytes are fetched: ``pending`` until the fetch ends, ``unavailable``
    when it failed (a staff retry fetches again). Neither has bytes, so neither gets URLs."""

    id: str
    name: str
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    url: str | None = None
    thumb_url: str | None = None
    status: str | None = None  # None (ready) | ATTACHMENT_PENDING | ATTACHMENT_UNAVAILABLE

    @property
    def has_thumb(self) -> bool:
        return self.width is not None and self.height is not None

    @property
    def ready(self) -> bool:
        return self.status is None

    def to_wire(self) -> dict[str, Any]:
        d = {"id": self.id, "name": self.name, "mime": self.mime, "size": self.size, "url": self.url,
             "thumb_url": self.thumb_url, "width": self.width, "height": self.height}
        if self.status is not None:
            d["status"] = self.status
        return d

    def meta(self) -> dict[str, Any]:
        """What is stored (PostgreSQL ``messages.attachments``, the archive): no URLs."""
        d = {"id": self.id, "name": self.name, "mime": self.mime, "size": self.size,
             "width": self.width, "height": self.height}
        if self.status is not None:
            d["status"] = self.status
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Attachment:
        """From a stored or wire dict; URLs are dropped (they are re-signed where served)."""
        status = d.get("status")
        return cls(id=str(d["id"]), name=str(d["name"]), mime=str(d["mime"]), size=int(d["size"]),
                   width=None if d.get("width") is None else int(d["width"]),
                   height=None if d.get("height") is None else int(d["height"]),
                   status=status if status in ATTACHMENT_STATUSES else None)


@dataclass(frozen=True, slots=True)
class Reaction:
    """One emoji's reactions on a message: how many users reacted with it and the first
    ``REACTION_USER_IDS_MAX`` of them (in the order they reacted), so a popular message's
    record stays small. The record is the same for every reader (it is broadcast), so it
    cannot say whether the reader reacted: clients look for their id in ``user_ids`` and learn
    the rest from the ``message:react`` ack's ``mine``."""

    emoji: str
    count: int
    user_ids: tuple[int, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {"emoji": self.emoji, "count": self.count, "user_ids": list(self.user_ids)}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Reaction:
        return cls(emoji=str(d["emoji"]), count=int(d["count"]),
                   user_ids=tuple(int(u) for u in d.get("user_ids") or ())[:REACTION_USER_IDS_MAX])


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A chat message as clients, the archive and other packages see it."""

    id: int
    room_id: int
    seq: int
    author_id: int | None
    author_kind: str  # user | assistant | contact | system
    author_name: str | None
    body: str
    created_at: datetime
    client_id: str | None = None
    reply_to: int | None = None
    edited_at: datetime | None = None
    deleted_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    reactions: tuple[Reaction, ...] = ()

    def with_attachments(self, attachments: tuple[Attachment, ...]) -> MessageRecord:
        return replace(self, attachments=attachments)

    def to_wire(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies every field, on the path of every message
        return {
            "id": self.id, "room_id": self.room_id, "seq": self.seq, "author_id": self.author_id,
            "author_kind": self.author_kind, "author_name": self.author_name,
            "body": self.body if self.deleted_at is None else "",
            "created_at": iso(self.created_at), "client_id": self.client_id, "reply_to": self.reply_to,
            "edited_at": iso(self.edited_at), "deleted_at": iso(self.deleted_at),
            "meta": copy.deepcopy(self.meta) if self.meta else {},
            # a deleted message's files are gone with it (their URLs are refused at once)
            "attachments": [a.to_wire() for a in self.attachments] if self.deleted_at is None else [],
            "reactions": [r.to_wire() for r in self.reactions] if self.deleted_at is None else [],
        }

    def to_archive(self, version: int = 0) -> dict[str, Any]:
        """The Kafka record for ``chat.messages.archive`` (keyed by room id); attachments carry
        their metadata with null URLs (whoever serves the archived message signs fresh ones).
        ``version`` is the row's version when read (schema/0021): the archive keeps, per
        message, the record with the highest one."""
        d = self.to_wire()
        d["body"] = self.body if self.deleted_at is None else ""
        d["attachments"] = [{**a.meta(), "url": None, "thumb_url": None} for a in self.attachments] \
            if self.deleted_at is None else []
        d["v"] = ARCHIVE_RECORD_VERSION
        d["version"] = version
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> MessageRecord:
        return cls(
            id=int(d["id"]),
            room_id=int(d["room_id"]),
            seq=int(d["seq"]),
            author_id=None if d.get("author_id") is None else int(d["author_id"]),
            author_kind=str(d["author_kind"]),
            author_name=d.get("author_name"),
            body=str(d.get("body") or ""),
            created_at=parse_iso(d["created_at"]),  # type: ignore[arg-type]
            client_id=d.get("client_id"),
            reply_to=d.get("reply_to"),
            edited_at=parse_iso(d.get("edited_at")),
            deleted_at=parse_iso(d.get("deleted_at")),
            meta=dict(d.get("meta") or {}),
            attachments=tuple(Attachment.from_wire(a) for a in d.get("attachments") or ()),
            reactions=tuple(Reaction.from_wire(r) for r in d.get("reactions") or ()),
        )


def archive_tombstone(message_id: int, room_id: int, version: int, deleted_at: datetime) -> dict[str, Any]:
    """The Kafka record that erases an archived message: chat-archive empties its text, files
    and reactions and stamps ``deleted_at``, unless it holds a newer version already."""
    return {"v": ARCHIVE_RECORD_VERSION, "op": ARCHIVE_OP_DELETE, "id": message_id, "room_id": room_id,
            "version": version, "deleted_at": iso(deleted_at)}


@dataclass(frozen=True, slots=True)
class TypingEvent:
    room_id: int
    user: dict[str, Any]
    typing: bool

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    user_id: int
    status: str  # online | offline
    last_seen: str | None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MemberEvent:
    room_id: int
    user: dict[str, Any]
    presence: str | None = None  # member:joined: online | offline, so room mates need not guess

    def to_wire(self) -> dict[str, Any]:
        d = asdict(self)
        if self.presence is None:
            del d["presence"]
        return d


@dataclass(frozen=True, slots=True)
class AssistantDelta:
    room_id: int
    reply_id: str
    text: str

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)
