"""Prompt context: the rolling summary plus the messages after it.

The summary covers every message up to ``upto_seq``. The prompt carries the summary and the
messages after it: at least the last K, and never more than K + threshold - 1, because as soon
as the tail reaches K + threshold its older part is folded into the summary. So the context
never has a hole, and a long conversation costs about the same per reply as a short one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from chatcore.events import MessageRecord

from .provider import Turn, TurnRole, estimate_tokens


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
    return Turn(role, author, text)


def system_with_summary(system_prompt: str, summary: Summary | None) -> str:
    """The summary is our own text, so it may sit in the system slot; user text never does."""
    if summary is None or not summary.text:
        return system_prompt
    return f"{system_prompt}\n\nSummary of the earlier conversation (written by you):\n{summary.text}"


def prompt_tokens(system: str, turns: list[Turn]) -> int:
    return estimate_tokens(system) + sum(estimate_tokens(t.render()) + 4 for t in turns)


def answer_key(room_id: int, provider: str, model: str, system: str, turns: list[Turn]) -> str:
    """Identical only when room, model, summary, context and question are all identical."""
    blob = json.dumps([room_id, provider, model, system, [[t.role, t.author, t.text] for t in turns]])
    return hashlib.sha256(blob.encode()).hexdigest()
