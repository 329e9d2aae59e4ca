"""The per-process service container handed to actions.

Built once by ``create_app`` and stored under ``SERVICES``; actions receive it explicitly. It
knows the assistant and the WhatsApp bridge only by the interfaces other actions call
(``AssistantHooks``, ``WhatsAppHooks``, ``CampaignHooks``), so no action is imported here and the arrows stay one
way (actions -> context).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from chatcore.background import Supervisor
from chatcore.events import Attachment, MessageRecord
from chatcore.tokens import TokenIssuer, TokenVerifier
from whatsapp_bridge.models import StatusUpdate

from .config import Config
from .metrics import Metrics
from .realtime.presence import Presence
from .realtime.ratelimit import RateLimiter
from .realtime.typing import TypingThrottle
from .storage.batcher import SendBatcher

if TYPE_CHECKING:
    from ai.assistant import Draft

    from .passwords import PasswordHasher


class AssistantHooks(Protocol):
    """What other actions ask of the assistant (``actions/assistant.py: AssistantBridge``)."""

    async def maybe_trigger(self, room_kind: str, msg: MessageRecord) -> None: ...

    def start(self, room_id: int, trigger: MessageRecord) -> None: ...

    async def staff_summary(self, room_id: int, staff_id: int) -> Draft: ...

    async def suggest_reply(self, room_id: int, staff_id: int) -> Draft: ...

    async def pick(self, options: list[str], text: str) -> str | None: ...


class WhatsAppHooks(Protocol):
    """What other actions ask of the WhatsApp bridge (``actions/whatsapp.py: WhatsAppService``)."""

    async def check_outbound(self, room_id: int, files: Sequence[Attachment] = ()) -> dict[str, Any]: ...

    async def on_staff_message(self, room_id: int, msg: MessageRecord) -> None: ...

    async def on_assistant_reply(self, room_id: int, msg: MessageRecord) -> None: ...

    async def send_notice(self, room_id: int, text: str, meta: dict[str, Any]) -> MessageRecord | None: ...
    async def publish(self, room_id: int) -> dict[str, Any]: ...


class CampaignHooks(Protocol):
    """What the WhatsApp bridge tells campaigns (``actions/campaigns.py: CampaignService``)."""

    async def on_status(self, status: StatusUpdate) -> None: ...

    async def on_inbound(self, account_id: int, wa_id: str, text: str) -> None: ...


@dataclass
class Services:
    config: Config
    pool: asyncpg.Pool
    redis: aioredis.Redis
    sio: socketio.AsyncServer
    issuer: TokenIssuer
    verifier: TokenVerifier
    passwords: PasswordHasher
    limiter: RateLimiter
    typing: TypingThrottle
    presence: Presence
    metrics: Metrics
    supervisor: Supervisor
    node_id: str
    batcher: SendBatcher
    assistant_user_id: int = 0
    assistant: AssistantHooks | None = None
    whatsapp: WhatsAppHooks | None = None
    campaigns: CampaignHooks | None = None
    archive: Any = None  # ArchiveHistoryClient when ARCHIVE_URL is set
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)
