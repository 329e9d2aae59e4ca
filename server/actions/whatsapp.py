"""WhatsApp conversations: inbound webhooks, outbound replies, login by code.

The conversation's state machine (AI/human mode, assignment, queues, the timeline) is
``actions/conversations.py``; routing into queues is ``actions/queues.py``. Here: a contact's
message is stored (a new conversation writes ``opened``, one that was closed ``reopened``),
then routed by the number's rule, and only when routing does not take it does the assistant
answer (in AI mode). The assistant's reply is sent only if the conversation is still in AI mode
when the reply is ready (a takeover during generation wins).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from chatcore.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from chatcore.events import Attachment, MessageRecord
from whatsapp_bridge.channel import Channel, CloudApiChannel
from whatsapp_bridge.cloud_api import (
    CloudApiClient,
    CloudApiError,
    SendResult,
    otp_template_components,
    within_service_window,
)
from whatsapp_bridge.media import inbound_media
from whatsapp_bridge.models import InboundMessage, StatusUpdate, status_advances
from whatsapp_bridge.signature import parse_signature, verify_digest
from whatsapp_bridge.templates import send_components
from whatsapp_bridge.webhook import WebhookFormatError, parse_webhook, verify_handshake

from ..storage import messages as mdb
from ..storage import queues as qdb
from ..storage import rooms as rdb
from ..storage import users as udb
from ..storage import wa_media as wdb
from ..storage import wa_sessions as sdb
from ..storage import whatsapp as db
from . import audit, conversations, queues
from . import contacts as contact_actions
from .messages import store_system_message
from .notify import emit, room_channel
from .wa_media import MEDIA_MAX_RETRIES, WaMediaService, pending_attachment

if TYPE_CHECKING:
    from ..context import Services
    from .wa_sessions import LinkedSessions

log = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^\+?[1-9]\d{6,14}$")
OTP_TTL_S = 300
OTP_MAX_ATTEMPTS = 5
OTP_PER_PHONE_PER_10MIN = 3
OTP_PER_IP_PER_10MIN = 10
STATUSES = ("open", "pending", "closed")
# accounts made by code login: username ``wa_`` + random letters (no digits, so a handle can
# never look like a phone number; 23**10 handles), display name a fixed label plus the
# handle's first letters
CODE_LOGIN_HANDLE_ALPHABET = "abcdefghjkmnpqrstuvwxyz"
CODE_LOGIN_HANDLE_LEN = 10
CODE_LOGIN_HANDLE_TRIES = 5
CODE_LOGIN_DISPLAY_NAME = "WhatsApp user"


def new_code_login_handle() -> str:
    return "wa_" + "".join(secrets.choice(CODE_LOGIN_HANDLE_ALPHABET) for _ in range(CODE_LOGIN_HANDLE_LEN))


# Webhook posts are checked against the accounts' app secrets held in memory, so a forged or
# unsigned post costs no database query. This node reloads them when its own admins change an
# account, when they are older than ACCOUNTS_TTL_S, and when a well-formed signature matches no
# held secret (a secret changed on another node) but at most once per ACCOUNTS_MISS_RELOAD_S:
# a flood of forged signatures costs one query per that many seconds, not one per post.
ACCOUNTS_TTL_S = 60.0
ACCOUNTS_MISS_RELOAD_S = 5.0

OUTBOX_MAX_ATTEMPTS = 10  # deliveries tried (each with the client's own retries) before "failed"
OUTBOX_MAX_WAIT_S = 15 * 60.0
OUTBOX_SWEEP_S = 5.0
OUTBOX_BATCH = 50
# a first attempt still "queued" after this long lost its node mid-send: sent again, which may
# send it twice if the node died after Meta accepted it (at least once, never lost)
OUTBOX_STUCK_S = 120.0


ACCOUNT_ADDED, ACCOUNT_REMOVED = "wa_account.add", "wa_account.remove"


async def do_add_account(svc: Services, actor: audit.Actor, name: str, **values: str) -> db.Account:
    """Add a business number, with its audit row (no secrets in it) in the same transaction."""
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            account = await db.insert_account(conn, name=name, **values)
            await audit.record(conn, actor, ACCOUNT_ADDED, "wa_account", account.id,
                               {"phone_number_id": account.phone_number_id, "display_phone": account.display_phone})
    except asyncpg.UniqueViolationError:
        raise Conflict("this phone_number_id is already configured", field="phone_number_id") from None
    if isinstance(svc.whatsapp, WhatsAppService):
        svc.whatsapp.forget_accounts()
    return account


async def do_remove_account(svc: Services, actor: audit.Actor, account_id: int) -> None:
    async with svc.pool.acquire() as conn, conn.transaction():
        account = await db.get_account(conn, account_id)
        if account is None or not await db.delete_account(conn, account_id):
            raise NotFound("account not found")
        await audit.record(conn, actor, ACCOUNT_REMOVED, "wa_account", account_id,
                           {"phone_number_id": account.phone_number_id, "display_phone": account.display_phone})
    if isinstance(svc.whatsapp, WhatsAppService):
        svc.whatsapp.forget_accounts()


class WhatsAppService:
    def __init__(self, svc: Services, session: aiohttp.ClientSession) -> None:
        self.svc = svc
        self.api = CloudApiClient(session, base_url=svc.config.wa_graph_url, api_version=svc.config.wa_api_version,
                                  timeout_s=10, max_retries=4, min_interval_s=svc.config.wa_send_interval_s,
                                  media_timeout_s=svc.config.wa_media_timeout_s)
        # fetches of contacts' media: fewer retries (a failure shows as unavailable, staff retry)
        self.media = WaMediaService(svc, CloudApiClient(
            session, base_url=svc.config.wa_graph_url, api_version=svc.config.wa_api_version, timeout_s=10,
            max_retries=MEDIA_MAX_RETRIES, media_timeout_s=svc.config.wa_media_timeout_s))
        # codes are stored as HMACs keyed by a secret every node shares (derived from the signing key)
        self._otp_key = hashlib.sha256(b"otp:" + svc.extras["signing_secret"]).digest()
        self._accounts: list[db.Account] | None = None
        self._accounts_at = 0.0  # time.monotonic() of the load
        self._accounts_gen = 0  # bumped by forget_accounts: a load that began before is not kept
        self._accounts_lock = asyncio.Lock()

    @property
    def linked(self) -> LinkedSessions | None:
        """The linked-device sessions (``actions/wa_sessions.py``), when this node runs them."""
        return self.media.linked

    @linked.setter
    def linked(self, sessions: LinkedSessions | None) -> None:
        self.media.linked = sessions

    # --- webhook ------------------------------------------------------------------------------

    def forget_accounts(self) -> None:
        """An account was added, changed or removed: the next webhook reloads the secrets."""
        self._accounts = None
        self._accounts_gen += 1

    async def _held_accounts(self, max_age_s: float) -> list[db.Account]:
        """The accounts in memory, loaded first if missing or older than ``max_age_s``; one
        load at a time (concurrent callers wait for it and use it)."""
        async with self._accounts_lock:
            if self._accounts is None or time.monotonic() - self._accounts_at > max_age_s:
                gen = self._accounts_gen
                accounts = await db.list_accounts(self.svc.pool)
                if gen != self._accounts_gen:
                    return accounts
                self._accounts, self._accounts_at = accounts, time.monotonic()
            return self._accounts

    async def _accounts_matching(self, match: Callable[[list[db.Account]], list[db.Account]]) -> list[db.Account]:
        found = match(await self._held_accounts(ACCOUNTS_TTL_S))
        if not found and time.monotonic() - self._accounts_at > ACCOUNTS_MISS_RELOAD_S:
            found = match(await self._held_accounts(ACCOUNTS_MISS_RELOAD_S))
        return found

    def admit_webhook(self, ip: str) -> None:
        """Count a webhook request of ``ip`` (``limits.webhook_per_min``), before any other work.

        Counted in memory (synced to Redis in the background): a flood costs neither a Redis
        round trip nor a database query per request."""
        self.svc.limiter.hit_batched("webhook", ip, self.svc.config.limits.webhook_per_min, 60)

    async def verify_challenge(self, params: dict[str, str]) -> str:
        def match(accounts: list[db.Account]) -> list[db.Account]:
            return [a for a in accounts if verify_handshake(params, a.verify_token) is not None]

        if params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") and params.get("hub.challenge"):
            for account in await self._accounts_matching(match):
                challenge = verify_handshake(params, account.verify_token)
                if challenge is not None:
                    return challenge
        raise Forbidden("verify token does not match")

    async def handle_webhook(self, raw: bytes, signature: str | None) -> dict[str, int]:
        """Check the signature before parsing anything, store, then schedule the follow-up."""
        digest = parse_signature(signature)
        if digest is None:
            raise Unauthorized("missing or malformed X-Hub-Signature-256 header")

        def match(accounts: list[db.Account]) -> list[db.Account]:
            # accounts of one Meta app share its secret: one HMAC per distinct secret
            ok: dict[str, bool] = {}
            for a in accounts:
                if a.app_secret not in ok:
                    ok[a.app_secret] = verify_digest(a.app_secret, raw, digest)
            return [a for a in accounts if ok[a.app_secret]]

        trusted = await self._accounts_matching(match)
        if not trusted:
            raise Unauthorized("bad webhook signature")
        try:
            import orjson

            batch = parse_webhook(orjson.loads(raw))
        except (ValueError, WebhookFormatError) as exc:
            raise Invalid(f"not a WhatsApp webhook: {exc}") from None
        by_number = {a.phone_number_id: a for a in trusted}
        stored: list[tuple[MessageRecord, db.Contact, bool]] = []
        for inbound in batch.messages:
            account = by_number.get(inbound.phone_number_id)
            if account is None:
                log.warning("webhook for an unknown phone number id; ignored")
                continue
            result = await self._store_inbound(account, inbound)
            if result is not None:
                stored.append(result)
        changed = []
        for status in batch.statuses:
            if status.phone_number_id in by_number:
                update = await self._apply_status(status)
                if update is not None:
                    changed.append(update)
                elif self.svc.campaigns is not None:
                    await self.svc.campaigns.on_status(status)
        if self.svc.campaigns is not None:
            for msg, contact, _ in stored:
                if contact.account_id is not None:  # campaigns go out through Cloud API numbers
                    await self.svc.campaigns.on_inbound(contact.account_id, contact.wa_id, msg.body)
        for msg, contact, created in stored:
            self.svc.supervisor.spawn(f"wa-inbound:{msg.id}", self._after_inbound(msg, contact, created))
        for event in changed:
            await self._emit_status(event)
        return {"messages": len(stored), "statuses": len(changed)}

    async def ingest_linked(self, session_id: int, inbound: InboundMessage) -> None:
        """A contact's message through a linked-device session: stored like a webhook's."""
        result = await self._store_inbound(None, inbound, session_id)
        if result is not None:
            msg, contact, created = result
            self.svc.supervisor.spawn(f"wa-inbound:{msg.id}", self._after_inbound(msg, contact, created))

    async def ingest_statuses(self, statuses: Sequence[StatusUpdate]) -> None:
        for status in statuses:
            event = await self._apply_status(status)
            if event is not None:
                await self._emit_status(event)

    async def _emit_status(self, event: dict[str, Any]) -> None:
        """A delivery status reaches who may see its conversation (the desk's visibility rule)."""
        contact = await db.contact_by_room(self.svc.pool, event["room_id"])
        if contact is not None:
            await emit(self.svc, "wa:status", event,
                       to=conversations.audience(contact.room_id, contact.queue_id, contact.assignee_id))

    async def _store_inbound(self, account: db.Account | None, inbound: InboundMessage,
                             session_id: int | None = None) -> tuple[MessageRecord, db.Contact, bool] | None:
        """Store a contact's message of a Cloud API ``account``, or (``account`` None) of the
        linked session ``session_id``."""
        async with self.svc.pool.acquire() as conn, conn.transaction():
            person_id = await contact_actions.resolve_inbound(conn, inbound.wa_id, inbound.bsuid, inbound.contact_name)
            if account is not None:
                contact = await self._conversation_of(conn, account, person_id, inbound)
            else:
                assert session_id is not None
                contact = await db.get_session_contact(conn, session_id, inbound.sender)
            created = contact is None
            if contact is None:
                contact = await self._new_contact(conn, account, inbound, person_id, session_id)
            reopened = contact.status == "closed"
            if not await db.claim_inbound(conn, inbound.wamid, contact.room_id):
                return None  # Meta retried or replayed this webhook
            msg = await self._insert(conn, contact, inbound, account, session_id, "contact",
                                     inbound.contact_name or contact.name or inbound.sender)
            fields: dict[str, Any] = {"last_inbound_at": max(inbound.timestamp, contact.last_inbound_at or inbound.timestamp)}
            if reopened:
                fields["status"] = "open"
            if inbound.contact_name and inbound.contact_name != contact.name:
                fields["name"] = inbound.contact_name
            contact = await db.update_contact(conn, contact.id, **fields)
            if created or reopened:
                await qdb.insert_event(conn, contact.room_id, "opened" if created else "reopened",
                                       queue_id=contact.queue_id, meta={"by": "contact"})
        return msg, contact, created or reopened

    async def _insert(self, conn: asyncpg.Connection, contact: db.Contact, inbound: InboundMessage,
                      account: db.Account | None, session_id: int | None, author_kind: str,
                      author_name: str) -> MessageRecord:
        """The message of a claimed wamid. A file is stored as a pending attachment (fetched
        after the commit) with the caption as the text; other kinds as their readable line."""
        media = inbound_media(inbound.type, inbound.meta)
        if account is None and inbound.media_payload is None:
            media = None  # a linked file always comes with what it is downloaded from
        files: tuple[Attachment, ...] = (pending_attachment(media),) if media is not None else ()
        msg = await mdb.insert_message(
            conn, contact.room_id, author_id=None, author_kind=author_kind, author_name=author_name,
            body=media.caption if media is not None else inbound.text,
            meta={"wamid": inbound.wamid, "type": inbound.type, **inbound.meta}, attachments=files,
        )
        if media is not None:
            await wdb.insert(conn, files[0].id, msg.id, contact.room_id, account.id if account else None,
                             media.media_id, media.kind, session_id=None if account else session_id,
                             payload=None if account else inbound.media_payload)
        await db.set_inbound_message(conn, inbound.wamid, msg.id)
        return msg

    async def ingest_from_phone(self, session_id: int, typed: InboundMessage) -> None:
        """A message the business typed on the linked phone to a contact: stored as sent (the
        contact's receipts then tick it) under the session's name and shown to staff. Nothing is
        sent, routed or answered for it, and it marks the conversation read up to it (the
        business answered there). Like a staff reply, it takes a conversation the
        assistant answers over (assistant off, nobody assigned) and is the stay's first human
        answer when nobody answered before; status, queue and assignee stay as they were. A chat
        the phone starts opens a conversation the business handles in person: the assistant
        off, so it does not answer the contact's reply to the business's own outreach."""
        events: list[int] = []
        async with self.svc.pool.acquire() as conn, conn.transaction():
            if await db.get_by_wamid_for_update(conn, typed.wamid) is not None:
                return  # seen before (whatsmeow's offline sync hands it over again)
            contact = await db.get_session_contact(conn, session_id, typed.sender)
            started = contact is None
            if contact is None:
                person_id = await contact_actions.resolve_inbound(conn, typed.wa_id, None, None)
                contact = await self._new_contact(conn, None, typed, person_id, session_id)
                events.append(await qdb.insert_event(conn, contact.room_id, "opened", meta={"by": "phone"}))
            await db.claim_sent(conn, typed.wamid, contact.room_id)
            session = await sdb.get(conn, session_id)
            msg = await self._insert(conn, contact, typed, None, session_id, "user",
                                     session.name if session is not None and session.name else "Phone")
            # a person answers in person, as a staff reply does: the assistant stops, so it does
            # not talk over them (staff hand it back from the web app); a chat the phone started
            # is the business's from the first message
            took_over = not started and contact.ai_enabled and contact.assignee_id is None
            # the business answered there, as after reading: what came before is not unread
            fields: dict[str, Any] = {"staff_read_seq": max(msg.seq, contact.staff_read_seq)}
            if started or took_over:
                fields["ai_enabled"] = False
            contact = await db.update_contact(conn, contact.id, **fields)
            if took_over:
                events.append(await qdb.insert_event(conn, contact.room_id, "taken_over", queue_id=contact.queue_id,
                                                     meta={"by": "phone", "implicit": True}))
            # a person answered: the stay's response time counts the phone's reply
            first = await conversations.mark_first_response(conn, contact, None, {"by": "phone"})
            if first is not None:
                events.append(first)
        await emit(self.svc, "message", msg.to_wire(), to=room_channel(contact.room_id))
        for att in msg.attachments:  # after the message, so its message:updated follows it
            self.media.start(att.id)
        if events:
            await conversations.after_change(self.svc, contact.room_id, events)
        else:
            await self.publish(contact.room_id)

    async def _conversation_of(self, conn: asyncpg.Connection, account: db.Account, person_id: int,
                               inbound: InboundMessage) -> db.Contact | None:
        """The person's conversation on this number, its reply address brought up to date: the
        number they write from now (a changed number with the same BSUID), else their BSUID."""
        contact = await db.contact_of_person(conn, account.id, person_id)
        if contact is None:
            return None
        fields: dict[str, Any] = {}
        if inbound.bsuid and contact.bsuid != inbound.bsuid:
            fields["bsuid"] = inbound.bsuid
        if inbound.wa_id and contact.wa_id != inbound.wa_id:
            taken = await db.get_contact(conn, account.id, inbound.wa_id)
            if taken is None:
                fields["wa_id"] = inbound.wa_id
        return await db.update_contact(conn, contact.id, **fields) if fields else contact

    async def _new_contact(self, conn: asyncpg.Connection, account: db.Account | None, inbound: InboundMessage,
                           person_id: int, session_id: int | None = None) -> db.Contact:
        """A new conversation of the person ``person_id`` on a Cloud API ``account`` or (``account``
        None) on the linked session ``session_id``."""
        name = inbound.contact_name or (f"+{inbound.wa_id}" if inbound.wa_id else inbound.sender)
        address = inbound.sender
        if account is None:
            room = await rdb.insert_room(conn, f"wa-s{session_id}-c{person_id}", name, "whatsapp", "", None)
            return await db.insert_contact(conn, None, address, inbound.contact_name or "", room.id,
                                           contact_id=person_id, session_id=session_id)
        if inbound.bsuid and await db.get_contact(conn, account.id, address) is not None:
            # the number is another person's earlier conversation (a recycled number now named
            # by this BSUID): their history stays theirs, this person is addressed by BSUID
            address = inbound.bsuid
        room = await rdb.insert_room(conn, f"wa-{account.id}-c{person_id}", name, "whatsapp", "", None)
        return await db.insert_contact(conn, account.id, address, inbound.contact_name or "", room.id,
                                       contact_id=person_id, bsuid=inbound.bsuid)

    async def _after_inbound(self, msg: MessageRecord, contact: db.Contact, fresh: bool) -> None:
        await emit(self.svc, "message", msg.to_wire(), to=room_channel(contact.room_id))
        for att in msg.attachments:  # after the message, so its message:updated follows it
            self.media.start(att.id)
        await self.publish(contact.room_id)
        if await queues.route_inbound(self.svc, contact, msg, fresh):
            return
        if contact.ai_enabled and contact.assignee_id is None and contact.status != "closed" and self.svc.assistant:
            self.svc.assistant.start(contact.room_id, msg)

    async def _apply_status(self, status: StatusUpdate) -> dict[str, Any] | None:
        async with self.svc.pool.acquire() as conn, conn.transaction():
            row = await db.get_by_wamid_for_update(conn, status.wamid)
            if row is None or not status_advances(row["status"], status.status):
                return None  # unknown, repeated or out of order: statuses only move forward
            await db.set_status(conn, row["id"], status.status, status.error_code, status.error_title)
        return {"room_id": row["room_id"], "message_id": row["message_id"], "wamid": status.wamid,
                "status": status.status, "error": None if status.error_code is None else
                {"code": status.error_code, "title": status.error_title}}

    # --- conversation state ---------------------------------------------------------------------

    async def publish(self, room_id: int) -> dict[str, Any]:
        return await conversations.publish(self.svc, room_id)

    async def mark_read(self, room_id: int, seq: Any) -> dict[str, Any]:
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise Invalid("seq must be a non-negative integer", field="seq")
        contact = await db.contact_by_room(self.svc.pool, room_id)
        if contact is None:
            raise NotFound("conversation not found")
        await db.update_contact(self.svc.pool, contact.id, staff_read_seq=max(seq, contact.staff_read_seq))
        return await self.publish(room_id)

    # --- outbound ---------------------------------------------------------------------------------

    async def check_outbound(self, room_id: int, files: Sequence[Attachment] = ()) -> dict[str, Any]:
        """Called before a staff message is stored: refuse what WhatsApp would refuse (outside the
        window; files of a type or size it does not take)."""
        contact = await db.contact_by_room(self.svc.pool, room_id)
        if contact is None:
            raise NotFound("conversation not found")
        if contact.channel == "linked_device":  # no service window: the phone's own chat
            await self.media.check_outbound(files)
            return {"channel": "whatsapp"}
        if not within_service_window(contact.last_inbound_at, datetime.now(UTC)):
            raise Invalid("outside the 24-hour customer service window: only a template message can be sent",
                          reason="outside_window")
        await self.media.check_outbound(files)
        return {"channel": "whatsapp"}

    async def on_staff_message(self, room_id: int, msg: MessageRecord) -> None:
        contact = await db.contact_by_room(self.svc.pool, room_id)
        if contact is None:
            return
        if msg.author_id is not None:
            # a staff reply takes an AI-mode conversation over: the AI must not talk over a person
            await conversations.on_staff_reply(self.svc, contact, msg.author_id)
        self.svc.supervisor.spawn(f"wa-send:{msg.id}", self._deliver(contact, msg))

    async def on_assistant_reply(self, room_id: int, msg: MessageRecord) -> None:
        contact = await db.contact_by_room(self.svc.pool, room_id)
        if contact is None:
            return
        if not contact.ai_enabled or contact.assignee_id is not None:
            log.info("assistant reply in room %s not sent: a person holds the conversation", room_id)
            return
        await self._deliver(contact, msg)
        # a person may have taken the conversation over while the notice went out: theirs stays
        if msg.meta.get("handoff") and await db.hand_off(self.svc.pool, contact.id) is not None:
            await self.publish(room_id)

    async def send_notice(self, room_id: int, text: str, meta: dict[str, Any]) -> MessageRecord | None:
        """A desk message to the contact (greeting menu, routing notice, away message): stored in
        the room as a system message, then sent through the outbox like a reply."""
        contact = await db.contact_by_room(self.svc.pool, room_id)
        if contact is None:
            return None
        msg = await store_system_message(self.svc, room_id, text, author_kind="system", meta=meta)
        await self._deliver(contact, msg)
        return msg

    async def _deliver(self, contact: db.Contact, msg: MessageRecord) -> None:
        row_id = await db.insert_outbound(self.svc.pool, msg.id, contact.room_id)
        await self._attempt(contact, msg, row_id, attempts=0)

    async def _attempt(self, contact: db.Contact, msg: MessageRecord, row_id: int, attempts: int) -> None:
        """One delivery attempt of a queued row (the client retries within it). A failure for a
        passing reason keeps the row queued for the outbox sweeper, with a doubling wait, until
        ``OUTBOX_MAX_ATTEMPTS``; any other failure is final and shown to staff."""
        account = None if contact.account_id is None else await db.get_account(self.svc.pool, contact.account_id)
        if account is None and contact.channel == "cloud_api":
            await db.outbound_failed(self.svc.pool, row_id, None, "account_removed")
            return
        event: dict[str, Any] = {"room_id": contact.room_id, "message_id": msg.id}
        try:
            results = await self._send(account, contact, msg)
            await db.outbound_sent(self.svc.pool, row_id, [r.wamid for r in results])
            event.update(status="sent", wamid=results[0].wamid if results else None, error=None)
        except CloudApiError as exc:
            error = {"code": exc.code, "title": exc.title, "state": exc.state}
            if exc.retryable and attempts + 1 < OUTBOX_MAX_ATTEMPTS:
                delay = min(OUTBOX_MAX_WAIT_S, self.svc.config.wa_retry_base_s * 2**attempts)
                await db.outbound_retry_later(self.svc.pool, row_id, exc.code, exc.state, delay)
                event.update(status="queued", error=error, retry_in_s=round(delay, 1))
                log.info("WhatsApp send for message %s queued again (%s), next try in %.0fs", msg.id, exc.state, delay)
            else:
                await db.outbound_failed(self.svc.pool, row_id, exc.code, exc.state)
                event.update(status="failed", error=error)
                log.warning("WhatsApp send for message %s failed: %s (%s)", msg.id, exc.state, exc.code)
        await emit(self.svc, "wa:status", event,
                   to=conversations.audience(contact.room_id, contact.queue_id, contact.assignee_id))

    async def attempt_queued(self, contact: db.Contact, msg: MessageRecord, row_id: int) -> None:
        """The first delivery attempt of an outbox row written by another action (a template)."""
        await self._attempt(contact, msg, row_id, attempts=0)

    async def channel_for(self, account: db.Account | None, contact: db.Contact) -> Channel:
        """The channel of a conversation; raises ``CloudApiError`` when it cannot send now."""
        if contact.channel == "linked_device":
            if self.linked is None:
                raise CloudApiError(0, None, "linked-device sessions are not running", state="session_removed")
            return await self.linked.channel(contact.session_id)
        assert account is not None
        return CloudApiChannel(self.api, account.phone_number_id, account.access_token)

    async def _send(self, account: db.Account | None, contact: db.Contact, msg: MessageRecord) -> list[SendResult]:
        channel = await self.channel_for(account, contact)
        template = msg.meta.get("template")
        if isinstance(template, dict):
            components = send_components(template.get("param_counts") or {}, list(template.get("parameters") or []))
            return [await channel.send_template(contact.wa_id, template["name"], template["language"], components)]
        if msg.attachments:
            return await self.media.send_files(channel, contact.wa_id, msg)
        return await channel.send_text(contact.wa_id, msg.body)

    async def sweep_outbox(self) -> int:
        """Send the queued rows that are due (the outbox); returns how many were tried."""
        base = self.svc.config.wa_retry_base_s
        rows = await db.claim_due_outbound(self.svc.pool, OUTBOX_BATCH, lease_s=max(60.0, 4 * base),
                                           stuck_after_s=OUTBOX_STUCK_S)
        for row in rows:
            msg = await mdb.get_message(self.svc.pool, row["message_id"])
            contact = await db.contact_by_room(self.svc.pool, row["room_id"])
            if msg is None or contact is None or msg.deleted_at is not None:
                await db.outbound_failed(self.svc.pool, row["id"], None, "message_gone")
                continue
            await self._attempt(contact, msg, row["id"], attempts=row["attempts"])
        return len(rows)

    async def run_outbox(self) -> None:
        """The outbox loop (every node runs one; rows are claimed with SKIP LOCKED)."""
        interval = min(OUTBOX_SWEEP_S, self.svc.config.wa_retry_base_s)
        while True:
            await asyncio.sleep(interval)
            await self.sweep_outbox()

    # --- login by WhatsApp code -----------------------------------------------------------------

    def _otp_digest(self, phone: str, code: str) -> str:
        return hmac.new(self._otp_key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    async def request_code(self, phone: Any, ip: str) -> None:
        phone = check_phone(phone)
        limiter = self.svc.limiter
        await limiter.hit("otp-ip", ip, OTP_PER_IP_PER_10MIN, 600)
        await limiter.hit("otp-phone", phone, OTP_PER_PHONE_PER_10MIN, 600)
        accounts = await db.list_accounts(self.svc.pool)
        # without a Cloud API number, a connected linked session sends the code as a plain text
        linked = None if accounts or self.linked is None else self.linked.any_connected()
        if not accounts and linked is None:
            raise Unavailable("login by WhatsApp code is not configured")
        code = f"{secrets.randbelow(1_000_000):06d}"
        key = f"{self.svc.config.redis_prefix}otp:{phone}"
        await self.svc.redis.hset(key, mapping={"digest": self._otp_digest(phone, code), "attempts": 0})
        await self.svc.redis.expire(key, OTP_TTL_S)
        try:
            if linked is not None:
                await linked.send_text(phone.lstrip("+"), f"{code} is your login code. It expires in "
                                                           f"{OTP_TTL_S // 60} minutes; never share it.")
            else:
                await self.api.send_template(accounts[0].phone_number_id, accounts[0].access_token,
                                             phone.lstrip("+"), self.svc.config.wa_otp_template,
                                             self.svc.config.wa_otp_language, otp_template_components(code))
        except CloudApiError as exc:
            await self.svc.redis.delete(key)
            raise Unavailable(f"the code could not be sent ({exc.state})") from None

    async def verify_code(self, phone: Any, code: Any, ip: str) -> udb.User:
        phone = check_phone(phone)
        await self.svc.limiter.hit("otp-verify-ip", ip, OTP_PER_IP_PER_10MIN * 3, 600)
        if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
            raise Invalid("code must be 6 digits", field="code")
        key = f"{self.svc.config.redis_prefix}otp:{phone}"
        attempts = await self.svc.redis.hincrby(key, "attempts", 1)
        digest = await self.svc.redis.hget(key, "digest")
        if digest is None:
            await self.svc.redis.delete(key)
            raise Unauthorized("the code expired or was never requested")
        if attempts > OTP_MAX_ATTEMPTS:
            await self.svc.redis.delete(key)
            raise Unauthorized("too many wrong codes; request a new one")
        stored = digest.decode() if isinstance(digest, bytes) else digest
        if not hmac.compare_digest(stored, self._otp_digest(phone, code)):
            raise Unauthorized("wrong code")
        await self.svc.redis.delete(key)
        return await self._code_login_user(phone)

    async def _code_login_user(self, phone: str) -> udb.User:
        """The account of ``phone`` (found by the phone column only), made on first login.

        The number is kept in ``users.phone`` alone, which never leaves the server: the
        username is a random handle and the display name a fixed label, so neither user
        search, member lists, presence nor ``author_name`` can show it."""
        for _ in range(CODE_LOGIN_HANDLE_TRIES):
            user = await udb.get_user_by_phone(self.svc.pool, phone)
            if user is not None:
                return user
            handle = new_code_login_handle()
            try:
                return await udb.insert_user(self.svc.pool, handle, f"{CODE_LOGIN_DISPLAY_NAME} {handle[3:7]}", None,
                                             phone=phone)
            except asyncpg.UniqueViolationError:
                # the phone was registered by a concurrent first login (found on the next turn),
                # or the random handle is taken (a new one is drawn)
                continue
        raise Unavailable("could not create the account; try again")


def check_phone(phone: Any) -> str:
    if not isinstance(phone, str):
        raise Invalid("phone must be an international number like +4915112345678", field="phone")
    cleaned = re.sub(r"[\s\-()]", "", phone)
    if not PHONE_RE.match(cleaned):
        raise Invalid("phone must be an international number like +4915112345678", field="phone")
    return "+" + cleaned.lstrip("+")
