"""Prompt context: the rolling summary plus the messages after it (``ai.prompt`` turns them into
a request, as data).

The summary covers every message up to ``upto_seq``. The prompt carries the summary and the
messages after it: at least the last K, and never more than K + threshold - 1, because as soon
as the tail reaches K + threshold its older part is folded into the summary. So the context
never has a hole, and a long conversation costs about the same per reply as a short one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from chatcore.events import Attachment, MessageRecord

from .provider import Request, Turn, TurnRole, estimate_tokens


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    upto_seq: int


def to_turn(msg: MessageRecord, max_chars: int) -> Turn:
    role: TurnRole = "user"  # users, staff and WhatsApp contacts alike
    if msg.author_kind == "assistant":
        role = "assistant"
    elif msg.author_kind == "system":
        role = "system-note"
    author = msg.author_name or msg.author_kind
    text = msg.body if len(msg.body) <= max_chars else msg.body[:max_chars] + " [truncated]"
    if msg.attachments and msg.deleted_at is None:
        text = " ".join([text, *(describe_attachment(a) for a in msg.attachments)]).strip()
    return Turn(role, author, text)


def describe_attachment(a: Attachment) -> str:
    """What the assistant learns of a file: its kind and name, never its bytes (the name is
    the sender's text like the body, and goes into the prompt as data with it)."""
    kind = a.mime.split("/", 1)[0]
    return f"[{kind if kind in ('image', 'audio', 'video') else 'file'}: {a.name}]"


def prompt_tokens(request: Request) -> int:
    return estimate_tokens(request.system) + estimate_tokens(request.data)


def answer_key(room_id: int, provider: str, model: str, request: Request) -> str:
    """Identical only when room, model, instructions, summary, context and question are all identical."""
    blob = json.dumps([room_id, provider, model, request.system, request.data])
    return hashlib.sha256(blob.encode()).hexdigest()
