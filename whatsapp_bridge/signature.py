"""Webhook signatures: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(app_secret: str, raw_body: bytes) -> str:
    return PREFIX + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True only for a well-formed header that matches; checked before anything is parsed."""
    if not header or not header.startswith(PREFIX) or not app_secret:
        return False
    given = header[len(PREFIX):].strip().lower()
    if len(given) != 64:
        return False
    return hmac.compare_digest(given, sign(app_secret, raw_body)[len(PREFIX):])
