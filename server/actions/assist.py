"""Agent assist: the assistant helps the staff member on a WhatsApp conversation.

Two requests, both for staff only, both answered with a draft that is stored nowhere and sent
to nobody: a short summary of the conversation so far (shown on takeover; built on the same
cached summary the assistant replies from), and a suggested reply that staff edit and send as
their own message. The web app labels both as written by the AI. Each counts against the
staff member's hourly assistant quota (``AI_QUOTA_PER_USER_PER_HOUR``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ai.assistant import AssistRefused, Draft
from ai.provider import ProviderError
from chatcore.errors import RateLimited, Unavailable

from . import audit
from .conversations import access_conversation

if TYPE_CHECKING:
    from ..context import Services


async def do_assist(svc: Services, actor: audit.Actor, room_id: int, kind: str) -> Draft:
    """``kind`` is ``summary`` or ``suggestion``; staff only for conversations they may see
    (their queues' and their own: ``conversations.access_conversation``)."""
    await access_conversation(svc, actor.user, room_id)
    if svc.assistant is None:
        raise Unavailable("the assistant is not running on this node")
    try:
        if kind == "summary":
            return await svc.assistant.staff_summary(room_id, actor.user.id)
        return await svc.assistant.suggest_reply(room_id, actor.user.id)
    except AssistRefused as exc:
        if exc.kind == "quota":
            raise RateLimited("your hourly assistant quota is used up", retry_after=exc.retry_after_s) from None
        raise Unavailable(f"the assistant cannot help right now ({exc.kind})") from None
    except ProviderError as exc:
        raise Unavailable(f"the assistant could not answer ({exc.kind})") from None
    except TimeoutError:
        raise Unavailable("the assistant could not answer (timeout)") from None
