"""Files: upload, download checks, and the sweep that deletes bytes nobody can reach any more.

Upload order: sniff the first bytes -> refuse a type not allowed (nothing stored) -> stream the
rest into the store, refusing past ``MAX_UPLOAD_BYTES`` (nothing stored) -> images: size and
thumbnail from a spooled copy on disk, never from memory -> record the ``files`` row. Any failure
after the bytes are stored deletes them again.

Attaching is part of ``message:send`` (``actions/messages.py``). Downloads are authorised by the
URL's signature alone (chatcore/files.py): the URL is only ever in records served to users who
may read the message's room, so holding a valid, unexpired one is the permission.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from chatcore.errors import Forbidden, Gone, NotFound, UnsupportedType
from chatcore.events import Attachment

from ..files.content import SNIFF_BYTES, THUMB_MIME, THUMBNAILED, detect_mime, probe_image, sanitise_name, type_allowed
from ..files.service import FileService, files_of
from ..files.store import FileStore, StoredObjectMissing
from ..storage import archived as adb
from ..storage import files as fdb
from ..storage import users as udb

if TYPE_CHECKING:
    from ..context import Services

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10  # per message
ID_BYTES = 18  # 144 random bits, 24 URL-safe characters
SWEEP_BATCH = 200


def new_file_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def thumb_key(file_id: str) -> str:
    return f"{file_id}.thumb"


async def _sniff(chunks: AsyncIterator[bytes]) -> bytes:
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    return head


async def do_upload(svc: Services, user: udb.User, filename: str | None, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Store one uploaded file; its record with signed URLs (``201`` body of POST /api/v1/uploads)."""
    files = files_of(svc)
    svc.limiter.hit_batched("upload", str(user.id), svc.config.limits.messages_per_10s, 10)
    att = await store_stream(files, new_file_id(), sanitise_name(filename), chunks, files.settings.max_upload_bytes,
                             allowed=files.settings.allowed_types)
    try:
        await fdb.insert_file(svc.pool, att, user.id)
    except BaseException:
        await delete_bytes(files, att.id)
        raise
    return files.signer.sign(att).to_wire()


async def store_stream(files: FileService, file_id: str, name: str, chunks: AsyncIterator[bytes], max_bytes: int,
                       allowed: tuple[str, ...] | None) -> Attachment:
    """Stream ``chunks`` into the store under ``file_id``: the type from the first bytes (refused
    when ``allowed`` is given and does not match, before anything is stored), at most
    ``max_bytes`` (else ``TooLarge``, nothing stored), images measured and thumbnailed from a
    spooled copy on disk. The attachment's metadata; no ``files`` row (the caller writes it, and
    deletes the bytes when it cannot). Any failure here leaves nothing stored."""
    head = await _sniff(chunks)
    mime = detect_mime(head)
    if allowed is not None and not type_allowed(mime, allowed):
        raise UnsupportedType(f"files of type {mime} are not accepted here", mime=mime)
    # images are also spooled to a temporary file, for Pillow to read once stored
    spool = tempfile.NamedTemporaryFile(prefix="chat-upload-") if mime in THUMBNAILED else None

    async def stream() -> AsyncIterator[bytes]:
        for chunk in (head,):
            if spool is not None:
                await asyncio.to_thread(spool.write, chunk)
            yield chunk
        async for chunk in chunks:
            if spool is not None:
                await asyncio.to_thread(spool.write, chunk)
            yield chunk

    try:
        size = await files.store.put(file_id, stream(), max_bytes)
        try:
            return await _finish(files, Attachment(file_id, name, mime, size), spool)
        except BaseException:
            await delete_bytes(files, file_id)
            raise
    finally:
        if spool is not None:
            spool.close()


async def _finish(files: FileService, att: Attachment, spool: IO[bytes] | None) -> Attachment:
    if spool is not None:
        await asyncio.to_thread(spool.flush)
        async with files.decode_slots:
            info = await asyncio.to_thread(probe_image, Path(spool.name))
        if info is not None:
            await files.store.put(thumb_key(att.id), _one(info.thumb), len(info.thumb))
            att = Attachment(att.id, att.name, att.mime, att.size, info.width, info.height)
    return att


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def delete_bytes(files: FileService, file_id: str) -> None:
    """The original and the thumbnail of ``file_id``, from the store (idempotent)."""
    for key in (file_id, thumb_key(file_id)):
        try:
            await files.store.delete(key)
        except Exception as exc:
            log.warning("could not delete %s from the file store: %s", key, type(exc).__name__)
            raise


@dataclass(frozen=True, slots=True)
class Download:
    store: FileStore
    key: str
    name: str
    mime: str
    size: int

    def read(self, start: int, end: int) -> AsyncIterator[bytes]:
        return self.store.open(self.key, start, end)


async def open_download(svc: Services, file_id: str, variant: str, exp: str, sig: str) -> Download:
    """What a signed URL points at, after its checks: a bad or expired signature is refused
    (403), a file that is gone 404, a file whose message was deleted 410."""
    files = files_of(svc)
    if not files.signer.verify(file_id, variant, exp, sig):
        raise Forbidden("this link is invalid or has expired; reload the conversation for a fresh one")
    found = await fdb.get_servable(svc.pool, file_id)
    if found is None:
        raise NotFound("file not found")
    row, message_deleted_at = found
    if message_deleted_at is not None:
        raise Gone("the message holding this file was deleted")
    if variant == "thumb":
        if row.width is None:
            raise NotFound("this file has no thumbnail")
        key = thumb_key(row.id)
        try:
            size = await files.store.size(key)
        except StoredObjectMissing:
            raise NotFound("file not found") from None
        return Download(files.store, key, row.name, THUMB_MIME, size)
    return Download(files.store, row.id, row.name, row.mime, row.size)


async def sweep_once(svc: Services) -> int:
    """Move what nobody can reach to the trash, then delete the trash's bytes; the number of
    files whose bytes were deleted."""
    files = files_of(svc)
    s = files.settings
    await fdb.trash_orphans(svc.pool, s.orphan_ttl_s)
    await fdb.trash_of_deleted_messages(svc.pool)
    if s.archive_ttl_days is not None:
        await fdb.trash_expired(svc.pool, s.archive_ttl_days * 86400)
        await adb.prune_expired(svc.pool, s.archive_ttl_days * 86400)
    done = 0
    while ids := await fdb.trash_batch(svc.pool, SWEEP_BATCH):
        for file_id in ids:
            await delete_bytes(files, file_id)
        await fdb.forget_trashed(svc.pool, ids)
        done += len(ids)
        if len(ids) < SWEEP_BATCH:
            break
    return done


def sweep_interval_s(files: FileService) -> float:
    # often enough that an orphan outlives its TTL by at most half of it, at most once a minute
    return max(0.2, min(60.0, files.settings.orphan_ttl_s / 2))


async def run_sweep(svc: Services) -> None:
    files = files_of(svc)
    while True:
        deleted = await sweep_once(svc)
        if deleted:
            log.info("file sweep deleted %d files", deleted)
        await asyncio.sleep(sweep_interval_s(files))
