"""The cross-node bus: python-socketio's Redis manager with batched publishing and cheap skips.

The stock ``AsyncRedisManager`` publishes every event with its own Redis round trip, awaited by
the emitter (a sender's ack waited on it), and every node decodes every published message in
full, its own included, before it looks at who sent it. ``RedisBus`` keeps the channel, the
message format inside it and the manager's semantics, and changes three things:

- **Publishing is queued and batched.** ``_publish`` appends the message to a queue and returns;
  one publisher task sends what is queued in one pipeline (one round trip for many events), in
  queue order, so the events of a room stay in order across nodes. Each round is bounded by a
  timeout; a round that fails is retried once on a fresh connection, then dropped and counted
  (clients catch up through ``sync`` or gap detection, as they do when the stock manager gives up).
  The queue is bounded too, dropping the oldest when Redis is away for long.
- **A header in front of the JSON** says who sent it and to which room: ``<host id> US <room> US
  <json>`` (US = 0x1F). A node drops its own messages, and emits to a room in which it has no
  sockets, by comparing bytes, without decoding the JSON. Messages without the header (from
  another publisher) are decoded as before.
- Events published by this node are delivered locally by the emitter (``FanoutRedisManager``),
  as before; only the other nodes act on the bus copy.
- **The subscription is ours.** The stock listener retries a lost subscription after 1, 2, 4, …
  up to 60 s, so after a long Redis outage fan-out between nodes could stay off for a minute
  after Redis was back. ``_redis_listen_with_retries`` here subscribes on a connection of its
  own and retries every ``resubscribe_max_s`` at most, so fan-out resumes within that (plus a
  connect) of Redis returning. Events published while the subscription was down are lost to
  the other nodes; clients get them through ``sync`` (or a ``seq`` gap), as the protocol says.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import socketio

log = logging.getLogger(__name__)

SEP = b"\x1f"
PUBLISH_BATCH = 512


class RedisBus(socketio.AsyncRedisManager):
    publish_timeout_s = 2.0
    max_queued = 20_000
    # first and longest wait between subscription attempts while Redis is away: a resubscribe
    # costs one connect refused, and fan-out must resume within seconds of Redis returning
    resubscribe_min_s = 0.1
    resubscribe_max_s = 1.0
    subscribe_timeout_s = 5.0
    connected: bool
    redis: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: deque[bytes] = deque()
        self._wake: asyncio.Event | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None  # set when the queue has been emptied
        self._sending = False
        self._host = self.host_id.encode()
        self.on_dropped: Callable[[int], None] = lambda n: None  # e.g. a metric
        self.published = 0
        self.subscriptions = 0  # successful (re)subscriptions of the listener

    # --- publishing ---------------------------------------------------------------------------

    async def _publish(self, data: Any) -> None:
        room = data.get("room") if isinstance(data, dict) and data.get("method") == "emit" else None
        key = room.encode() if isinstance(room, str) and "\x1f" not in room else b""
        self._queue.append(self._host + SEP + key + SEP + self.json.dumps(data).encode())
        if len(self._queue) > self.max_queued:
            self._queue.popleft()
            self.on_dropped(1)
        if self._publisher is None or self._publisher.done():
            self._wake = asyncio.Event()
            self._publisher = asyncio.create_task(self._publish_loop(), name="bus-publisher")
        assert self._wake is not None
        self._wake.set()

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until what is queued now has been sent (or dropped); bounded."""
        if not (self._queue or self._sending) or self._publisher is None or self._publisher.done():
            return
        self._drained = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            pass

    async def _publish_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._sending = True  # a batch taken off the queue is still "to be sent" for flush
            try:
                while self._queue:
                    n = min(len(self._queue), PUBLISH_BATCH)
                    batch = [self._queue.popleft() for _ in range(n)]
                    if not await self._send(batch) and not await self._send(batch):
                        log.warning("bus: %d event(s) not published (Redis unavailable)", n)
                        self.on_dropped(n)
                        await asyncio.sleep(0.2)  # do not spin while Redis is away
                    else:
                        self.published += n
            finally:
                self._sending = False
            if self._drained is not None:
                self._drained.set()

    async def _send(self, batch: list[bytes]) -> bool:
        try:
            async with asyncio.timeout(self.publish_timeout_s):
                if not self.connected:
                    self._redis_connect()
                pipe = self.redis.pipeline(transaction=False)
                for frame in batch:
                    pipe.publish(self.channel, frame)
                await pipe.execute()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("bus: publish failed: %s", type(exc).__name__)
            self.connected = False
            return False

    async def close(self) -> None:
        await self.flush()
        if self._publisher is not None:
            self._publisher.cancel()

    # --- receiving ----------------------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """Messages on the channel, forever: resubscribes on a fresh connection after any
        failure, waiting ``resubscribe_min_s`` doubling up to ``resubscribe_max_s``."""
        delay = self.resubscribe_min_s
        while True:
            client = self._get_redis_module().Redis.from_url(self.redis_url, **self.redis_options)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.subscribe_timeout_s):
                    await pubsub.subscribe(self.channel)
                self.subscriptions += 1
                if self.subscriptions > 1:
                    log.info("bus: subscribed again to %s", self.channel)
                delay = self.resubscribe_min_s
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus: subscription lost (%s); retrying in %.1f s", type(exc).__name__, delay)
            finally:
                await _close_quietly(pubsub, client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.resubscribe_max_s)

    async def _listen(self) -> AsyncIterator[Any]:
        channel = self.channel.encode()
        own = self._host + SEP
        async for message in self._redis_listen_with_retries():
            if message.get("type") != "message" or message.get("channel") != channel:
                continue
            data = message.get("data")
            if not isinstance(data, bytes):
                continue
            if data.startswith(own):
                continue  # delivered locally when it was emitted
            head, sep, rest = data.partition(SEP)
            if not sep or len(head) != len(self._host):
                yield data  # not ours: the stock format
                continue
            key, _, body = rest.partition(SEP)
            if key and not self._has_local_room(key.decode()):
                continue
            yield body

    def _has_local_room(self, room: str) -> bool:
        return any(room in rooms for rooms in self.rooms.values())


async def _close_quietly(pubsub: Any, client: Any) -> None:
    """Close a subscription and its client; a connection Redis already dropped may fail to."""
    for close in (pubsub.aclose, client.aclose):
        try:
            async with asyncio.timeout(1.0):
                await close()
        except asyncio.CancelledError:
            raise
        except Exception:
            pass
