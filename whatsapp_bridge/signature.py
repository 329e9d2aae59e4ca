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


def parse_signature(header: str | None) -> str | None:
    """The lower-case hex digest of a well-formed header, else None.

    Needs no secret, so a post without a well-formed header can be refused before any
    secret is looked up. Shape check first: hmac.compare_digest raises TypeError on non-ASCII
    str, and a wrong length can never match anyway; neither check depends on the secret, so no
    timing leak."""
    if not header or not header.startswith(PREFIX):
        return None
    given = header[len(PREFIX):].strip()
    if len(given) != _HEX_LEN or not _HEX_DIGITS.issuperset(given):
        return None
    return given.lower()


def verify_digest(app_secret: str, raw_body: bytes, digest: str) -> bool:
    """True when ``digest`` (from ``parse_signature``) is the HMAC of ``raw_body`` with the secret."""
    if not app_secret:
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest.encode(), expected.encode())


def verify_signature(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """True only for a well-formed header whose digest matches; never raises on garbage."""
    digest = parse_signature(header)
    return digest is not None and verify_digest(app_secret, raw_body, digest)
