"""``FileService``: the file store, the URL signer and the upload settings, built once per process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatcore.events import MessageRecord
from chatcore.files import FileUrlSigner, load_or_create_secret, read_secret

from ..config import Config, FileSettings
from .store import FileStore, LocalFileStore

if TYPE_CHECKING:
    from ..context import Services

FILES = "files"  # key in Services.extras


@dataclass
class FileService:
    store: FileStore
    signer: FileUrlSigner
    settings: FileSettings
    # one image decode at a time per node: a large image's pixels are the biggest memory cost here
    decode_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


async def build_file_service(config: Config) -> FileService:
    s = config.files
    if s.url_secret_file is not None:
        secret = read_secret(s.url_secret_file)
    else:
        # the embedded default generates its own secret, like the JWT keys; nodes that serve
        # each other's URLs must share it (FILE_URL_SECRET_FILE)
        secret = load_or_create_secret(config.data_dir / "keys" / "file-url.secret")
    store: FileStore
    if s.store == "s3":
        from .s3 import S3FileStore

        assert s.s3_bucket and s.s3_access_key_id and s.s3_secret_access_key
        store = await S3FileStore(endpoint_url=s.s3_endpoint_url, bucket=s.s3_bucket, access_key_id=s.s3_access_key_id,
                                  secret_access_key=s.s3_secret_access_key, region=s.s3_region).start(create_bucket=True)
    else:
        store = LocalFileStore(config.data_dir / "files")
    return FileService(store, FileUrlSigner(secret, s.url_ttl_s), s)


def files_of(svc: Services) -> FileService:
    files: FileService = svc.extras[FILES]
    return files


def signed(svc: Services, msg: MessageRecord) -> MessageRecord:
    """``msg`` with fresh download URLs on its attachments: call it on every record served."""
    return files_of(svc).signer.sign_record(msg)


def signed_wire(svc: Services, msgs: Iterable[MessageRecord]) -> list[dict[str, Any]]:
    signer = files_of(svc).signer
    return [signer.sign_record(m).to_wire() for m in msgs]
