"""The Socket.IO namespace ``/``.

Connect with ``auth: {token}``; a bad token is refused at connect, and so is a socket past the
user's cap (``rate_limited``). A socket lives as long as its token: ``auth {token}`` renews it,
and ``actions/sessions.py`` ends it (``session:ended``) when the token expires or is revoked.
Every client event is
wrapped by ``_handler``: it resolves the connection, applies the per-connection event budget,
validates the payload with the event's model (``chatcore.protocol.CLIENT_EVENTS``; a refusal is
``invalid`` with ``details.field``), calls one action with the typed values and turns the
result or the ``ChatError`` into ``{ok: true, ...}`` / ``{ok: false, error: {code, message}}``.
Nothing a client sends can drop the connection or leak a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import socketio
from pydantic import ValidationError
from redis.exceptions import RedisError

from chatcore.errors import ChatError, Invalid, RateLimited, Unauthorized
from chatcore.events import TypingEvent
from chatcore.protocol import (
    CLIENT_EVENTS,
    AuthRenew,
    HistoryQuery,
    MessageDelete,
    MessageEdit,
    MessageReact,
    MessageSend,
    Payload,
    ReadMark,
    RoomRef,
    SyncQuery,
    TypingSet,
    invalid_payload,
)
from chatcore.types import DESK_MANAGER_ROLES, STAFF_ROLES

from ..actions import messages as msg_actions
from ..actions import reactions as reaction_actions
from ..actions import rooms as room_actions
from ..actions.auth import authenticate_claims, do_renew
from ..actions.conversations import queue_channel
from ..actions.notify import ADMIN_CHANNEL, DESK_CHANNEL, STAFF_CHANNEL, emit, room_channel, user_channel
from ..actions.sessions import SocketSessions, sessions_of
from ..context import Services
from ..storage import queues as queues_db
from ..storage import rooms as rdb
from ..storage import users as udb
from .event_costs import event_cost

log = logging.getLogger(__name__)

# the third argument is the event's payload model (chatcore.protocol), already validated
Handler = Callable[["Conn", str, Any], Awaitable[dict[str, Any] | None]]


@dataclass(slots=True)
class Conn:
    """Per-socket state, kept lean: the user and a local event budget."""

    user: udb.User
    tokens: float
    stamp: float = field(default_factory=time.monotonic)


def _refused(error: dict[str, Any]) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connect whose ``connect_error`` carries ``data: {code, message}``.

    With one argument python-socketio sends only ``message: str(arg)`` (a Python repr of the
    dict); the second argument becomes the packet's ``data``, which clients read the code from.
    """
    return socketio.exceptions.ConnectionRefusedError(error["message"], error)


class SocketTransport:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.sio = svc.sio
        self.conns: dict[str, Conn] = {}
        sessions = sessions_of(svc)
        self.sessions = sessions if sessions is not None else SocketSessions(svc)
        svc.presence.local_sockets = lambda: {sid: c.user.id for sid, c in self.conns.items()}
        self.budget = float(svc.config.limits.events_per_10s)
        self.refill_per_s = self.budget / 10.0
        self.sio.on("connect", self.on_connect)
        self.sio.on("disconnect", self.on_disconnect)
        table: dict[str, Handler] = {
            "room:join": self.room_join,
            "room:leave": self.room_leave,
            "message:send": self.message_send,
            "message:edit": self.message_edit,
            "message:delete": self.message_delete,
            "message:react": self.message_react,
            "typing": self.typing,
            "history": self.history,
            "sync": self.sync,
            "read": self.read,
            "auth": self.auth,
        }
        for event, fn in table.items():
            # KeyError at start for an event without a model: every event is in the document
            self.sio.on(event, self._handler(event, CLIENT_EVENTS[event].payload, fn))

    # --- connection lifecycle ---------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            user, claims = await authenticate_claims(self.svc, token)
            if user.kind != "human":
                raise _refused({"code": "forbidden", "message": "not a chat user"})
            await self.sessions.check_cap(user.id)
        except ChatError as exc:
            raise _refused(exc.to_dict()) from None
        except (TimeoutError, asyncpg.PostgresError, OSError):
            raise _refused({"code": "unavailable", "message": "try again shortly"}) from None
        # no await since check_cap: concurrent connects of one user on this node cannot both pass
        self.conns[sid] = Conn(user=user, tokens=self.budget)
        self.sessions.add(sid, claims)
        channels = [user_channel(user.id)] + [room_channel(r) for r in await rdb.room_ids_for_user(self.svc.pool, user.id)]
        if user.role in STAFF_ROLES:
            channels.append(STAFF_CHANNEL)
            channels += [DESK_CHANNEL] if user.role in DESK_MANAGER_ROLES else [
                queue_channel(q) for q in await queues_db.queue_ids_of(self.svc.pool, user.id)]
        if user.role == "admin":
            channels.append(ADMIN_CHANNEL)
        for ch in channels:
            await self.sio.enter_room(sid, ch)
        self.svc.metrics.connections.inc()
        # after the handler returns, so the CONNECT packet goes out before any presence event
        self.svc.supervisor.spawn(f"presence-connect:{sid}", self._mark_online(user.id, sid))

    async def _mark_online(self, user_id: int, sid: str) -> None:
        try:
            await self.svc.presence.connected(user_id, sid)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("presence unavailable on connect: %s", type(exc).__name__)

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        self.sessions.remove(sid)
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        self.svc.metrics.connections.dec()
        try:
            await self.svc.presence.disconnected(conn.user.id, sid)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("presence unavailable on disconnect: %s", type(exc).__name__)

    # --- the ack wrapper --------------------------------------------------------------------

    def _take_token(self, conn: Conn, cost: float = 1.0) -> None:
        """Charge ``cost`` tokens (``event_costs``) or refuse the event, charging nothing."""
        now = time.monotonic()
        conn.tokens = min(self.budget, conn.tokens + (now - conn.stamp) * self.refill_per_s)
        conn.stamp = now
        if conn.tokens < cost:
            raise RateLimited("too many events", retry_after=(cost - conn.tokens) / self.refill_per_s)
        conn.tokens -= cost

    def _handler(self, event: str, model: type[Payload], fn: Handler) -> Callable[..., Awaitable[dict[str, Any]]]:
        metrics = self.svc.metrics
        ok = metrics.events.labels(event, "ok")  # bound once: labels() costs several times inc()
        validate = model.model_validate

        async def wrapped(sid: str, *args: Any) -> dict[str, Any]:
            try:
                conn = self.conns.get(sid)
                if conn is None:
                    raise Unauthorized("not connected")
                data = args[0] if args else None
                self._take_token(conn, event_cost(event, data, self.budget))
                if not isinstance(data, dict):
                    raise Invalid("payload must be an object")
                try:
                    payload = validate(data)  # a few microseconds for these small models
                except ValidationError as exc:
                    raise invalid_payload(exc) from None
                result = await fn(conn, sid, payload)
                ok.inc()
                return {"ok": True, **(result or {})}
            except ChatError as exc:
                metrics.events.labels(event, exc.code).inc()
                metrics.errors.labels(exc.code).inc()
                return {"ok": False, "error": exc.to_dict()}
            except (TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, RedisError, OSError) as exc:
                log.warning("%s: dependency unavailable: %s", event, type(exc).__name__)
                metrics.errors.labels("unavailable").inc()
                return {"ok": False, "error": {"code": "unavailable", "message": "service temporarily unavailable"}}
            except Exception:
                log.exception("%s failed", event)
                metrics.errors.labels("internal").inc()
                return {"ok": False, "error": {"code": "internal", "message": "internal error"}}

        return wrapped

    # --- events ---------------------------------------------------------------------------

    async def room_join(self, conn: Conn, sid: str, p: RoomRef) -> dict[str, Any]:
        return await room_actions.do_join_room(self.svc, conn.user, p.room_id, sid)

    async def room_leave(self, conn: Conn, sid: str, p: RoomRef) -> dict[str, Any]:
        await room_actions.do_leave_room(self.svc, conn.user, p.room_id)
        return {}

    async def message_send(self, conn: Conn, sid: str, p: MessageSend) -> dict[str, Any]:
        _, wire = await msg_actions.do_send_message(
            self.svc, conn.user, p.room_id, p.body, p.client_id, p.reply_to, p.attachments
        )
        return {"message": wire}

    async def message_edit(self, conn: Conn, sid: str, p: MessageEdit) -> dict[str, Any]:
        msg = await msg_actions.do_edit_message(self.svc, conn.user, p.id, p.body)
        return {"message": msg.to_wire()}

    async def message_delete(self, conn: Conn, sid: str, p: MessageDelete) -> dict[str, Any]:
        msg = await msg_actions.do_delete_message(self.svc, conn.user, p.id)
        return {"message": msg.to_wire()}

    async def message_react(self, conn: Conn, sid: str, p: MessageReact) -> dict[str, Any]:
        msg, mine = await reaction_actions.do_react(self.svc, conn.user, p.id, p.emoji, p.on)
        return {"message": msg.to_wire(), "mine": mine}

    async def typing(self, conn: Conn, sid: str, p: TypingSet) -> dict[str, Any]:
        room = await room_actions.access_room_by_id(self.svc, conn.user, p.room_id, write=True)
        if await self.svc.typing.should_broadcast(room.id, conn.user.id, p.typing):
            event = TypingEvent(room.id, {"id": conn.user.id, "display_name": conn.user.display_name}, p.typing)
            payload = {**event.to_wire(), "ttl_ms": int(self.svc.config.typing_ttl_s * 1000)}
            await emit(self.svc, "typing", payload, to=room_channel(room.id), skip_sid=sid)
        return {}

    async def history(self, conn: Conn, sid: str, p: HistoryQuery) -> dict[str, Any]:
        return await msg_actions.do_history(self.svc, conn.user, p.room_id, p.before_seq, p.limit)

    async def sync(self, conn: Conn, sid: str, p: SyncQuery) -> dict[str, Any]:
        return await msg_actions.do_sync(self.svc, conn.user, p.cursors, p.changed_since)

    async def auth(self, conn: Conn, sid: str, p: AuthRenew) -> dict[str, Any]:
        conn.user, claims = await do_renew(self.svc, conn.user, sid, p.token)
        return {"expires_at": claims.expires_at}

    async def read(self, conn: Conn, sid: str, p: ReadMark) -> dict[str, Any]:
        cursor, mentions = await room_actions.do_mark_read(self.svc, conn.user, p.room_id, p.seq)
        return {"last_read_seq": cursor, "mentions": mentions}
