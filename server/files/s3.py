"""S3-compatible object storage behind the ``FileStore`` interface (aiobotocore).

Uploads stream as S3 multipart uploads: the stream is cut into ``PART_BYTES`` parts (S3's
minimum part size is 5 MiB), so at most one part is held in memory whatever the file's size;
a file smaller than one part goes up with one ``PutObject``. Past ``max_bytes``, or on any
failure, the multipart upload is aborted and nothing is stored. Every call is bounded by the
client's connect and read timeouts and a small retry budget.

Downloads go through chat-server (``open``), not to presigned store URLs: our route checks the
message's state (a deleted message's files are refused at once) and sets the headers that make
untrusted content safe to serve (``Content-Disposition``, ``nosniff``, ``CSP: sandbox``), which
the store would not. ``presign`` is there for callers that hand a URL to a trusted party.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from chatcore.errors import TooLarge

from .store import CHUNK, StoredObjectMissing, check_key

PART_BYTES = 5 * 1024 * 1024
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3FileStore:
    def __init__(self, *, endpoint_url: str | None, bucket: str, access_key_id: str, secret_access_key: str,
                 region: str, timeout_s: float = 30.0) -> None:
        self.bucket = bucket
        self._args: dict[str, Any] = dict(
            endpoint_url=endpoint_url, aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            region_name=region,
            config=AioConfig(connect_timeout=min(timeout_s, 10.0), read_timeout=timeout_s,
                             retries={"max_attempts": 3, "mode": "standard"},
                             s3={"addressing_style": "path"}),  # works with every S3-compatible server
        )
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self, create_bucket: bool = False) -> S3FileStore:
        self._client = await self._stack.enter_async_context(get_session().create_client("s3", **self._args))
        try:
            if create_bucket:
                try:
                    await self._client.head_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _MISSING:
                        raise
                    await self._client.create_bucket(Bucket=self.bucket)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def put(self, key: str, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
        check_key(key)
        buf = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"the file is larger than {max_bytes} bytes", limit=max_bytes)
                buf += chunk
                if len(buf) >= PART_BYTES:
                    if upload_id is None:
                        upload_id = (await self._client.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
                    part = bytes(buf[:PART_BYTES])
                    del buf[:PART_BYTES]
                    n = len(parts) + 1
                    r = await self._client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                       PartNumber=n, Body=part)
                    parts.append({"ETag": r["ETag"], "PartNumber": n})
            if upload_id is None:
                await self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buf))
                return size
            if buf:
                n = len(parts) + 1
                r = await self._client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   PartNumber=n, Body=bytes(buf))
                parts.append({"ETag": r["ETag"], "PartNumber": n})
            await self._client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                         MultipartUpload={"Parts": parts})
            return size
        except BaseException:
            if upload_id is not None:
                try:
                    await self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
                except Exception:
                    pass  # the bucket's lifecycle rule for incomplete uploads is the last net
            raise

    async def size(self, key: str) -> int:
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise StoredObjectMissing(key) from None
            raise
        return int(head["ContentLength"])

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": check_key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            obj = await self._client.get_object(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise StoredObjectMissing(key) from None
            raise
        async with obj["Body"] as body:
            while True:
                chunk = await body.read(CHUNK)
                if not chunk:
                    return
                yield chunk

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def presign(self, key: str, ttl_s: int) -> str | None:
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=ttl_s)
        return url

    async def close(self) -> None:
        await self._stack.aclose()
