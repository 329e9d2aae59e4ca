"""WhatsApp media in and out, through the file store.

Inbound: a contact's image, audio, video, document or sticker is stored at once with its message
(``WhatsAppService._store_inbound``), the attachment ``pending`` and a ``wa_media`` row queued in
the same transaction. After the commit a fetch starts on that node; every node also runs
``run`` (a supervised loop) that claims due rows, so a fetch whose node died, or one that no
node started, still happens. A fetch: ``GET /{media-id}`` (URL, size, SHA-256) -> refuse a size
past the bound before downloading -> stream the download into the store (images measured and
thumbnailed like uploads) -> check the SHA-256 -> the ``files`` row, the attachment ``ready`` and
the queue row in one transaction -> ``message:updated`` to the room. A failure (404, timeout,
too large, a bad checksum, a removed account) leaves the message as it is with the attachment
``unavailable``; ``retry`` (a staff route) queues it again. Nothing is fetched in the webhook
request: Meta wants its answer fast.

A linked-device contact's file (``whatsapp_bridge/linked_device.py``) takes the same path: its
row names the session instead of a number and keeps the message whatsmeow downloads the file
from. The fetch goes through the session's client, on the node that holds the session (only that
node's sweep claims the row while its lease lasts); while the session is reconnecting or
between nodes, the row stays pending and is tried again with a
doubling wait, ``LINKED_ATTEMPTS`` times in all, then ``unavailable``. Its size is checked
before the download (the size the message declares) and after it, and its type, detected from
the bytes, must fit its kind (``LINKED_INBOUND_TYPES``): a contact's app, not Meta, said what it is.

Outbound: ``check_outbound`` refuses, before the message is stored, the files WhatsApp would
refuse (type, Ogg without Opus, size: ``whatsapp_bridge/media.py``); ``send_files`` uploads
each file through the conversation's channel (the Graph API, streamed from the store, or
whatsmeow) and sends it as its kind, the text as the
first file's caption where WhatsApp shows one (else as a text message first). It runs inside
the outbox's delivery attempt, so passing failures are retried like a text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any

from chatcore.errors import Invalid, NotFound, TooLarge, UnsupportedType
from chatcore.events import ATTACHMENT_PENDING, Attachment, MessageRecord
from whatsapp_bridge.channel import Channel, OutboundFile
from whatsapp_bridge.cloud_api import CloudApiClient, CloudApiError, SendResult
from whatsapp_bridge.linked_device import LinkedDeviceChannel
from whatsapp_bridge.media import (
    CAPTION_MAX,
    CAPTIONED,
    INBOUND_LIMITS,
    LINKED_INBOUND_TYPES,
    OGG_HEAD_BYTES,
    InboundMedia,
    base_mime,
    outbound_kind,
)

from ..files.service import files_of, signed
from ..files.store import StoredObjectMissing
from ..storage import messages as mdb
from ..storage import wa_media as wdb
from ..storage import whatsapp as db
from .files import delete_bytes, new_file_id, store_stream
from .notify import emit, room_channel

if TYPE_CHECKING:
    from ..context import Services
    from .wa_sessions import LinkedSessions

log = logging.getLogger(__name__)

MEDIA_SWEEP_S = 5.0  # how often each node looks for fetches nobody has done
MEDIA_BATCH = 10
MEDIA_CONCURRENCY = 4  # fetches at once per node: each holds a download and a spooled image
MEDIA_MAX_RETRIES = 2  # client retries of each Graph call of a fetch (then: unavailable, staff retry)
FILE_MISSING = "file_missing"
LINKED_ATTEMPTS = 5  # fetches of a linked file that fail for a passing reason (then: unavailable)
LINKED_RETRY_S = 10.0  # the wait after the first of them; doubles


def pending_attachment(media: InboundMedia) -> Attachment:
    """The attachment an inbound file has until its bytes are fetched (size unknown: 0)."""
    return Attachment(new_file_id(), media.name, media.mime, 0, status=ATTACHMENT_PENDING)


def sha256_matches(expected: str, digest: bytes) -> bool:
    """Meta's SHA-256 of the file: hex from ``GET /{media-id}``, base64 in webhooks. An
    unreadable value is not held against the file."""
    if len(expected) == 64:
        try:
            return bytes.fromhex(expected) == digest
        except ValueError:
            pass
    try:
        return base64.b64decode(expected, validate=True) == digest
    except (binascii.Error, ValueError):
        return True


class WaMediaService:
    def __init__(self, svc: Services, api: CloudApiClient) -> None:
        self.svc = svc
        self.api = api
        timeout = svc.config.wa_media_timeout_s
        # a claim outlives the slowest fetch (the info call's retries plus each download attempt)
        self.lease_s = 120.0 + (MEDIA_MAX_RETRIES + 1) * timeout
        self._slots = asyncio.Semaphore(MEDIA_CONCURRENCY)
        self.linked: LinkedSessions | None = None  # set with WhatsAppService.linked

    # --- inbound ---------------------------------------------------------------------------------

    def start(self, file_id: str) -> None:
        """Fetch one file now (after its message was committed and emitted)."""
        self.svc.supervisor.spawn(f"wa-media:{file_id}", self._fetch_claimed(file_id))

    async def _fetch_claimed(self, file_id: str) -> None:
        async with self._slots:
            row = await wdb.claim(self.svc.pool, file_id, self.lease_s)
            if row is not None:
                await self._fetch(row)

    async def sweep(self) -> int:
        """Fetch the due pending files (the durable queue); how many were tried."""
        rows = await wdb.claim_due(self.svc.pool, MEDIA_BATCH, self.lease_s, self.svc.node_id)
        for row in rows:
            async with self._slots:
                await self._fetch(row)
        return len(rows)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(MEDIA_SWEEP_S)
            await self.sweep()

    async def _fetch(self, row: wdb.MediaRow) -> None:
        msg = await mdb.get_message(self.svc.pool, row.message_id)
        att = next((a for a in msg.attachments if a.id == row.file_id), None) if msg is not None else None
        if msg is None or msg.deleted_at is not None or att is None:
            await wdb.finish_unavailable(self.svc.pool, row, Attachment(row.file_id, "", "", 0), "message_gone")
            return
        try:
            if row.session_id is not None:
                stored = await self._download_linked(row, att, msg.meta)
            else:
                stored = await self._download(row, att)
        except CloudApiError as exc:
            if row.session_id is not None and exc.retryable and row.attempts < LINKED_ATTEMPTS:
                delay = LINKED_RETRY_S * 2 ** max(0, row.attempts - 1)
                log.info("linked media %s of message %s: %s, trying again in %.0fs", row.file_id, row.message_id,
                         exc.state, delay)
                await wdb.retry_later(self.svc.pool, row.file_id, delay)
                return
            error = exc.state if exc.code is None else f"{exc.state} ({exc.code})"
            log.info("WhatsApp media %s of message %s unavailable: %s", row.file_id, row.message_id, error)
            await self._publish(await wdb.finish_unavailable(self.svc.pool, row, att, error))
            return
        except (TooLarge, Invalid, UnsupportedType) as exc:  # past the size bound; an image bomb; a wrong type
            log.info("WhatsApp media %s of message %s refused: %s", row.file_id, row.message_id, exc.message)
            await self._publish(await wdb.finish_unavailable(self.svc.pool, row, att, exc.code))
            return
        ready = Attachment(att.id, att.name, stored.mime, stored.size, stored.width, stored.height)
        try:
            updated = await wdb.finish_ready(self.svc.pool, row, ready)
        except BaseException:
            await delete_bytes(files_of(self.svc), row.file_id)
            raise
        if updated is None:  # the message was deleted (or archived) while its file was fetched
            await delete_bytes(files_of(self.svc), row.file_id)
            return
        await self._publish(updated)

    async def _download_linked(self, row: wdb.MediaRow, att: Attachment, meta: dict[str, Any]) -> Attachment:
        """The file through the session's whatsmeow client (which checks its SHA-256)."""
        channel: Channel | None = None
        if self.linked is not None:
            channel = await self.linked.channel(row.session_id)  # a passing CloudApiError elsewhere
        if not isinstance(channel, LinkedDeviceChannel) or row.payload is None:
            raise CloudApiError(0, None, "the linked session was removed", state="session_removed")
        files = files_of(self.svc)
        limit = min(files.settings.max_upload_bytes, INBOUND_LIMITS.get(row.kind, files.settings.max_upload_bytes))
        declared = meta.get("file_size")
        if isinstance(declared, int) and declared > limit:
            raise TooLarge(f"the file has {declared} bytes; at most {limit} are kept", limit=limit)
        data = await channel.download(row.payload)
        if len(data) > limit:
            raise TooLarge(f"the file has {len(data)} bytes; at most {limit} are kept", limit=limit)

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return await store_stream(files, row.file_id, att.name, chunks(), limit,
                                  allowed=LINKED_INBOUND_TYPES.get(row.kind))

    async def _download(self, row: wdb.MediaRow, att: Attachment) -> Attachment:
        assert row.account_id is not None
        account = await db.get_account(self.svc.pool, row.account_id)
        if account is None:
            raise CloudApiError(0, None, "the business number was removed", state="account_removed")
        files = files_of(self.svc)
        limit = min(files.settings.max_upload_bytes, INBOUND_LIMITS.get(row.kind, files.settings.max_upload_bytes))
        info = await self.api.media_info(row.media_id, account.access_token)
        if info.file_size is not None and info.file_size > limit:
            raise TooLarge(f"the file has {info.file_size} bytes; at most {limit} are kept", limit=limit)
        digest = hashlib.sha256()

        async def chunks(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
            async for chunk in body:
                digest.update(chunk)
                yield chunk

        async with aclosing(self.api.download_media(info.url, account.access_token, limit)) as body:
            # the store's type detection decides the stored type, not Meta's mime_type
            stored = await store_stream(files, row.file_id, att.name, chunks(body), limit, allowed=None)
        if info.sha256 is not None and not sha256_matches(info.sha256, digest.digest()):
            await delete_bytes(files, row.file_id)
            raise CloudApiError(0, None, "the downloaded file does not match its SHA-256", state="checksum_mismatch")
        return stored

    async def _publish(self, msg: MessageRecord | None) -> None:
        if msg is not None:
            await emit(self.svc, "message:updated", signed(self.svc, msg).to_wire(), to=room_channel(msg.room_id))

    async def retry(self, room_id: int, file_id: str) -> MessageRecord:
        """A staff retry of a file that could not be fetched: pending again, fetched now. A file
        that is ready or already pending is left as it is. The message, signed."""
        row = await wdb.get(self.svc.pool, file_id)
        msg = await mdb.get_message(self.svc.pool, row.message_id) if row is not None else None
        if row is None or row.room_id != room_id or msg is None or msg.deleted_at is not None:
            raise NotFound("no such WhatsApp media in this conversation")
        att = next((a for a in msg.attachments if a.id == file_id), None)
        if att is None:
            raise NotFound("no such WhatsApp media in this conversation")
        if row.state == "unavailable":
            updated = await wdb.reset(self.svc.pool, row, att)
            if updated is None:
                raise NotFound("no such WhatsApp media in this conversation")
            msg = updated
            await self._publish(msg)
        if row.state != "ready":
            self.start(file_id)
        return signed(self.svc, msg)

    # --- outbound --------------------------------------------------------------------------------

    async def check_outbound(self, files: Sequence[Attachment]) -> None:
        """Refuse, before anything is stored or sent, a file WhatsApp would refuse."""
        store = files_of(self.svc).store
        for a in files:
            head = None
            if base_mime(a.mime) == "audio/ogg":
                head = b"".join([c async for c in store.open(a.id, 0, OGG_HEAD_BYTES - 1)])
            outbound_kind(a.mime, a.size, head)

    async def send_files(self, channel: Channel, to: str, msg: MessageRecord) -> list[SendResult]:
        """Each attachment as one WhatsApp message through ``channel``, in order; the text as the
        first file's caption where WhatsApp shows one, else as a text message before the files.
        A failure raises ``CloudApiError`` with ``sent`` listing what went out."""
        try:
            kinds = [outbound_kind(a.mime, a.size) for a in msg.attachments]
        except (UnsupportedType, TooLarge) as exc:  # checked before the message was stored; a net
            raise CloudApiError(0, None, exc.message, state=exc.code) from None
        text = msg.body if msg.body.strip() else ""
        as_caption = bool(text) and kinds[0] in CAPTIONED and len(text) <= CAPTION_MAX
        results: list[SendResult] = []
        store = files_of(self.svc).store
        try:
            if text and not as_caption:
                results += await channel.send_text(to, text)
            for i, (a, kind) in enumerate(zip(msg.attachments, kinds, strict=True)):
                try:
                    await store.size(a.id)
                except StoredObjectMissing:
                    raise CloudApiError(0, None, f"the file {a.name} is gone", state=FILE_MISSING) from None
                file = OutboundFile(a.mime, a.name, a.size, partial(store.open, a.id))
                results.append(await channel.send_media(to, kind, file, caption=text if i == 0 and as_caption else None))
        except CloudApiError as exc:
            exc.sent = results + exc.sent
            raise
        return results
