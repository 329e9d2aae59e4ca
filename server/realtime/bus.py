"""The cross-node bus: python-socketio's Redis manager with batched publishing and cheap skips.

The stock ``AsyncRedisManager`` publishes every event with its own Redis round trip, awaited by
the emitter (a sender's ack waited on it), and every node decodes every published message in
full, its own included, before it looks at who sent it. ``RedisBus`` keeps the channel, the
message format inside it and the manager's semantics, and changes three things:

- **Publishing is queued and batched.** ``_publish`` appends the message to a queue and returns;
  one publisher task sends what is queued as few ``PUBLISH`` commands (all the events queued
  since its last round, up to ``PUBLISH_BATCH`` events or ``PUBLISH_BYTES`` each) in one
  pipeline, in queue order, so the events of a room stay in order across nodes. One ``PUBLISH``
  for many events matters more than the one round trip: every node, the publisher included,
  receives and parses each published Redis message, so a ``PUBLISH`` per event cost every node a
  RESP parse per event. Each round is bounded by a timeout; a round that fails is retried once on
  a fresh connection (the same frames, in the same order), then dropped and counted (clients
  catch up through ``sync`` or gap detection, as they do when the stock manager gives up). The
  queue is bounded too, dropping the oldest when Redis is away for long.
- **A header in front of the JSON** says who sent it and to which room. One event: ``<host id>
  US <room> US <json>`` (US = 0x1F); several: ``<host id> RS <room> US <json> RS <room> US
  <json> ...`` (RS = 0x1E). JSON never holds a raw control character, and a room whose name holds
  one is sent with an empty room (always decoded), so the separators are unambiguous. A node drops
  its own messages, and the events to rooms in which it has no sockets, by comparing bytes,
  without decoding the JSON. Messages without the header (from another publisher) are decoded as
  before.
- Events published by this node are delivered locally by the emitter (``FanoutRedisManager``),
  as before; only the other nodes act on the bus copy.
- **Pushed messages are taken as received** (``_as_received``): redis-py's default RESP3 push
  handler builds a debug log line holding the repr of each whole message, even with debug
  logging off (and logs the contents with its logger at debug).
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

SEP = b"\x1f"  # between the host id, the room and the JSON of one event
BATCH_SEP = b"\x1e"  # in front of each event of a message that carries several
PUBLISH_BATCH = 512  # events per PUBLISH at most
PUBLISH_BYTES = 256 * 1024  # bytes per PUBLISH at most (past one event): Redis buffers each
# published message for every subscriber, and cuts a subscriber off past 32 MB by default


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
        self._host_json = b'"' + self._host + b'"'  # a uuid4's hex: nothing to escape
        self.on_dropped: Callable[[int], None] = lambda n: None  # e.g. a metric
        self.published = 0
        self.subscriptions = 0  # successful (re)subscriptions of the listener

    # --- publishing ---------------------------------------------------------------------------

    async def _publish(self, data: Any) -> None:
        room = data.get("room") if isinstance(data, dict) and data.get("method") == "emit" else None
        self._queue_publish(room, self.json.dumps(data).encode())

    def _queue_publish(self, room: Any, message: bytes) -> None:
        """Queue ``message`` (the JSON of a bus message; ``room``: its emit's room) for the publisher."""
        key = room.encode() if isinstance(room, str) and "\x1f" not in room and "\x1e" not in room else b""
        self._queue.append(key + SEP + message)
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

    def _messages(self, batch: list[bytes]) -> list[bytes]:
        """The events of ``batch`` (``<room> US <json>`` each) as few Redis messages, in order."""
        out: list[bytes] = []
        parts: list[bytes] = []
        size = 0
        for event in batch:
            if parts and size + len(event) > PUBLISH_BYTES:
                out.append(self._message(parts))
                parts, size = [], 0
            parts.append(event)
            size += len(event) + 1
        if parts:
            out.append(self._message(parts))
        return out

    def _message(self, parts: list[bytes]) -> bytes:
        if len(parts) == 1:
            return self._host + SEP + parts[0]
        return self._host + BATCH_SEP + BATCH_SEP.join(parts)

    async def _send(self, batch: list[bytes]) -> bool:
        try:
            async with asyncio.timeout(self.publish_timeout_s):
                if not self.connected:
                    self._redis_connect()
                messages = self._messages(batch)
                if len(messages) == 1:
                    await self.redis.publish(self.channel, messages[0])
                else:
                    pipe = self.redis.pipeline(transaction=False)
                    for message in messages:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("bus: publish failed: %s", type(exc).__name__)
            self.connected = False
            return False

    async def close(self) -> None:
        """Send what is queued (bounded), then end the publisher and the subscription: python-socketio
        starts the listener (``initialize``) and never stops it, so a node stopped in a process
        that lives on (the tests' in-process nodes) kept receiving every node's events, and kept
        resubscribing, once a second, after its Redis was gone."""
        await self.flush()
        tasks = [t for t in (self._publisher, getattr(self, "thread", None)) if isinstance(t, asyncio.Task)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2)

    # --- receiving ----------------------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """Messages on the channel, forever: resubscribes on a fresh connection after any
        failure, waiting ``resubscribe_min_s`` doubling up to ``resubscribe_max_s``."""
        delay = self.resubscribe_min_s
        while True:
            client = self._get_redis_module().Redis.from_url(self.redis_url, **self.redis_options)
            pubsub = client.pubsub(ignore_subscribe_messages=True, push_handler_func=_as_received)
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
        own = self._host
        n = len(own)  # every node's host id has this length (a uuid4's hex)
        async for message in self._redis_listen_with_retries():
            if message.get("type") != "message" or message.get("channel") != channel:
                continue
            data = message.get("data")
            if not isinstance(data, bytes):
                continue
            mark = data[n:n + 1]
            if mark not in (SEP, BATCH_SEP) or SEP in data[:n] or BATCH_SEP in data[:n]:
                yield data  # not ours: the stock format
                continue
            if data.startswith(own):
                continue  # delivered locally when it was emitted
            events = [data[n + 1:]] if mark == SEP else data[n + 1:].split(BATCH_SEP)
            for event in events:
                key, _, body = event.partition(SEP)
                if key and not self._has_local_room(key.decode()):
                    continue
                yield body

    def _has_local_room(self, room: str) -> bool:
        return any(room in rooms for rooms in self.rooms.values())


async def _as_received(response: Any) -> Any:
    """The subscription's handler of RESP3 pushes: each message as received. redis-py's default
    logs every pushed message at debug level, ``"Push response: " + str(response)``, and builds
    that string (the repr of the whole message: every event of a published batch) before the
    logger looks at its level, for every message on every node; with its ``push_response``
    logger at debug, the messages' contents (message text) go to the log."""
    return response


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
