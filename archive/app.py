"""``create_app(config)``: the composition root of chat-archive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from chatcore.background import Supervisor
from chatcore.files import FileUrlSigner, read_secret
from chatcore.tokens import TokenVerifier

from .access import ChatServerAccess
from .api import (
    ACCESS,
    LIMITER,
    METRICS,
    METRICS_TOKEN,
    SIGNER,
    STATUS,
    STORE,
    VERIFIER,
    ArchiveMetrics,
    add_routes,
    errors,
)
from .config import ArchiveConfig
from .consumer import ArchiveConsumer
from .ratelimit import REDIS_TIMEOUT_S, QueryLimiter
from .storage import OUTCOMES, ArchiveStore

log = logging.getLogger(__name__)

CONFIG = web.AppKey("archive_config", ArchiveConfig)
CONSUMER = web.AppKey("consumer", ArchiveConsumer)
MONGO_LISTENERS: web.AppKey[tuple[CommandListener, ...]] = web.AppKey("mongo_listeners")


def create_app(config: ArchiveConfig, mongo_listeners: Sequence[CommandListener] = ()) -> web.Application:
    """``mongo_listeners``: PyMongo command monitoring on both of the process's store clients."""
    app = web.Application(middlewares=[errors], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[MONGO_LISTENERS] = tuple(mongo_listeners)
    app[VERIFIER] = TokenVerifier(config.jwt_public_key_file.read_bytes())
    app[METRICS] = ArchiveMetrics()
    app[STATUS] = {"ttl_days": config.ttl_days, "consumer_alive": False, "retention_runs": 0}
    app[METRICS_TOKEN] = config.metrics_token or ""
    app[LIMITER] = QueryLimiter({"search": config.searches_per_minute, "export": config.exports_per_minute},
                                redis=_limits_redis(config), prefix=config.redis_prefix)
    if config.file_url_secret_file is not None:
        # the same secret as chat-server's, so the archive API hands out URLs chat-server serves
        app[SIGNER] = FileUrlSigner(read_secret(config.file_url_secret_file), config.file_url_ttl_s)
    add_routes(app, config.web_dist)
    app.cleanup_ctx.append(_resources)
    return app


def _limits_redis(config: ArchiveConfig) -> aioredis.Redis | None:
    """The Redis holding the rate limits' buckets, if configured; it connects on first use, each
    call bounded (the limiter counts in the process while Redis does not answer)."""
    if not config.redis_url:
        return None
    return aioredis.Redis.from_url(config.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                                   socket_connect_timeout=REDIS_TIMEOUT_S)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    ms = int(config.timeout_s * 1000)
    registered = app[MONGO_LISTENERS]
    listeners = list(registered)
    client: AsyncMongoClient = AsyncMongoClient(config.mongo_url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                                socketTimeoutMS=ms, timeoutMS=ms, event_listeners=listeners)
    # the query API's client: no client-wide timeoutMS, which would overwrite each query's own
    # maxTimeMS (storage.py); every step still has chat-archive's timeout on the client's side
    reader: AsyncMongoClient = AsyncMongoClient(config.mongo_url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                                socketTimeoutMS=ms, waitQueueTimeoutMS=ms, event_listeners=listeners)
    store = ArchiveStore(client, config.mongo_db, reader, config.query_time_limit_ms)
    supervisor = Supervisor("chat-archive")
    session = aiohttp.ClientSession()
    app[ACCESS] = ChatServerAccess(session, config.chat_server_url.split(","), config.chat_server_timeout_s)
    try:
        await store.setup(config.ttl_days)
        app[STORE] = store
        consumer = ArchiveConsumer(config, store)
        app[CONSUMER] = consumer
        metrics, status = app[METRICS], app[STATUS]

        async def consume() -> None:
            await consumer.run()

        async def observe() -> None:
            while True:
                status["consumer_alive"] = consumer.alive
                metrics.stored.set(consumer.stored)
                for outcome in OUTCOMES:
                    metrics.writes.labels(outcome).set(consumer.outcomes.get(outcome, 0))
                metrics.dead.set(consumer.dead_letters)
                metrics.stalls.set(consumer.stalls)
                await asyncio.sleep(1)

        supervisor.loop("archive-consumer", consume, backoff_max_s=10)
        supervisor.loop("archive-status", observe)
        if config.ttl_days is not None and not store.has_ttl:
            async def retention() -> None:
                while True:
                    deleted = await store.delete_older_than(config.ttl_days or 0)
                    metrics.retention_deleted.inc(deleted)
                    status["retention_runs"] += 1
                    if deleted:
                        log.info("archive retention: deleted %d messages", deleted)
                    await asyncio.sleep(config.retention_interval_s)

            supervisor.loop("archive-retention", retention, backoff_max_s=300)
        yield
    finally:
        await supervisor.close()
        await app[LIMITER].close()
        await session.close()
        await reader.close()
        await client.close()
