"""WhatsApp Web (linked-device) sessions: admin actions, the per-node lease, the running clients.

A session (``wa_sessions``) is a phone linked to us as a companion device
(``whatsapp_bridge/linked_device.py``). Its conversations are ordinary WhatsApp conversations
(``wa_contacts.channel = 'linked_device'``): the outbox, the assistant and the desk reach them
through ``WhatsAppService.channel_for``, which asks ``channel`` here.

Exactly one node runs a session: every node's ``wa-sessions`` loop renews the leases it holds
and claims runnable sessions whose lease expired, every third of ``WA_SESSION_LEASE_S``. A claim
bumps the session's fencing token; state writes of a runner carry its token, so a node that
was paused past its lease (and lost the session to another) writes nothing and stops its client
at its next renewal. The device keys are in PostgreSQL (one whatsmeow schema per session), so
the node that takes over resumes without a new QR code.

A runner connects, and after a failure (no network, WhatsApp refusing) waits with capped
exponential backoff and connects again, logging one line per state change; once connected,
whatsmeow reconnects by itself after a drop. Unscanned QR codes end after ``QR_CODES_MAX``
(status ``qr_expired``), a phone that unlinks us ends the session (``logged_out``); both wait
for an admin (``POST .../start``, or delete). Sends of a conversation whose session runs on
another node are left queued (``session_elsewhere``) for the holder's sweep here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from chatcore.errors import Conflict, Invalid, NotFound
from whatsapp_bridge.channel import Channel
from whatsapp_bridge.errors import CloudApiError
from whatsapp_bridge.linked_device import (
    LinkedDeviceChannel,
    LinkedDeviceClient,
    LinkedDeviceError,
    SessionState,
    store_dsn,
)
from whatsapp_bridge.models import InboundMessage, StatusUpdate

from ..storage import messages as mdb
from ..storage import wa_sessions as sdb
from ..storage import whatsapp as wadb
from . import audit
from .notify import ADMIN_CHANNEL, emit

if TYPE_CHECKING:
    from ..context import Services
    from .whatsapp import WhatsAppService

log = logging.getLogger(__name__)

RETRY_CAP_S = 300.0
CLAIM_BATCH = 10
# neonize parks one thread of the loop's default executor per running session (its Go loop runs
# in asyncio.to_thread until stopped), the executor password hashing and file writes use too: a
# node runs at most this many sessions, and its default executor gets as many threads more
SESSIONS_PER_NODE = 16
DEFERRED_BATCH = 50
CREATED, PAIRING, LOGGED_OUT, DELETED, STARTED = (
    "wa_session.create", "wa_session.pairing_code", "wa_session.logout", "wa_session.delete", "wa_session.start")
DOWN_STATES = ("disconnected", "logged_out", "qr_expired")


class LinkedSessions(Protocol):
    """What ``WhatsAppService`` asks of the sessions."""

    async def channel(self, session_id: int | None) -> Channel: ...

    def any_connected(self) -> Channel | None: ...


def linked_device_available() -> bool:
    """Whether this node can run sessions (the ``whatsapp-web`` extra is installed)."""
    return importlib.util.find_spec("neonize") is not None


def retry_delay(attempt: int, base_s: float, rand: float | None = None) -> float:
    """Seconds before connect attempt ``attempt + 1``: doubling, capped, with half of it jitter
    (sessions that lost the network together do not come back together)."""
    step = min(RETRY_CAP_S, base_s * 2.0**attempt)
    return step / 2 + (random.random() if rand is None else rand) * step / 2


@dataclass
class Runner:
    session_id: int
    token: int
    client: LinkedDeviceClient
    task: asyncio.Task[None] | None = None
    status: str = "new"
    attempts: int = 0
    last_qr: str | None = None
    stopping: bool = field(default=False)  # stopped by this node (lease lost, admin action, shutdown)
    ended: bool = field(default=False)  # ended by itself: QR codes ran out, logged out, token stale
    # neonize runs each event handler as its own task: one state change at a time, in arrival order
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SessionEvents:
    """The event sink of one runner: state into the row (fenced), inbound into conversations."""

    def __init__(self, service: WaSessionService, runner_ref: list[Runner]) -> None:
        self.service = service
        self.runner_ref = runner_ref

    async def on_state(self, state: SessionState) -> None:
        await self.service.apply_state(self.runner_ref[0], state)

    async def on_inbound(self, message: InboundMessage) -> None:
        await self.service.whatsapp.ingest_linked(self.runner_ref[0].session_id, message)

    async def on_from_phone(self, message: InboundMessage) -> None:
        await self.service.whatsapp.ingest_from_phone(self.runner_ref[0].session_id, message)

    async def on_statuses(self, statuses: list[StatusUpdate]) -> None:
        await self.service.whatsapp.ingest_statuses(statuses)


class WaSessionService:
    def __init__(self, svc: Services, whatsapp: WhatsAppService) -> None:
        self.svc = svc
        self.whatsapp = whatsapp
        self.held: dict[int, Runner] = {}
        self.available = linked_device_available()
        self._wake = asyncio.Event()
        self._executor_sized = False
        from prometheus_client import Gauge

        self.gauge = Gauge("chat_wa_sessions", "Linked-device sessions by state (all nodes, from PostgreSQL)",
                           ["state"], registry=svc.metrics.registry)

    # --- the channel seam -----------------------------------------------------------------------

    async def channel(self, session_id: int | None) -> Channel:
        """The channel of a session held here. Otherwise a ``CloudApiError``: retryable
        (503) while the session runs elsewhere or is coming back, final when it ended."""
        runner = self.held.get(session_id) if session_id is not None else None
        if runner is not None and runner.status not in ("logged_out", "qr_expired"):
            return LinkedDeviceChannel(runner.client)
        session = None if session_id is None else await sdb.get(self.svc.pool, session_id)
        if session is None:
            raise CloudApiError(404, None, "the linked session was deleted", state="session_removed")
        if session.status == "logged_out":
            raise CloudApiError(400, None, "the phone unlinked this session; link it again", state="logged_out")
        if session.status in ("qr_expired", "new", "qr", "pairing_code") and session.jid is None:
            raise CloudApiError(400, None, "the session is not linked to a phone", state="session_not_linked")
        # another node holds it (or will): left queued for the holder's sweep
        raise CloudApiError(503, None, "the linked session runs on another node", state="session_elsewhere")

    def any_connected(self) -> Channel | None:
        for runner in self.held.values():
            if runner.status == "connected":
                return LinkedDeviceChannel(runner.client)
        return None

    # --- admin actions --------------------------------------------------------------------------

    async def create(self, actor: audit.Actor, name: str) -> sdb.Session:
        """A new session; a node with the whatsapp-web extra claims and starts it (this one,
        unless it lacks the extra: the session then waits, ``new``, for one that has it)."""
        if not self.available:
            log.warning("linked session created on a node without the whatsapp-web extra: another node must run it")
        async with self.svc.pool.acquire() as conn, conn.transaction():
            session = await sdb.insert(conn, name)
            await sdb.create_store(conn, session.id)
            await audit.record(conn, actor, CREATED, "wa_session", session.id, {"name": name})
        log.info("linked session %s created", session.id)
        self._wake.set()
        return session

    async def get(self, session_id: int) -> sdb.Session:
        session = await sdb.get(self.svc.pool, session_id)
        if session is None:
            raise NotFound("session not found")
        return session

    async def pairing_code(self, actor: audit.Actor, session_id: int, phone: str) -> str:
        """``phone`` is checked (``check_phone``) by the route: a bad number never gets here."""
        session = await self.get(session_id)
        if session.status == "connected":
            raise Conflict("the session is already linked; log out first")
        # 409 (the session's state does not allow it now), not 503: the session's own state is
        # shown on it (status, last_error), and the admin retries once it shows a QR code
        runner = self.held.get(session_id)
        if runner is None:
            raise Conflict(f"the session runs on another node ({session.lease_node or 'none yet'}); "
                           "ask there or try again shortly")
        try:
            code = await runner.client.pair_phone(phone.lstrip("+"))
        except LinkedDeviceError as exc:
            raise Conflict(f"WhatsApp did not give a pairing code: {exc.reason}") from None
        async with self.svc.pool.acquire() as conn, conn.transaction():
            await sdb.set_state(conn, session_id, runner.token, "pairing_code", last_error=None)
            await audit.record(conn, actor, PAIRING, "wa_session", session_id, {"phone": phone})
        runner.status = "pairing_code"
        await self._announce(session_id, SessionState("pairing_code", pairing_code=code), "pairing_code")
        return code

    async def logout(self, actor: audit.Actor, session_id: int) -> sdb.Session:
        await self.get(session_id)
        runner = self.held.get(session_id)
        if runner is not None:
            try:
                await runner.client.logout()
            except LinkedDeviceError as exc:
                # the keys are dropped below whatever WhatsApp said: the phone lists the device
                # until it next tries to reach us, then removes it
                log.warning("linked session %s: logout not confirmed by WhatsApp: %s", session_id, exc.reason)
            await self._stop(runner)
        async with self.svc.pool.acquire() as conn, conn.transaction():
            session = await sdb.set_state(conn, session_id, None, "logged_out", last_error="logged out by an admin")
            if session is None:
                raise NotFound("session not found")
            await sdb.drop_store(conn, session_id)
            await sdb.create_store(conn, session_id)
            await audit.record(conn, actor, LOGGED_OUT, "wa_session", session_id, {})
        await self._announce(session_id, SessionState("logged_out", reason="logged out by an admin"), "logged_out")
        return session

    async def start(self, actor: audit.Actor, session_id: int) -> sdb.Session:
        """Run a session again after its QR codes expired or it was logged out (a new QR code)."""
        current = await self.get(session_id)
        if current.status not in ("logged_out", "qr_expired"):
            raise Conflict("the session is already running")
        async with self.svc.pool.acquire() as conn, conn.transaction():
            session = await sdb.set_state(conn, session_id, None, "new", last_error=None)
            await audit.record(conn, actor, STARTED, "wa_session", session_id, {})
        assert session is not None
        self._wake.set()
        return session

    async def delete(self, actor: audit.Actor, session_id: int) -> None:
        runner = self.held.get(session_id)
        if runner is not None:
            await self._stop(runner)
        async with self.svc.pool.acquire() as conn, conn.transaction():
            session = await sdb.get(conn, session_id)
            if session is None or not await sdb.delete(conn, session_id):
                raise NotFound("session not found")
            await sdb.drop_store(conn, session_id)
            await audit.record(conn, actor, DELETED, "wa_session", session_id, {"name": session.name})
        log.info("linked session %s deleted", session_id)

    # --- the lease loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Every node: renew held leases, stop what was lost, claim what nobody runs."""
        interval = self.svc.config.wa_session_lease_s / 3
        if self.available and not self._executor_sized:
            self._executor_sized = True
            base = min(32, (os.cpu_count() or 1) + 4)  # asyncio's own default size
            asyncio.get_running_loop().set_default_executor(
                ThreadPoolExecutor(max_workers=base + SESSIONS_PER_NODE, thread_name_prefix="asyncio"))
        while True:
            await self.tick()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass

    async def tick(self) -> None:
        lease_s = self.svc.config.wa_session_lease_s
        node = self.svc.node_id
        for runner in list(self.held.values()):
            row = await sdb.renew(self.svc.pool, runner.session_id, node, runner.token, lease_s)
            if row is None:
                log.warning("linked session %s: lease lost (token %s); stopping here", runner.session_id, runner.token)
                await self._stop(runner)
            elif row.status not in sdb.RUNNABLE:
                await self._stop(runner)  # logged out or expired by an admin on another node
        if self.available:
            room = min(CLAIM_BATCH, SESSIONS_PER_NODE - len(self.held))
            claimed = await sdb.claim(self.svc.pool, node, lease_s, list(self.held), room) if room > 0 else []
            for session in claimed:
                self._start(session)
        if self.held:
            await self._sweep_deferred()
        counts = await sdb.counts_by_state(self.svc.pool)
        for state in sdb.STATES:
            self.gauge.labels(state=state).set(counts.get(state, 0))

    def _start(self, session: sdb.Session) -> None:
        assert self.svc.config.database_url is not None
        ref: list[Runner] = []
        client = LinkedDeviceClient(session.id, store_dsn(self.svc.config.database_url, sdb.store_schema(session.id)),
                                    SessionEvents(self, ref))
        runner = Runner(session.id, session.lease_token, client, status=session.status)
        ref.append(runner)
        self.held[session.id] = runner
        log.info("linked session %s: claimed by node %s (token %s)", session.id, self.svc.node_id, session.lease_token)
        runner.task = self.svc.supervisor.spawn(f"wa-session:{session.id}", self._run_session(runner))

    async def _stop(self, runner: Runner) -> None:
        runner.stopping = True
        self.held.pop(runner.session_id, None)
        if runner.task is not None and runner.task is not asyncio.current_task():
            runner.task.cancel()
            try:
                await runner.task
            except BaseException:
                pass
        await runner.client.close()
        try:
            await sdb.release(self.svc.pool, runner.session_id, runner.token)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("linked session %s: release failed: %s", runner.session_id, type(exc).__name__)

    async def _run_session(self, runner: Runner) -> None:
        """Connect, and again after each failure with backoff, until stopped or ended."""
        base = self.svc.config.wa_session_retry_base_s
        try:
            while not runner.stopping and not runner.ended:
                await self.apply_state(runner, None, status="connecting")
                try:
                    await runner.client.run()
                except LinkedDeviceError as exc:
                    await self.apply_state(runner, SessionState("disconnected", reason=exc.reason))
                if runner.ended or runner.stopping:
                    break
                delay = retry_delay(runner.attempts, base)
                runner.attempts += 1
                log.info("linked session %s: connecting again in %.1fs (attempt %s)", runner.session_id, delay,
                         runner.attempts + 1)
                await asyncio.sleep(delay)
        finally:
            if not runner.stopping:  # ended by itself (expired, logged out): free the lease
                self.held.pop(runner.session_id, None)
                await runner.client.close()
                await sdb.release(self.svc.pool, runner.session_id, runner.token)

    async def apply_state(self, runner: Runner, state: SessionState | None, *, status: str | None = None) -> None:
        """A runner's state change: the row (only while its token is current), a log line, and
        ``wa:session`` to admins."""
        async with runner.lock:
            await self._apply_state(runner, state, status)

    async def _apply_state(self, runner: Runner, state: SessionState | None, status: str | None) -> None:
        if runner.ended or runner.stopping:
            return  # a connect failure after logged_out must not write over it
        if state is not None and state.kind == "qr" and state.qr == runner.last_qr:
            return
        new_status = status or (state.kind if state is not None else runner.status)
        if state is not None and state.kind == "connected":
            runner.attempts = 0
        error = state.reason if state is not None and state.kind in ("disconnected", "logged_out", "qr_expired") else None
        row = await sdb.set_state(self.svc.pool, runner.session_id, runner.token, new_status, last_error=error,
                                  jid=state.jid if state is not None else None,
                                  keep_error=state is None or state.kind == "qr")
        if row is None:
            log.warning("linked session %s: state %s not written, token %s is stale", runner.session_id, new_status,
                        runner.token)
            runner.ended = True
            runner.client.finish()
            return
        changed = new_status != runner.status
        runner.status = new_status
        if state is None:
            if changed:
                log.info("linked session %s: %s", runner.session_id, new_status)
            return
        if state.kind == "qr":
            runner.last_qr = state.qr
        if changed or state.kind != "qr":
            log.info("linked session %s: %s%s", runner.session_id, new_status,
                     f" ({state.reason})" if state.reason else "")
        if state.kind == "logged_out":
            # the phone removed us: its keys are useless now; conversations stay, sends fail
            await sdb.drop_store(self.svc.pool, runner.session_id)
            await sdb.create_store(self.svc.pool, runner.session_id)
        if state.kind in ("logged_out", "qr_expired"):
            runner.ended = True
            runner.client.finish()
        await self._announce(runner.session_id, state, new_status)

    async def _announce(self, session_id: int, state: SessionState, status: str) -> None:
        event: dict[str, Any] = {"session_id": session_id, "kind": state.kind, "status": status,
                                 "reason": state.reason}
        if state.qr is not None:
            event["qr"] = state.qr
            svg = qr_svg(state.qr)
            if svg is not None:
                event["qr_svg"] = svg
        if state.pairing_code is not None:
            event["pairing_code"] = state.pairing_code
        if state.jid is not None:
            event["jid"] = state.jid
        await emit(self.svc, "wa:session", event, to=ADMIN_CHANNEL)

    async def _sweep_deferred(self) -> None:
        """Send the queued messages other nodes left for the sessions held here."""
        rows = await sdb.claim_deferred_outbound(self.svc.pool, list(self.held), DEFERRED_BATCH,
                                                lease_s=max(60.0, 4 * self.svc.config.wa_retry_base_s))
        for row in rows:
            msg = await mdb.get_message(self.svc.pool, row["message_id"])
            contact = await wadb.contact_by_room(self.svc.pool, row["room_id"])
            if msg is None or contact is None or msg.deleted_at is not None:
                await wadb.outbound_failed(self.svc.pool, row["id"], None, "message_gone")
                continue
            await self.whatsapp._attempt(contact, msg, row["id"], attempts=row["attempts"])

    async def health(self) -> dict[str, Any] | None:
        """``/readyz``'s view: None without sessions; else the counts and how many are down."""
        counts = await sdb.counts_by_state(self.svc.pool)
        if not counts:
            return None
        down = sum(counts.get(s, 0) for s in DOWN_STATES)
        return {"down": down, "by_state": counts}

    async def close(self) -> None:
        for runner in list(self.held.values()):
            await self._stop(runner)


def qr_svg(text: str) -> str | None:
    """The QR code as a small SVG document (segno comes with the whatsapp-web extra)."""
    try:
        import segno
    except ImportError:
        return None
    try:
        svg: str = segno.make_qr(text, error="l").svg_inline(scale=4, border=2)
    except (ValueError, segno.DataOverflowError):
        return None
    return svg


def check_session_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name must be a non-empty text", field="name")
    return name.strip()
