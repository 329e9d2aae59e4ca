"""The bridge between chat-server and ``ai.Assistant``.

It decides when the assistant answers (a mention in a room, any message in a direct
conversation with the assistant user), gives the assistant its message source (PostgreSQL) and
reply sink (stream ``assistant:delta`` to the room, then store and emit the reply as a normal
message), and runs each job under the app's supervisor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ai.assistant import Assistant, Draft, mentions_assistant
from ai.prompt import DATA_RULES, data_block
from ai.provider import ProviderError, Request, Turn
from chatcore.events import AssistantDelta, MessageRecord

from ..storage import messages as mdb
from ..storage import rooms as rdb
from .messages import store_system_message
from .notify import emit, room_channel

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

ASSISTANT_USERNAME = "assistant"
ASSISTANT_DISPLAY_NAME = "Assistant"

OnReply = Callable[[MessageRecord], Awaitable[None]]


class PgMessageSource:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def latest(self, room_id: int, limit: int) -> list[MessageRecord]:
        messages, _ = await mdb.history(self.svc.pool, room_id, None, limit)
        return messages

    async def between(self, room_id: int, after_seq: int, upto_seq: int) -> list[MessageRecord]:
        return await mdb.between(self.svc.pool, room_id, after_seq, upto_seq)


class RoomReplySink:
    """Streams deltas to the room and stores the final reply; tells the listener afterwards."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.listeners: dict[int, OnReply] = {}  # room kind hooks, e.g. WhatsApp delivery

    async def delta(self, event: AssistantDelta) -> None:
        await emit(self.svc, "assistant:delta", event.to_wire(), to=room_channel(event.room_id))

    async def final(self, room_id: int, reply_id: str, text: str, meta: dict[str, Any]) -> MessageRecord:
        msg = await store_system_message(
            self.svc, room_id, text, author_kind="assistant", author_id=self.svc.assistant_user_id,
            author_name=ASSISTANT_DISPLAY_NAME, meta={**meta, "reply_id": reply_id},
        )
        await self._notify(room_id, msg)
        return msg

    async def system(self, room_id: int, text: str, meta: dict[str, Any]) -> MessageRecord:
        return await store_system_message(self.svc, room_id, text, author_kind="system", meta=meta)

    async def _notify(self, room_id: int, msg: MessageRecord) -> None:
        if self.svc.whatsapp is not None:
            await self.svc.whatsapp.on_assistant_reply(room_id, msg)


TRIAGE_TIMEOUT_S = 10.0  # the whole answer; past it the desk's keyword triage decides
TRIAGE_RULES = ("You route a customer's first message to one department of a support desk. Answer with exactly "
                "one department name from this list and nothing else: {names}. If none fits, answer NONE.")


class AssistantBridge:
    def __init__(self, svc: Services, assistant: Assistant) -> None:
        self.svc = svc
        self.assistant = assistant

    async def pick(self, options: list[str], text: str) -> str | None:
        """The option (a queue name, set by admins) the model picks for ``text`` (the contact's
        message, passed as quoted data, never as instructions); ``None`` with the offline
        provider, on a failure or timeout, or when the answer names no option."""
        provider = self.assistant.provider
        if provider.offline or not options:
            return None
        request = Request(f"{TRIAGE_RULES.format(names='; '.join(options))}\n\n{DATA_RULES}",
                          data_block("", [Turn("user", "contact", text)]))
        try:
            async with asyncio.timeout(TRIAGE_TIMEOUT_S):
                answer = "".join([chunk async for chunk in provider.stream_reply(request)])
        except (ProviderError, TimeoutError) as exc:
            log.info("triage by the model failed (%s); keywords decide", type(exc).__name__)
            return None
        wanted = answer.strip().strip(".").casefold()
        return next((o for o in options if o.casefold() == wanted), None)

    async def maybe_trigger(self, room_kind: str, msg: MessageRecord) -> None:
        if msg.author_kind != "user":
            return
        wanted = mentions_assistant(msg.body)
        if not wanted and room_kind == "direct":
            wanted = await rdb.is_member(self.svc.pool, msg.room_id, self.svc.assistant_user_id)
        if wanted:
            self.start(msg.room_id, msg)

    def start(self, room_id: int, trigger: MessageRecord) -> None:
        self.svc.supervisor.spawn(f"ai-reply:{room_id}:{trigger.id}", self.assistant.reply(room_id, trigger))

    async def staff_summary(self, room_id: int, staff_id: int) -> Draft:
        return await self.assistant.staff_summary(room_id, staff_id)

    async def suggest_reply(self, room_id: int, staff_id: int) -> Draft:
        return await self.assistant.suggest_reply(room_id, staff_id)
