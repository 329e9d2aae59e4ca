"""WhatsApp Web (linked-device) sessions through ``neonize`` (Python over Go's ``whatsmeow``).

A phone links us as a companion device (a QR code scanned in WhatsApp, or an 8-character
pairing code typed on the phone); from then on its chats reach us like a WhatsApp Web tab's.
This is NOT Meta's official API: WhatsApp may restrict a number that uses it (docs/WHATSAPP.md).

- ``neonize`` is optional (``pip install .[whatsapp-web]``) and imported only when a client
  starts; the mapping functions below read its event messages by attribute, so this module
  imports without it.
- The device keys live in whatsmeow's SQL store. Given a ``postgres...`` DSN, neonize opens
  whatsmeow's PostgreSQL store; one store holds one device (neonize takes its first device), so
  every session gets a schema of its own, chosen with ``search_path`` in the DSN.
- Blocking: neonize runs every Go call through ``asyncio.to_thread``; ``connect`` parks one
  worker thread of the loop's default executor for as long as the session runs (the Go side
  loops until stopped). Events come from Go threads and are handed to the event loop with
  ``run_coroutine_threadsafe``; nothing here blocks the loop.
- neonize drops whatever a handler raises (the future is never read), so each handler here
  logs and swallows its own errors: a message the library cannot decode is skipped and logged,
  and nothing else is lost.

Inbound messages and receipts become the same ``InboundMessage`` / ``StatusUpdate`` records as
Cloud API webhooks, with ids ``ld:<session>:<WhatsApp message id>`` so they never collide with
Meta's wamids. A file message carries its file's kind, type, name and caption in ``meta`` as a
webhook's does, and in ``media_payload`` what whatsmeow downloads it from; files are fetched
(``download``) and sent (``send_file``) through the same client and Go-call lock as text.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .channel import ChannelKind, OutboundFile, unsupported
from .cloud_api import SendResult, split_text
from .errors import INVALID, NETWORK, TIMEOUT, CloudApiError
from .media import CAPTIONED, base_mime
from .models import InboundMessage, StatusUpdate

log = logging.getLogger(__name__)
T = TypeVar("T")

StateKind = Literal["qr", "pairing_code", "connected", "disconnected", "logged_out", "qr_expired"]
# whatsmeow shows a first QR code for 60 s and then 5 more for 20 s each before it gives up
QR_CODES_MAX = 6
SEND_TIMEOUT_S = 30.0  # one send through whatsmeow (it waits for the server's ack)
CALL_TIMEOUT_S = 20.0  # pairing codes, logout, read receipts
MEDIA_TIMEOUT_S = 120.0  # one file's download or upload through whatsmeow (up to 100 MB)
# neonize's receipt types (Receipt.ReceiptType) -> our statuses; the others (retry, the
# phone's own reads, history sync) say nothing about delivery to the contact
RECEIPT_STATUS = {1: "delivered", 4: "read", 6: "read", 8: "failed"}
# ConnectFailureReason values that end a session: the phone removed us, or we were banned
LOGGED_OUT_REASONS = {2: "logged_out", 4: "main_device_gone", 5: "unknown_logout"}
FAILURE_REASONS = {1: "generic", 2: "logged_out", 3: "temp_banned", 4: "main_device_gone", 5: "unknown_logout",
                   6: "client_outdated", 7: "bad_user_agent", 8: "internal_server_error", 9: "experimental",
                   10: "service_unavailable"}
WA_USER_SERVER = "s.whatsapp.net"
TEXT_FIELDS = ("conversation",)
# message kinds (fields of waE2E.Message) that carry a file: stored with a pending attachment,
# fetched through whatsmeow after the commit (server/actions/wa_media.py)
FILE_FIELDS = {"imageMessage": "image", "videoMessage": "video", "audioMessage": "audio",
               "documentMessage": "document", "stickerMessage": "sticker"}
# the others shown as one readable line
OTHER_FIELDS = {"locationMessage": "location", "contactMessage": "contacts", "reactionMessage": "reaction"}
# a file's preview, dropped from the kept download payload (the file itself is fetched)
THUMBNAIL_FIELDS = ("JPEGThumbnail", "pngThumbnail")
# our message kinds -> the fields of waE2E.Message they are sent as, and whatsmeow's media
# types (neonize.utils.enum.MediaType values: they pick the upload's encryption keys)
SEND_FIELDS = {"image": ("imageMessage", 0), "video": ("videoMessage", 1), "audio": ("audioMessage", 2),
               "document": ("documentMessage", 3)}


# neonize's Go side keeps its clients in plain Go maps, written when a client starts and stops
# and read by every call, with no lock: two of those at once in different threads can end the
# process ("concurrent map writes"). So every call into Go, and a start until the client shows a
# first sign of life, takes this lock: one per event loop, as the Go maps are one per process.
_GO_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
START_SETTLE_S = 10.0  # longest wait, under the lock, for a starting client to register in Go


def go_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _GO_LOCKS.get(loop)
    if lock is None:
        lock = _GO_LOCKS[loop] = asyncio.Lock()
    return lock


class LinkedDeviceError(Exception):
    """The library refused or failed a call; ``reason`` is its text (no secrets in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SessionState:
    """A change of a session's link: what admins see live (``wa:session``)."""

    kind: StateKind
    reason: str | None = None
    qr: str | None = None  # the text to render as a QR code (kind qr)
    pairing_code: str | None = None
    jid: str | None = None  # the linked device's JID (kind connected, once known)


def message_key(session_id: int, message_id: str) -> str:
    return f"ld:{session_id}:{message_id}"


def store_dsn(database_url: str, schema: str) -> str:
    """The DSN whatsmeow's store uses: ours, with its own schema first on the search path.

    whatsmeow's PostgreSQL driver (lib/pq) has no ``prefer`` TLS mode: without an explicit
    ``sslmode`` in DATABASE_URL this is ``disable``, as asyncpg's ``prefer`` ends up on a server
    without TLS. Set ``sslmode=require`` (or stricter) in DATABASE_URL where TLS is needed."""
    if not schema.replace("_", "").isalnum():
        raise ValueError("schema must be a plain identifier")
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    query["search_path"] = schema
    scheme = parts.scheme if parts.scheme.startswith("postgres") else "postgres"
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


def _ts(value: int) -> datetime:
    seconds = value / 1000 if value > 10**11 else value  # seconds from whatsmeow; ms from some paths
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else datetime.now(UTC)


def _address(jid: Any, alt: Any) -> str | None:
    """A contact's id from its JID: the phone number (digits) when known, else ``<user>@<server>``;
    the alt JID of a hidden number (``lid``) names its phone when WhatsApp sent one."""
    if jid.Server == "lid" and alt.User:
        jid = alt
    if not jid.User:
        return None
    return jid.User if jid.Server == WA_USER_SERVER else f"{jid.User}@{jid.Server}"


def _one_to_one(info: Any) -> bool:
    """Whether a message is in a chat with one person: not a group, a status broadcast or a channel."""
    source = info.MessageSource
    return bool(info.ID) and not source.IsGroup and source.Chat.Server not in ("broadcast", "newsletter")


def inbound_from_event(session_id: int, event: Any) -> InboundMessage | None:
    """A contact's message (neonize ``MessageEv``) as an ``InboundMessage``; None for what is
    not a contact writing to us: our own messages from the phone (``phone_message_from_event``),
    groups, status broadcasts."""
    info = event.Info
    source = info.MessageSource
    if source.IsFromMe or not _one_to_one(info):
        return None
    wa_id = _address(source.Sender, source.SenderAlt)
    if wa_id is None:
        return None
    meta: dict[str, Any] = {"linked_device": True}
    kind, text, payload = _content(session_id, info.ID, event.Message, meta)
    return InboundMessage(phone_number_id=f"session:{session_id}", wa_id=wa_id, contact_name=info.Pushname or None,
                          wamid=message_key(session_id, info.ID), timestamp=_ts(info.Timestamp), type=kind,
                          text=text, meta=meta, media_payload=payload)


def phone_message_from_event(session_id: int, event: Any) -> InboundMessage | None:
    """A message the business typed on the linked phone (or another of its devices) in a chat
    with one contact (neonize ``MessageEv`` with ``IsFromMe``), in the shape of an inbound one:
    ``wa_id`` is the contact's (the chat's), ``contact_name`` None (the push name is the
    business's own) and ``meta.from_phone`` set. None for groups, broadcasts, channels."""
    info = event.Info
    source = info.MessageSource
    if not source.IsFromMe or not _one_to_one(info):
        return None
    wa_id = _address(source.Chat, source.RecipientAlt)
    if wa_id is None:
        return None
    msg = event.Message
    # whatsmeow unwraps what another device of ours sent; a wrapped one is read the same way
    if msg.HasField("deviceSentMessage") and msg.deviceSentMessage.HasField("message"):
        msg = msg.deviceSentMessage.message
    meta: dict[str, Any] = {"linked_device": True, "from_phone": True}
    kind, text, payload = _content(session_id, info.ID, msg, meta)
    return InboundMessage(phone_number_id=f"session:{session_id}", wa_id=wa_id, contact_name=None,
                          wamid=message_key(session_id, info.ID), timestamp=_ts(info.Timestamp), type=kind,
                          text=text, meta=meta, media_payload=payload)


def _content(session_id: int, message_id: str, msg: Any, meta: dict[str, Any]) -> tuple[str, str, bytes | None]:
    """A message's kind, text (a readable line for what is not text) and, for a file, what it is
    downloaded from; a file's or other kind's details go into ``meta``."""
    if msg.conversation:
        return "text", msg.conversation, None
    if msg.HasField("extendedTextMessage"):
        return "text", msg.extendedTextMessage.text, None
    for field, name in FILE_FIELDS.items():
        if msg.HasField(field):
            return name, *_file_meta(session_id, message_id, field, name, msg, meta)
    for field, name in OTHER_FIELDS.items():
        if msg.HasField(field):
            caption = getattr(getattr(msg, field), "text", "") or ""
            meta["media_kind"] = name
            return f"linked_{name}", f"[{name}] {caption}".strip(), None
    return "unsupported", "[unsupported]", None


def _file_meta(session_id: int, message_id: str, field: str, kind: str, msg: Any,
               meta: dict[str, Any]) -> tuple[str, bytes]:
    """A file message's readable line and download payload; its type, name, caption and
    declared size go into ``meta`` under the Cloud API webhook's keys (``media.inbound_media``)."""
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

    part = getattr(msg, field)
    caption = getattr(part, "caption", "") or ""
    meta.update(media_id=message_key(session_id, message_id), mime_type=part.mimetype or "", caption=caption)
    if kind == "document" and part.fileName:
        meta["filename"] = part.fileName
    if kind == "audio" and part.PTT:
        meta["voice"] = True
    if part.fileLength:
        meta["file_size"] = int(part.fileLength)
    # what whatsmeow needs to fetch and decrypt the file (URL, direct path, media key, hashes):
    # kept with the fetch queue, never in the message shown to anyone
    keep = Message()
    getattr(keep, field).CopyFrom(part)
    for thumb in THUMBNAIL_FIELDS:
        if thumb in part.DESCRIPTOR.fields_by_name:
            getattr(keep, field).ClearField(thumb)
    return f"[{kind}] {caption}".strip(), keep.SerializeToString()


def statuses_from_receipt(session_id: int, event: Any) -> list[StatusUpdate]:
    """A receipt (neonize ``ReceiptEv``) for messages we sent: one status per message id."""
    status = RECEIPT_STATUS.get(int(event.Type))
    if status is None or event.MessageSource.IsGroup:
        return []
    to = _address(event.MessageSource.Sender, event.MessageSource.SenderAlt)
    at = _ts(event.Timestamp)
    return [StatusUpdate(phone_number_id=f"session:{session_id}", wamid=message_key(session_id, mid), status=status,
                         timestamp=at, recipient_id=to,
                         error_title="the phone reported a server error" if status == "failed" else None)
            for mid in event.MessageIDs]


def state_from_event(event: Any) -> SessionState | None:
    """Connection events (neonize ``ConnectedEv``, ``DisconnectedEv``, ``LoggedOutEv``,
    ``ConnectFailureEv``, ``StreamReplacedEv``, ``TemporaryBanEv``, ``PairStatusEv``)."""
    name = type(event).__name__
    if name == "Connected":
        return SessionState("connected")
    if name == "Disconnected":
        return SessionState("disconnected", reason="connection lost")
    if name == "LoggedOut":
        reason = FAILURE_REASONS.get(int(event.Reason), "logged_out")
        return SessionState("logged_out", reason=f"{reason} (on connect)" if event.OnConnect else reason)
    if name == "ConnectFailure":
        reason = FAILURE_REASONS.get(int(event.Reason), "connect_failure")
        if int(event.Reason) in LOGGED_OUT_REASONS:
            return SessionState("logged_out", reason=reason)
        return SessionState("disconnected", reason=f"{reason}: {event.Message}" if event.Message else reason)
    if name == "StreamReplaced":
        return SessionState("disconnected", reason="replaced: the session was opened elsewhere")
    if name == "TemporaryBan":
        return SessionState("disconnected", reason=f"temporary ban (code {int(event.Code)}, {int(event.Expire)} s)")
    if name == "PairStatus":
        if int(event.Status) == 2:  # SUCCESS
            jid = f"{event.ID.User}@{event.ID.Server}" if event.ID.User else None
            return SessionState("connected", jid=jid)
        return SessionState("disconnected", reason=f"pairing failed: {event.Error or 'unknown error'}")
    return None


class EventSink(Protocol):
    """Where a client's events go (the session service implements it)."""

    async def on_state(self, state: SessionState) -> None: ...

    async def on_inbound(self, message: InboundMessage) -> None: ...

    async def on_from_phone(self, message: InboundMessage) -> None: ...

    async def on_statuses(self, statuses: list[StatusUpdate]) -> None: ...


def to_jid(wa_id: str) -> Any:
    from neonize.proto.Neonize_pb2 import JID

    user, _, server = wa_id.partition("@")
    if not user.isdigit():
        raise CloudApiError(0, None, "not a WhatsApp contact id", state=INVALID)
    return JID(User=user, Server=server or WA_USER_SERVER, Device=0, Integrator=0, RawAgent=0, IsEmpty=False)


class LinkedDeviceClient:
    """One linked session's neonize client. ``run`` connects and returns when the connection
    ends for good (raising ``LinkedDeviceError`` with the library's reason) or the QR codes ran
    out; whatsmeow reconnects by itself after a drop once it was connected, and the caller
    calls ``run`` again after a failure. ``close`` ends it from any task.

    Go's client exists only while ``run``'s connect call is in flight; every call into it is
    guarded by that (a call on a stopped client would dereference nil inside Go and end the
    process), so a call at the wrong time is a ``LinkedDeviceError``, never a crash."""

    def __init__(self, session_id: int, dsn: str, sink: EventSink, *, max_qr_codes: int = QR_CODES_MAX) -> None:
        self.session_id = session_id
        self._dsn = dsn
        self._sink = sink
        self._max_qr = max_qr_codes
        self._qr_seen = 0
        self._client: Any = None
        self._task: asyncio.Future[Any] | None = None
        # set from the moment ``_stop_go`` asks Go to stop until the next ``run``: Go tears its
        # client down before the connect call returns, so "the call is in flight" alone is not
        # "the client exists"
        self._stopping = False
        self._linked = False  # whatsmeow said Connected (logged in) and no drop since
        self._alive = asyncio.Event()  # the client sent a first event: Go has registered it
        self.finished = asyncio.Event()  # set when the session must end: QR codes ran out, logged out

    def __repr__(self) -> str:  # the DSN may hold a password
        return f"LinkedDeviceClient(session={self.session_id})"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._stopping

    @property
    def connected(self) -> bool:
        return self._linked and self.running

    @property
    def neonize_client(self) -> Any:
        """neonize's ``NewAClient`` (its ``event`` dispatcher is what Go calls)."""
        return self._ensure_client()

    def _ensure_client(self) -> Any:
        if self._client is None:
            from neonize.aioze.client import NewAClient
            from neonize.aioze.events import (
                ConnectedEv,
                ConnectFailureEv,
                DisconnectedEv,
                LoggedOutEv,
                MessageEv,
                PairStatusEv,
                ReceiptEv,
                StreamReplacedEv,
                TemporaryBanEv,
            )

            client = NewAClient(self._dsn, uuid=f"chat-session-{self.session_id}")
            client.event.qr(self._guarded(self._on_qr))
            for kind in (ConnectedEv, DisconnectedEv, LoggedOutEv, ConnectFailureEv, StreamReplacedEv,
                         TemporaryBanEv, PairStatusEv):
                client.event(kind)(self._guarded(self._on_state))
            client.event(MessageEv)(self._guarded(self._on_message))
            client.event(ReceiptEv)(self._guarded(self._on_receipt))
            self._client = client
        return self._client

    async def run(self) -> None:
        """Connect and wait until the library gives up, ``finish`` (QR codes ran out, logged
        out) or ``close``."""
        from neonize.aioze import events as neonize_events
        from neonize.exc import NeonizeError

        client = self._ensure_client()
        if self._task is not None and not self._task.done():
            # Go still runs the previous connection (its stop outlasted our bound): connecting
            # again would replace the callbacks neonize keeps for it while Go may still call them
            raise LinkedDeviceError("the previous connection is still stopping")
        self._stopping = False
        # neonize hands Go's callbacks to the loop of the first client ever connected in the
        # process (a module global it sets once); ours is the running loop, also after a restart
        neonize_events.event_global_loop = asyncio.get_running_loop()
        self._linked = False
        self._alive.clear()
        try:
            async with go_lock():
                self._task = task = await client.connect()
                alive = asyncio.ensure_future(self._alive.wait())
                try:
                    await asyncio.wait({task, alive}, timeout=START_SETTLE_S, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    alive.cancel()
            finished = asyncio.ensure_future(self.finished.wait())
            try:
                await asyncio.wait({task, finished}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                finished.cancel()
            if task.done():
                task.result()
        except NeonizeError as exc:
            raise LinkedDeviceError(str(exc) or type(exc).__name__) from None
        finally:
            self._linked = False
            await self._stop_go()

    def finish(self) -> None:
        """End ``run`` (from an event handler: the Go client stops once ``run`` returns)."""
        self.finished.set()

    async def close(self) -> None:
        await self._stop_go()

    async def _stop_go(self) -> None:
        task = self._task
        if self._client is None or task is None:
            return
        self._stopping = True  # from here no call goes into Go's client (every call checks under the lock)
        if task.done():
            return
        try:
            async with go_lock():
                await asyncio.wait_for(self._client.stop(), CALL_TIMEOUT_S)
        except Exception as exc:
            log.warning("linked session %s: stop failed: %s", self.session_id, type(exc).__name__)
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), CALL_TIMEOUT_S)
            except Exception:  # its end is what we waited for, whatever it says
                pass

    async def pair_phone(self, phone_digits: str) -> str:
        """An 8-character code to type on the phone (WhatsApp → Linked devices → Link with phone
        number). Needs the websocket to WhatsApp up and no device linked yet."""
        from neonize.exc import PairPhoneError

        self._live()
        try:
            async with go_lock():
                client = self._live()  # again under the lock: a stop may have come first
                code: str = await asyncio.wait_for(client.PairPhone(phone_digits, True), CALL_TIMEOUT_S)
        except PairPhoneError as exc:
            raise LinkedDeviceError(str(exc)) from None
        except TimeoutError:
            raise LinkedDeviceError("no answer from WhatsApp") from None
        return code

    async def logout(self) -> None:
        """Unlink the device on WhatsApp's side (the phone's list loses it)."""
        self._live()
        try:
            async with go_lock():
                client = self._live()  # again under the lock: a stop may have come first
                await asyncio.wait_for(client.logout(), CALL_TIMEOUT_S)
        except TimeoutError:
            raise LinkedDeviceError("no answer from WhatsApp") from None
        except Exception as exc:
            raise LinkedDeviceError(str(exc) or type(exc).__name__) from None

    async def me(self) -> str | None:
        if not self.running:
            return None
        try:
            async with go_lock():
                if not self.running:
                    return None
                device = await asyncio.wait_for(self._client.get_me(), CALL_TIMEOUT_S)
            jid = device.JID
            return f"{jid.User}@{jid.Server}" if jid.User else None
        except Exception:
            return None

    async def _go(self, call: Callable[[Any], Awaitable[T]], timeout: float,
                  sent: Sequence[SendResult] = ()) -> T:
        """One call into Go's client for a send, a file or a receipt: under the Go-call lock, with
        the session checked under it (a stop that took the lock first has torn Go's client down,
        and a call on it would end the process inside Go), bounded by ``timeout``. Failures are
        ``CloudApiError``s carrying what was already ``sent``: not connected (503, passing: the
        outbox tries again once whatsmeow or our runner reconnects), timeout, network."""
        async with go_lock():
            if not self.connected:
                raise CloudApiError(503, None, "the linked session is not connected", state="session_disconnected",
                                    sent=sent)
            try:
                return await asyncio.wait_for(call(self._client), timeout)
            except TimeoutError:
                raise CloudApiError(0, None, "no answer from WhatsApp", state=TIMEOUT, sent=sent) from None
            except Exception as exc:
                raise CloudApiError(0, None, str(exc) or type(exc).__name__, state=NETWORK, sent=sent) from None

    def _live(self) -> Any:
        if not self.running:
            raise LinkedDeviceError("not connected to WhatsApp (the session is retrying)")
        return self._client

    def _guarded(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any, Any], Awaitable[None]]:
        async def run(_client: Any, event: Any) -> None:
            self._alive.set()
            try:
                await handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("linked session %s: an event was skipped", self.session_id)
        return run

    async def _on_qr(self, data: Any) -> None:
        self._qr_seen += 1
        if self._qr_seen > self._max_qr:
            self.finished.set()
            await self._sink.on_state(SessionState("qr_expired", reason=f"not scanned after {self._max_qr} codes"))
            return
        text = data.decode() if isinstance(data, bytes) else str(data)
        await self._sink.on_state(SessionState("qr", qr=text))

    async def _on_state(self, event: Any) -> None:
        state = state_from_event(event)
        if state is None:
            return
        self._linked = state.kind == "connected"
        if state.kind == "connected" and state.jid is None:
            state = SessionState("connected", jid=await self.me())
        await self._sink.on_state(state)

    async def _on_message(self, event: Any) -> None:
        inbound = inbound_from_event(self.session_id, event)
        if inbound is not None:
            await self._sink.on_inbound(inbound)
            return
        typed = phone_message_from_event(self.session_id, event)
        if typed is not None:
            await self._sink.on_from_phone(typed)

    async def _on_receipt(self, event: Any) -> None:
        statuses = statuses_from_receipt(self.session_id, event)
        if statuses:
            await self._sink.on_statuses(statuses)

    # --- sending ------------------------------------------------------------------------------

    async def send_text(self, to: str, body: str) -> list[SendResult]:
        parts = split_text(body)
        if not parts or not body.strip():
            raise CloudApiError(0, None, "a text message needs a non-empty body", state=INVALID)
        jid = to_jid(to)
        results: list[SendResult] = []
        for part in parts:
            def send(client: Any, text: str = part) -> Awaitable[Any]:
                return client.send_message(jid, text)

            resp = await self._go(send, SEND_TIMEOUT_S, results)
            results.append(SendResult(wamid=message_key(self.session_id, resp.ID), to=to))
        return results

    async def download(self, payload: bytes) -> bytes:
        """The decrypted bytes of an inbound file (``payload``: the waE2E.Message kept from its
        message). whatsmeow checks the file's SHA-256 against the message's own."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        message = Message.FromString(payload)
        data: bytes = await self._go(lambda c: c.download_any(message), MEDIA_TIMEOUT_S)
        return data

    async def send_file(self, to: str, kind: str, data: bytes, mime: str, name: str,
                        caption: str | None = None) -> SendResult:
        """Upload ``data`` (encrypted by whatsmeow) and send it as a ``kind`` message."""
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message
        from neonize.utils.enum import MediaType

        if kind not in SEND_FIELDS:
            raise CloudApiError(0, None, f"{kind} files cannot be sent", state=INVALID)
        field, media_type = SEND_FIELDS[kind]
        jid = to_jid(to)
        up = await self._go(lambda c: c.upload(data, MediaType(media_type)), MEDIA_TIMEOUT_S)
        message = Message()
        part = getattr(message, field)
        part.URL, part.directPath, part.mediaKey = up.url, up.DirectPath, up.MediaKey
        part.fileEncSHA256, part.fileSHA256, part.fileLength = up.FileEncSHA256, up.FileSHA256, up.FileLength
        part.mimetype = base_mime(mime) if kind != "audio" or base_mime(mime) != "audio/ogg" \
            else "audio/ogg; codecs=opus"
        if caption and kind in CAPTIONED:
            part.caption = caption
        if kind == "document":
            part.fileName = name
            part.title = name
        resp = await self._go(lambda c: c.send_message(jid, message), SEND_TIMEOUT_S)
        return SendResult(wamid=message_key(self.session_id, resp.ID), to=to)

    async def mark_read(self, wamid: str, to: str) -> None:
        from neonize.utils.enum import ReceiptType

        message_id = wamid.rsplit(":", 1)[-1]
        jid = to_jid(to)
        await self._go(lambda c: c.mark_read(message_id, chat=jid, sender=jid, receipt=ReceiptType.READ),
                       CALL_TIMEOUT_S)


class LinkedDeviceChannel:
    """``Channel`` over a running ``LinkedDeviceClient``: texts and files (uploaded through
    whatsmeow). Templates are a Cloud API feature (refused with state ``unsupported``; login
    codes go out as plain text instead, see the session service)."""

    kind: ChannelKind = "linked_device"

    def __init__(self, client: LinkedDeviceClient) -> None:
        self.client = client

    async def send_text(self, to: str, body: str) -> list[SendResult]:
        return await self.client.send_text(to, body)

    async def send_media(self, to: str, kind: str, file: OutboundFile, *, caption: str | None = None) -> SendResult:
        # whatsmeow encrypts a file whole: it is read into memory (at most WhatsApp's 100 MB)
        data = b"".join([chunk async for chunk in file.open()])
        return await self.client.send_file(to, kind, data, file.mime, file.name, caption)

    async def download(self, payload: bytes) -> bytes:
        return await self.client.download(payload)

    async def send_template(self, to: str, name: str, language: str,
                            components: Sequence[dict[str, Any]]) -> SendResult:
        raise unsupported("templates")

    async def mark_read(self, wamid: str, to: str) -> None:
        await self.client.mark_read(wamid, to)
