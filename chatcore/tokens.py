"""JWT access tokens, signed with Ed25519 (EdDSA).

chat-server holds the private key and issues tokens; chat-archive (and any other service)
holds only the public key and verifies them. The algorithm is pinned on verify, so
``alg=none`` and HS256-with-the-public-key forgeries are refused; audience, issuer, expiry
and token type are required claims.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import Unauthorized

ALGORITHM = "EdDSA"
AUDIENCE = "chat"
ISSUER = "chat-server"
ACCESS_TTL_S = 15 * 60  # short-lived; clients refresh with the rotating refresh token


def bearer_matches(authorization: str, secret: str) -> bool:
    """Whether an ``Authorization`` header carries ``secret`` as its bearer token (constant time)."""
    return hmac.compare_digest(authorization.encode(), f"Bearer {secret}".encode())


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    role: str
    token_version: int
    expires_at: int
    family: str | None = None  # the refresh-token family (one login) this token was issued for


def generate_keypair(private_path: Path, public_path: Path) -> None:
    """Write a new Ed25519 key pair (PEM) unless both files exist already."""
    if private_path.exists() and public_path.exists():
        return
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


class TokenVerifier:
    def __init__(self, public_key_pem: bytes) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem)

    def verify(self, token: str | None) -> AccessClaims:
        if not token or not isinstance(token, str):
            raise Unauthorized("missing token")
        try:
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        if claims.get("typ") != "access":
            raise Unauthorized("not an access token")
        try:
            return AccessClaims(
                user_id=int(claims["sub"]),
                role=str(claims["role"]),
                token_version=int(claims["tv"]),
                expires_at=int(claims["exp"]),
                family=str(claims["fam"]) if claims.get("fam") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise Unauthorized("invalid token claims") from exc


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, ttl_s: int = ACCESS_TTL_S) -> None:
        self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        self.ttl_s = ttl_s

    def issue(self, user_id: int, role: str, token_version: int, family: str | None = None, ttl_s: int | None = None) -> str:
        """An access token; ``family`` names the login (refresh-token family) it belongs to, so
        revoking that login can end the sockets it opened. ``ttl_s`` overrides the lifetime."""
        now = int(time.time())
        payload: dict[str, object] = {
            "sub": str(user_id),
            "role": role,
            "tv": token_version,
            "typ": "access",
            "aud": AUDIENCE,
            "iss": ISSUER,
            "iat": now,
            "exp": now + (self.ttl_s if ttl_s is None else ttl_s),
        }
        if family is not None:
            payload["fam"] = family
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)  # type: ignore[arg-type]
