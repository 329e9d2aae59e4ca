"""WhatsApp media: the kinds, their types and size limits, and how a file maps to a message.

Inbound, a contact's image, audio (voice notes included), video, document or sticker arrives as
a media id; its bytes are fetched with ``CloudApiClient.media_info`` and ``download_media``.
Outbound, a file is uploaded (``upload_media``) and sent as the message kind its type calls for
(``send_media``). WhatsApp accepts only these types and sizes (Cloud API, "Supported media
types"); anything else is refused here, before any Graph call, rather than by Meta after the
message was shown to staff as sent:

| kind     | types                                                         | limit   | caption |
|----------|---------------------------------------------------------------|---------|---------|
| audio    | audio/aac, audio/amr, audio/mpeg, audio/mp4, audio/ogg (Opus) | 16 MB   | no      |
| document | text/plain, PDF, Word, Excel, PowerPoint (old and OOXML)      | 100 MB  | yes     |
| image    | image/jpeg, image/png                                         | 5 MB    | yes     |
| sticker  | image/webp (inbound only here)                                | 500 KB  | no      |
| video    | video/mp4, video/3gpp (H.264 video, AAC audio)                | 16 MB   | yes     |

Meta's "MB" is taken as MiB for inbound (a generous bound: what Meta delivered, we keep) and
as 10^6 bytes for outbound (a strict one: what we send must pass Meta's check).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from chatcore.errors import TooLarge, UnsupportedType

MIB = 1024 * 1024
MB = 1000 * 1000

INBOUND_KINDS = ("image", "audio", "video", "document", "sticker")
# inbound bound per kind: what WhatsApp itself lets a contact send
INBOUND_LIMITS = {"image": 5 * MIB, "audio": 16 * MIB, "video": 16 * MIB, "document": 100 * MIB,
                  "sticker": 1 * MIB}

# the types (detected from the bytes, fnmatch patterns) a linked contact's file of each kind may
# have: the contact's own app says what a file is, with no Meta check between; None: any type
LINKED_INBOUND_TYPES: dict[str, tuple[str, ...] | None] = {
    "image": ("image/jpeg", "image/png", "image/webp"), "sticker": ("image/webp", "image/png"),
    "video": ("video/*",), "audio": ("audio/*", "video/mp4", "application/ogg"), "document": None}

OUTBOUND_TYPES: dict[str, str] = {
    "audio/aac": "audio", "audio/amr": "audio", "audio/mpeg": "audio", "audio/mp4": "audio", "audio/ogg": "audio",
    "image/jpeg": "image", "image/png": "image",
    "video/mp4": "video", "video/3gpp": "video",
    "text/plain": "document", "application/pdf": "document",
    "application/msword": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.ms-powerpoint": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
}
OUTBOUND_LIMITS = {"audio": 16 * MB, "video": 16 * MB, "image": 5 * MB, "document": 100 * MB}
CAPTIONED = frozenset({"image", "video", "document"})
CAPTION_MAX = 1024  # characters; a longer text goes as a text message of its own
OGG_OPUS_MAGIC = b"OpusHead"  # the first packet of an Ogg Opus stream; Vorbis has "\x01vorbis"
OGG_HEAD_BYTES = 64  # the identification header sits in the first Ogg page, within these bytes

_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "audio/ogg": ".ogg",
               "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/amr": ".amr",
               "video/mp4": ".mp4", "video/3gpp": ".3gp", "application/pdf": ".pdf", "text/plain": ".txt"}


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """``GET /{media-id}``: where to download the bytes (the URL lives for 5 minutes and needs
    the same bearer token), what Meta says they are, and their SHA-256 (hex)."""

    url: str
    mime_type: str
    file_size: int | None
    sha256: str | None


def base_mime(mime: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return mime.split(";", 1)[0].strip().lower()


def inbound_name(kind: str, mime: str, filename: str | None, voice: bool = False) -> str:
    """The name staff see for an inbound file: a document's own name, else the kind and the
    extension of its type (``image.jpg``, ``voice-note.ogg``)."""
    if kind == "document" and filename:
        return filename
    base = base_mime(mime)
    ext = _EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ""
    return ("voice-note" if voice else kind) + ext


def outbound_kind(mime: str, size: int, head: bytes | None = None) -> str:
    """The message kind a file of ``mime`` and ``size`` bytes is sent as; ``UnsupportedType`` or
    ``TooLarge`` (field ``attachments``) when WhatsApp would refuse it. ``head``, the first bytes
    of an Ogg file, tells Opus (accepted) from Vorbis (refused by WhatsApp)."""
    base = base_mime(mime)
    kind = OUTBOUND_TYPES.get(base)
    if kind is None:
        raise UnsupportedType(f"WhatsApp does not accept files of type {base}: send JPEG or PNG images, MP4 or 3GPP "
                              "videos, AAC, AMR, MP3, M4A or Ogg Opus audio, or PDF, text, Word, Excel or "
                              "PowerPoint documents", field="attachments", mime=base)
    if base == "audio/ogg" and head is not None and OGG_OPUS_MAGIC not in head[:OGG_HEAD_BYTES]:
        raise UnsupportedType("WhatsApp accepts Ogg audio only with the Opus codec", field="attachments", mime=base)
    limit = OUTBOUND_LIMITS[kind]
    if size > limit:
        raise TooLarge(f"WhatsApp accepts {kind} files up to {limit // MB} MB; this one has {size} bytes",
                       field="attachments", limit=limit)
    return kind


@dataclass(frozen=True, slots=True)
class InboundMedia:
    """The file of an inbound message, from its ``meta`` (``describe.py``)."""

    kind: str  # image | audio | video | document | sticker
    media_id: str
    mime: str  # what Meta says, parameters dropped; the stored type is detected from the bytes
    name: str
    caption: str


def inbound_media(kind: str, meta: dict[str, object]) -> InboundMedia | None:
    """The file an inbound message of ``kind`` carries; None for other kinds, or without an id."""
    media_id = meta.get("media_id")
    if kind not in INBOUND_KINDS or not isinstance(media_id, str) or not media_id:
        return None
    mime = meta.get("mime_type")
    mime = base_mime(mime) if isinstance(mime, str) and mime else "application/octet-stream"
    filename, caption = meta.get("filename"), meta.get("caption")
    name = inbound_name(kind, mime, filename if isinstance(filename, str) else None, meta.get("voice") is True)
    return InboundMedia(kind, media_id, mime, name, caption.strip() if isinstance(caption, str) else "")
