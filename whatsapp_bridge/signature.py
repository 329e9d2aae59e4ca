"""Webhook signatures: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.

Meta signs the exact bytes it sends with the app secret. The check runs on the raw body before
anything is parsed, so a forged request never reaches the JSON parser or the database.
"""

from __future__ import annotations

import hashlib
import hmac
import string

PREFIX = "sha256="
_HEX_LEN = 64  # SHA-256 digest, hex encoded
_HEX_DIGITS = frozenset(string.hexdigits)


def sign(app_secret: str, raw_body: bytes) -> str:
    """The header value Meta would send for ``raw_body``: ``sha256=<hex>``."""
    return PREFIX + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True only for a well-formed header whose digest matches; never raises on garbage."""
    if not app_secret or not header or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX):].strip()
    # Shape check first: hmac.compare_digest raises TypeError on non-ASCII str, and a wrong
    # length can never match anyway. Neither check depends on the secret, so no timing leak.
    if len(given) != _HEX_LEN or not _HEX_DIGITS.issuperset(given):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.lower().encode(), expected.encode())
