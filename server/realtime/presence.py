"""Presence across nodes and tabs.

A user is online while any socket of theirs is connected on any live node.

Redis layout (all under the configured prefix):
- ``presence:sockets:{user}``  hash sid -> node id: the user's open sockets everywhere
- ``presence:node:{node}``     string with a TTL, refreshed by the node's heartbeat
- ``presence:nodes``           set of node ids that may hold sockets
- ``presence:node_sockets:{node}`` hash sid -> user id: what to clean when the node dies

Every node sweeps: a node in ``presence:nodes`` whose heartbeat key expired is dead; its sockets
are removed and users left with no socket go offline. A node that dies therefore takes its
users offline within ``ttl_s`` + one sweep interval. A node that finds itself missing from
``presence:nodes`` (Redis restarted empty, or it was swept after missed heartbeats) registers its
open sockets again; a node starting under a node id that a crashed process used first removes
that process's sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

OnChange = Callable[[int, str, datetime], Awaitable[None]]  # (user_id, "online"|"offline", at)


class Presence:
    def __init__(self, redis: aioredis.Redis, prefix: str, node_id: str, ttl_s: float, on_change: OnChange) -> None:
        self.redis = redis
        self.p = prefix + "presence:"
        self.node_id = node_id
        self.ttl_ms = int(ttl_s * 1000)
        self.on_change = on_change
        # sid -> user id of this node's open sockets, set by the Socket.IO transport
        self.local_sockets: Callable[[], dict[str, int]] | None = None
        self._cleared = False  # sockets of a previous process with this node id are removed

    def _sockets(self, user_id: int) -> str:
        return f"{self.p}sockets:{user_id}"

    async def connected(self, user_id: int, sid: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._sockets(user_id), sid, self.node_id)
        pipe.hlen(self._sockets(user_id))
        pipe.hset(f"{self.p}node_sockets:{self.node_id}", sid, str(user_id))
        _, count, _ = await pipe.execute()
        if int(count) == 1:
            await self.on_change(user_id, "online", datetime.now(UTC))

    async def disconnected(self, user_id: int, sid: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self._sockets(user_id), sid)
        pipe.hlen(self._sockets(user_id))
        pipe.hdel(f"{self.p}node_sockets:{self.node_id}", sid)
        removed, count, _ = await pipe.execute()
        if int(removed) and int(count) == 0:
            await self.on_change(user_id, "offline", datetime.now(UTC))

    async def online(self, user_ids: list[int]) -> dict[int, bool]:
        if not user_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for uid in user_ids:
            pipe.hlen(self._sockets(uid))
        counts = await pipe.execute()
        return {uid: int(c) > 0 for uid, c in zip(user_ids, counts, strict=True)}

    async def sids(self, user_id: int) -> list[str]:
        return [s.decode() if isinstance(s, bytes) else s for s in await self.redis.hkeys(self._sockets(user_id))]

    async def heartbeat(self) -> None:
        if not self._cleared:
            await self.clear_previous_run()
            self._cleared = True
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{self.p}node:{self.node_id}", "1", px=self.ttl_ms)
        pipe.sadd(f"{self.p}nodes", self.node_id)
        _, added = await pipe.execute()
        if int(added) and self.local_sockets is not None:
            # this node was missing from the set: Redis lost its data (a restart) or another node
            # swept us after missed heartbeats. Our sockets are still open: register them again
            await self._restore(self.local_sockets())

    async def _restore(self, local: dict[str, int]) -> None:
        for sid, user_id in local.items():
            await self.connected(user_id, sid)  # "online" again for users that lost every socket
        assert self.local_sockets is not None
        now = self.local_sockets()
        for sid, user_id in local.items():
            if sid not in now:  # closed while we restored it: do not leave a ghost behind
                await self.disconnected(user_id, sid)

    async def sweep(self) -> int:
        """Remove the sockets of dead nodes; returns how many users went offline."""
        went_offline = 0
        for raw in await self.redis.smembers(f"{self.p}nodes"):
            node = raw.decode() if isinstance(raw, bytes) else raw
            if node == self.node_id or await self.redis.exists(f"{self.p}node:{node}"):
                continue  # alive (a node never sweeps itself: a late heartbeat is not a death)
            # one sweeper per dead node at a time
            if not await self.redis.set(f"{self.p}sweep:{node}", self.node_id, nx=True, px=self.ttl_ms):
                continue
            went_offline += await self._sweep_node(node)
            await self.redis.srem(f"{self.p}nodes", node)
        return went_offline

    async def _sweep_node(self, node: str, keep: Collection[str] = ()) -> int:
        """Remove ``node``'s sockets (except ``keep``); users left with none go offline."""
        went_offline = 0
        entries = await self.redis.hgetall(f"{self.p}node_sockets:{node}")
        swept = []
        for sid_raw, uid_raw in entries.items():
            sid = sid_raw.decode() if isinstance(sid_raw, bytes) else sid_raw
            if sid in keep:
                continue
            swept.append(sid)
            uid = int(uid_raw)
            pipe = self.redis.pipeline(transaction=True)
            pipe.hdel(self._sockets(uid), sid)
            pipe.hlen(self._sockets(uid))
            removed, count = await pipe.execute()
            if int(removed) and int(count) == 0:
                went_offline += 1
                await self.on_change(uid, "offline", datetime.now(UTC))
        if swept:
            await self.redis.hdel(f"{self.p}node_sockets:{node}", *swept)
            log.info("presence: swept node %s (%d sockets)", node, len(swept))
        return went_offline

    async def clear_previous_run(self) -> None:
        """Remove sockets a previous process with this node id left behind (a crash, then a
        restart under the same ``CHAT_NODE_ID`` before the TTL ran out: nobody swept them)."""
        await self._sweep_node(self.node_id, keep=set((self.local_sockets or dict)()))

    async def shutdown(self) -> None:
        """Graceful stop: remove this node's sockets now instead of waiting for the TTL."""
        await self.redis.delete(f"{self.p}node:{self.node_id}")
        own, self.node_id = self.node_id, ""  # let sweep() treat this node like any dead one
        try:
            await self.sweep()
        finally:
            self.node_id = own
