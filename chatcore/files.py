"""Signed download URLs for message attachments, shared by chat-server and chat-archive.

A URL is a capability: ``/files/{id}/{name}?exp=…&sig=…`` (``&v=thumb`` for the thumbnail),
where ``sig`` is HMAC-SHA256 over the file id, the variant and the expiry, with a secret only
the servers hold. So ``<img src>`` works without the access token, and only someone who was
handed the URL (in a message record they were allowed to read) can fetch the bytes, until it
expires. The name in the path is cosmetic (what "save as" proposes); it is not signed and not
used to find the file.

Expiries are rounded up to a whole ``EXP_STEP_S``, so the URLs signed for one file within a
step are identical and a browser's cache keeps serving the image across re-renders.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from .events import Attachment, MessageRecord

VARIANTS = ("o", "thumb")  # the original bytes, the thumbnail
EXP_STEP_S = 60
SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``; created (random, mode 0600) when missing, as the JWT keys are."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
        try:
            os.link(tmp, path)  # another process may have won the race: keep its secret
        except FileExistsError:
            pass
        tmp.unlink(missing_ok=True)
    return read_secret(path)


def read_secret(path: Path) -> bytes:
    secret = path.read_text().strip().encode()
    if len(secret) < 16:
        raise ValueError(f"{path}: the file-URL secret must be at least 16 characters")
    return secret


class FileUrlSigner:
    def __init__(self, secret: bytes, ttl_s: int, prefix: str = "/files") -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.prefix = prefix.rstrip("/")

    def _sig(self, file_id: str, variant: str, exp: int) -> str:
        mac = hmac.new(self._secret, f"{file_id}\n{variant}\n{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def url(self, file_id: str, name: str, variant: str = "o", now: float | None = None) -> str:
        exp = math.ceil(((now if now is not None else time.time()) + self.ttl_s) / EXP_STEP_S) * EXP_STEP_S
        query = f"exp={exp}&sig={self._sig(file_id, variant, exp)}"
        if variant != "o":
            query = f"v={variant}&{query}"
        return f"{self.prefix}/{quote(file_id, safe='')}/{quote(name, safe='')}?{query}"

    def verify(self, file_id: str, variant: str, exp: str, sig: str, now: float | None = None) -> bool:
        """True when ``sig`` is this server's signature of (file, variant, exp) and exp is ahead."""
        if variant not in VARIANTS or not exp.isdigit() or len(exp) > 12:
            return False
        if int(exp) < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._sig(file_id, variant, int(exp)), sig)

    def sign(self, a: Attachment) -> Attachment:
        if not a.ready:
            return a  # no bytes to serve yet (WhatsApp media being fetched, or not fetched)
        return Attachment(a.id, a.name, a.mime, a.size, a.width, a.height, url=self.url(a.id, a.name),
                          thumb_url=self.url(a.id, a.name, "thumb") if a.has_thumb else None)

    def sign_record(self, msg: MessageRecord) -> MessageRecord:
        """The record with fresh URLs on its attachments (none for a deleted message)."""
        if not msg.attachments or msg.deleted_at is not None:
            return msg
        return msg.with_attachments(tuple(self.sign(a) for a in msg.attachments))

    def sign_records(self, msgs: Iterable[MessageRecord]) -> list[MessageRecord]:
        return [self.sign_record(m) for m in msgs]
