"""The composition root: ``create_app(config)`` builds every part of chat-server.

Resources open in ``cleanup_ctx`` in dependency order (keys, PostgreSQL, Redis, the file store,
Socket.IO manager, services, socket sessions, background loops, assistant, WhatsApp, archive
relay) and close in reverse.
Tests build the app through this same function.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from ai.assistant import Assistant, build_provider
from chatcore.background import Supervisor
from chatcore.openapi import REPO_WEB_DIST, add_docs_page
from chatcore.tokens import TokenIssuer, TokenVerifier, generate_keypair

from . import jsonlib
from .actions.assistant import (
    ASSISTANT_DISPLAY_NAME,
    ASSISTANT_USERNAME,
    AssistantBridge,
    PgMessageSource,
    RoomReplySink,
)
from .actions.campaign_sender import CampaignSender
from .actions.conversations import run_sweeper as run_desk_sweeper
from .actions.files import run_sweep as run_file_sweep
from .actions.files import sweep_interval_s
from .actions.presence import on_presence_change
from .actions.sessions import SESSIONS, SocketSessions
from .actions.wa_sessions import WaSessionService
from .actions.whatsapp import WhatsAppService
from .config import Config
from .context import SERVICES, Services
from .files.service import FILES, FileService, build_file_service
from .metrics import Metrics
from .passwords import PasswordHasher
from .realtime.fanout import FanoutRedisManager, install_socket_poll, make_websocket_class
from .realtime.lean_socket import QueueLimits, install_lean_sockets
from .realtime.packets import LeanPacket
from .realtime.peers import ChatSocketServer
from .realtime.presence import Presence
from .realtime.ratelimit import RateLimiter
from .realtime.typing import TypingThrottle
from .relay.archive_client import ArchiveHistoryClient, service_token
from .relay.relay import ArchiveRelay, RelaySettings
from .shutdown import graceful_shutdown
from .storage import db as storage
from .storage import search as search_db
from .storage import users as udb
from .storage.batcher import SendBatcher
from .transport import (
    http,
    http_assist,  # noqa: F401  (its routes join http.routes on import)
    http_audit,  # noqa: F401  (its route joins http.routes on import)
    http_campaigns,  # noqa: F401  (its routes join http.routes on import)
    http_canned_replies,  # noqa: F401  (its routes join http.routes on import)
    http_contacts,  # noqa: F401  (its routes join http.routes on import)
    http_conversations,  # noqa: F401  (its routes join http.routes on import)
    http_events,
    http_files,
    http_labels,  # noqa: F401  (its routes join http.routes on import)
    http_manage,  # noqa: F401  (its routes join http's table on import)
    http_notes,  # noqa: F401  (its routes join http.routes on import)
    http_queues,  # noqa: F401  (its routes join http.routes on import)
    http_reports,  # noqa: F401  (its routes join http.routes on import)
    http_search,  # noqa: F401  (its route joins http.routes on import)
    http_wa_sessions,  # noqa: F401  (its routes join http.routes on import)
    http_whatsapp,
    static,
)
from .transport.middleware import error_middleware, passing_websockets, security_headers_middleware
from .transport.socket import SocketTransport

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
REQUEST_LINE_MAX_BYTES = 32 * 1024
SIO = web.AppKey("sio", socketio.AsyncServer)


def load_keys(config: Config) -> tuple[bytes, bytes]:
    priv, pub = config.jwt_private_key_file, config.jwt_public_key_file
    if priv is None:
        # the embedded default generates its own key pair once, into the data directory
        priv = config.data_dir / "keys" / "jwt-ed25519.pem"
        pub = config.data_dir / "keys" / "jwt-ed25519.pub.pem"
        generate_keypair(priv, pub)
    if pub is None:
        raise ValueError("JWT_PUBLIC_KEY_FILE must be set together with JWT_PRIVATE_KEY_FILE")
    return Path(priv).read_bytes(), Path(pub).read_bytes()


def make_sio(config: Config) -> socketio.AsyncServer:
    assert config.redis_url is not None
    manager = FanoutRedisManager(
        config.redis_url,
        channel=config.redis_prefix + "socketio",
        redis_options={"socket_connect_timeout": config.redis_timeout_s, "health_check_interval": 10},
        json=jsonlib,
    )
    sio = ChatSocketServer(
        connect_timeout_s=config.limits.connect_timeout_s,
        async_mode="aiohttp",
        client_manager=manager,
        serializer=LeanPacket,  # the stock format, without a binary scan of every outgoing payload
        json=jsonlib,
        cors_allowed_origins=list(config.cors_origins) or None,  # None: same origin only
        max_http_buffer_size=config.limits.max_ws_message_bytes,
        http_compression=config.compression,
        transports=["polling", "websocket"],
        ping_interval=config.ping_interval_s,
        ping_timeout=config.ping_timeout_s,
    )
    limits = config.limits
    # the metrics are bound to the queue limits and on_refused once Services exist (_services_ctx)
    sio.eio.configure_peers(limits.connections_per_ip, http.client_ip,
                            QueueLimits(limits.ws_queue_max_bytes, limits.ws_queue_max_packets))
    install_socket_poll()
    install_lean_sockets(sio.eio)
    # our own websocket driver: permessage-deflate only when configured (off by default)
    sio.eio._async = {**sio.eio._async, "websocket": make_websocket_class(config.compression)}
    return sio


def create_app(config: Config) -> web.Application:
    if config.database_url is None or config.redis_url is None:
        raise ValueError("create_app needs DATABASE_URL and REDIS_URL (the embedded default sets them)")
    app = web.Application(
        middlewares=[passing_websockets(security_headers_middleware), passing_websockets(error_middleware)],
        # JSON API bodies are held to limits.max_http_body_bytes in read_json; webhooks may be larger
        client_max_size=http_whatsapp.WEBHOOK_MAX_BYTES,
        # a request line past aiohttp's 8 KiB default got its parser's text/plain 400, before our
        # routes could answer with the API's JSON error (found by schemathesis); 32 KiB lets the
        # route's own validation answer (nginx in front still holds headers to its own buffers)
        handler_args={"max_line_size": REQUEST_LINE_MAX_BYTES, "max_field_size": REQUEST_LINE_MAX_BYTES},
    )
    app[CONFIG] = config
    sio = make_sio(config)
    app[SIO] = sio
    sio.attach(app)
    http.add_routes(app, config)
    http_events.add_event_routes(app, config)
    http_files.add_file_routes(app)
    add_docs_page(app, "/api/docs", "/api/v1/openapi.json", "chat-server", config.web_dist or REPO_WEB_DIST)
    static.add_static(app, config)
    app.cleanup_ctx.append(_services_ctx)
    app.on_shutdown.append(graceful_shutdown(sio))
    return app


async def _ensure_assistant_user(svc: Services) -> int:
    user = await udb.get_user_by_username(svc.pool, ASSISTANT_USERNAME)
    if user is None:
        try:
            user = await udb.insert_user(svc.pool, ASSISTANT_USERNAME, ASSISTANT_DISPLAY_NAME, None, kind="assistant")
        except Exception:
            user = await udb.get_user_by_username(svc.pool, ASSISTANT_USERNAME)
    assert user is not None
    return user.id


REDIS_MAX_CONNECTIONS = 64


def make_redis(config: Config) -> aioredis.Redis:
    """The node's Redis client. Its pool makes a burst (thousands of sockets closing at once,
    each updating presence) wait for a free connection, bounded by the Redis timeout, instead of
    failing with ``MaxConnectionsError`` past the default pool's 100 connections."""
    assert config.redis_url is not None
    pool = aioredis.BlockingConnectionPool.from_url(
        config.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=config.redis_timeout_s,
        socket_timeout=config.redis_timeout_s,
        socket_connect_timeout=config.redis_timeout_s,
        health_check_interval=10,
    )
    return aioredis.Redis.from_pool(pool)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    private_pem, public_pem = load_keys(config)
    assert config.database_url is not None and config.redis_url is not None
    pool = await storage.create_pool(config.database_url, timeout_s=config.db_timeout_s)
    redis = make_redis(config)
    supervisor = Supervisor("chat-server")
    node_id = config.node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    http_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    relay: ArchiveRelay | None = None
    files: FileService | None = None
    try:
        await storage.migrate(pool)
        if await search_db.apply_language(pool, config.search_language):
            log.info("search: text search configuration now %s; stored vectors recomputed", config.search_language)
        files = await build_file_service(config)
        svc_holder: dict[str, Services] = {}

        async def presence_changed(user_id: int, status: str, at: object) -> None:
            await on_presence_change(svc_holder["svc"], user_id, status, at)  # type: ignore[arg-type]

        svc = Services(
            config=config,
            pool=pool,
            redis=redis,
            sio=app[SIO],
            issuer=TokenIssuer(private_pem, config.access_ttl_s),
            verifier=TokenVerifier(public_pem),
            passwords=PasswordHasher(config.argon2_time_cost, config.argon2_memory_kib),
            limiter=RateLimiter(redis, config.redis_prefix),
            typing=TypingThrottle(redis, config.redis_prefix),
            presence=Presence(redis, config.redis_prefix, node_id, config.presence_ttl_s, presence_changed),
            metrics=Metrics(),
            supervisor=supervisor,
            node_id=node_id,
            batcher=SendBatcher(pool),
        )
        app[SIO].manager.on_dropped = svc.metrics.fanout_failures.inc  # bus events Redis never took
        app[SIO].eio.count_to(svc.metrics.slow_consumer_drops.inc, svc.metrics.connections_refused.inc)
        svc.extras["http"] = http_session
        svc.extras["signing_secret"] = private_pem
        svc.extras[FILES] = files
        svc_holder["svc"] = svc
        svc.assistant_user_id = await _ensure_assistant_user(svc)
        app[SERVICES] = svc
        svc.extras[SESSIONS] = sessions = SocketSessions(svc)
        SocketTransport(svc)
        _start_presence_loops(svc)
        supervisor.loop("socket-expiry", sessions.run_expiry, backoff_max_s=5)
        supervisor.loop("revocation-check", sessions.run_revocation_check, backoff_max_s=max(1.0, config.revocation_check_s))
        svc.assistant = AssistantBridge(
            svc,
            Assistant(config.ai, build_provider(config.ai), redis, PgMessageSource(svc), RoomReplySink(svc),
                      key_prefix=config.redis_prefix, registry=svc.metrics.registry),
        )
        svc.whatsapp = whatsapp = WhatsAppService(svc, http_session)
        supervisor.loop("wa-outbox", whatsapp.run_outbox)
        supervisor.loop("wa-media", whatsapp.media.run)
        supervisor.loop("desk-assign", lambda: run_desk_sweeper(svc))
        svc.campaigns = campaigns = CampaignSender(svc, http_session)
        campaigns.start()
        svc.extras["wa_sessions"] = whatsapp.linked = wa_sessions = WaSessionService(svc, whatsapp)
        supervisor.loop("wa-sessions", wa_sessions.run, backoff_max_s=max(1.0, config.wa_session_lease_s / 3))
        supervisor.loop("file-sweep", lambda: run_file_sweep(svc), backoff_max_s=sweep_interval_s(files))
        relay = _start_archive(svc, http_session)
        log.info("chat-server node %s ready", node_id)
        yield
    finally:
        if SERVICES in app and isinstance(app[SERVICES].extras.get("wa_sessions"), WaSessionService):
            await app[SERVICES].extras["wa_sessions"].close()  # before the loops: the clients stop first
        await supervisor.close()
        if relay is not None:
            await relay.close()
        if SERVICES in app:
            await app[SERVICES].batcher.close()
        if SERVICES in app:
            try:
                await asyncio.wait_for(app[SERVICES].presence.shutdown(), 3)
            except Exception as exc:
                log.warning("presence shutdown failed: %s", type(exc).__name__)
            await app[SIO].manager.close()  # publish what is queued (the offline presence included)
        await http_session.close()
        if files is not None:
            await files.store.close()
        await redis.aclose()
        await pool.close()


def _start_archive(svc: Services, session: aiohttp.ClientSession) -> ArchiveRelay | None:
    config = svc.config
    if config.archive_url:
        # chat-server reads archived history with a short-lived service token of its own
        svc.archive = ArchiveHistoryClient(session, config.archive_url, lambda: service_token(svc.issuer))
    if not config.kafka_bootstrap:
        return None
    relay = ArchiveRelay(svc.pool, config.kafka_bootstrap,
                         RelaySettings(hot_retention_s=config.hot_retention_s, interval_s=config.relay_interval_s,
                                       batch_size=config.relay_batch_size,
                                       topic=config.archive_topic, fault_pause=config.fault_pause_at),
                         svc.metrics.relay, svc.metrics.relay_abandoned)
    svc.supervisor.loop("archive-relay", relay.run_forever, backoff_max_s=30)
    return relay


def _start_presence_loops(svc: Services) -> None:
    interval = max(0.2, svc.config.presence_ttl_s / 3)

    async def heartbeat() -> None:
        while True:
            await svc.presence.heartbeat()
            await svc.presence.sweep()
            await asyncio.sleep(interval)

    svc.supervisor.loop("presence", heartbeat, backoff_max_s=interval)
