"""The ``FileStore`` interface and its local-filesystem back-end.

A store keeps opaque byte objects under keys (``server/files`` uses the upload id, and
``{id}.thumb`` for a thumbnail). It never sees a whole file at once: ``put`` consumes an async
stream of chunks and refuses past ``max_bytes`` leaving nothing behind; ``open`` yields chunks
(a byte range for audio/video seeking). Two back-ends: ``LocalFileStore`` (the embedded
default, under ``CHAT_DATA_DIR/files``) and ``S3FileStore`` (``server/files/s3.py``).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

from chatcore.errors import TooLarge

CHUNK = 256 * 1024  # bytes read or written per step: large enough to be cheap, small enough to stay flat
_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}(\.thumb)?$")


class StoredObjectMissing(LookupError):
    pass


class FileStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        """Store the stream under ``key``; its size in bytes. Past ``max_bytes``: ``TooLarge``
        and nothing stored. A failure leaves nothing stored either."""
        ...

    async def size(self, key: str) -> int:
        """The stored object's size; ``StoredObjectMissing`` when there is none."""
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (to the end when None), in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Idempotent: a missing object is not an error."""
        ...

    async def presign(self, key: str, ttl_s: int) -> str | None:
        """A URL the store itself serves for ``ttl_s`` seconds, where it can (S3); else None."""
        ...

    async def close(self) -> None: ...


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"bad file store key {key!r}")
    return key


class LocalFileStore:
    """Files under ``root``, two levels of fan-out by key prefix. Writes go to a temporary name
    and are renamed into place once complete, so a reader never sees half a file and an
    aborted upload leaves only a temporary file that the next write of the same key ignores."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    async def put(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{secrets.token_hex(4)}.part")
        size = 0
        f = await asyncio.to_thread(open, tmp, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the file is larger than {max_bytes} bytes", limit=max_bytes)
                await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(f.close)
            await asyncio.to_thread(os.replace, tmp, path)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return size

    async def size(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            raise StoredObjectMissing(key) from None

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            f = await asyncio.to_thread(open, self._path(key), "rb")
        except FileNotFoundError:
            raise StoredObjectMissing(key) from None
        try:
            await asyncio.to_thread(f.seek, start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = await asyncio.to_thread(f.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def presign(self, key: str, ttl_s: int) -> str | None:
        return None

    async def close(self) -> None:
        return None
