"""The per-process service container handed to actions.

Built once by ``create_app`` and stored under ``SERVICES``; actions receive it explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from chatcore.background import Supervisor
from chatcore.tokens import TokenIssuer, TokenVerifier

from .config import Config
from .metrics import Metrics
from .realtime.presence import Presence
from .realtime.ratelimit import RateLimiter
from .realtime.typing import TypingThrottle
from .storage.batcher import SendBatcher

if TYPE_CHECKING:
    from .actions.assistant import AssistantBridge
    from .actions.whatsapp import WhatsAppService
    from .passwords import PasswordHasher


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
    assistant: AssistantBridge | None = None
    whatsapp: WhatsAppService | None = None
    archive: Any = None  # ArchiveHistoryClient when ARCHIVE_URL is set
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)
