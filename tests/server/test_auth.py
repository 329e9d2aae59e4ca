"""Accounts and tokens: the full cycle, refresh rotation with reuse detection, revocation,
and every kind of bad token on REST and on the Socket.IO handshake."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
import socketio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support import PASSWORD, Client, ServerHarness


async def _refresh(h: ServerHarness, base: str, token: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with h.http.post(base + "/api/v1/auth/refresh", json={"refresh_token": token}) as r:
        return r.status, await r.json()


async def test_register_login_me_and_wrong_password(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node, name="alice_auth")
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["username"] == "alice_auth" and me["user"]["role"] == "user"
    async with harness.http.post(node.base_url + "/api/v1/auth/login", json={"username": "alice_auth", "password": "nope-nope"}) as r:
        body = await r.json()
        assert r.status == 401 and body["error"]["code"] == "unauthorized"
    async with harness.http.post(node.base_url + "/api/v1/auth/register", json={"username": "alice_auth", "password": PASSWORD}) as r:
        assert r.status == 409 and (await r.json())["error"]["code"] == "conflict"
    async with harness.http.post(node.base_url + "/api/v1/auth/register", json={"username": "x", "password": "short"}) as r:
        body = await r.json()
        assert r.status == 400 and body["error"]["code"] == "invalid" and body["error"]["details"]["field"] == "username"


async def test_refresh_rotates_and_reuse_revokes_the_family(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    first = alice.tokens["refresh_token"]
    status, second = await _refresh(harness, node.base_url, first)
    assert status == 200 and second["refresh_token"] != first and second["access_token"]
    # the old one again: it leaked, so the family dies, including the newest token
    status, body = await _refresh(harness, node.base_url, first)
    assert status == 401 and "reuse" in body["error"]["message"]
    status, _ = await _refresh(harness, node.base_url, second["refresh_token"])
    assert status == 401


async def test_logout_revokes_the_refresh_token(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    await alice.call("POST", "/api/v1/auth/logout", {"refresh_token": alice.tokens["refresh_token"]}, expect=204)
    status, _ = await _refresh(harness, node.base_url, alice.tokens["refresh_token"])
    assert status == 401


async def test_logout_all_refuses_old_access_tokens_on_rest_and_socket(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    await alice.connect()
    old = dict(alice.tokens)
    await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
    status, body = await alice.call("GET", "/api/v1/users/me")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    with pytest.raises(socketio.exceptions.ConnectionError):
        await Client(node.base_url, harness.http, alice.user, old).connect()
    status, _ = await _refresh(harness, node.base_url, old["refresh_token"])
    assert status == 401


async def test_role_change_invalidates_tokens(harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin = await harness.user(node, role="admin")
    bob = await harness.user(node)
    await admin.call("PATCH", f"/api/v1/admin/users/{bob.id}", {"role": "staff"}, expect=200)
    status, _ = await bob.call("GET", "/api/v1/users/me")
    assert status == 401
    status, body = await bob.call("GET", "/api/v1/admin/users")
    assert status == 401
    status, body = await admin.call("PATCH", f"/api/v1/admin/users/{bob.id}", {"role": "god"})
    assert status == 400 and body["error"]["code"] == "invalid"


def _b64(d: dict) -> str:  # type: ignore[type-arg]
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def _bad_tokens(key_dir: Path, user_id: int) -> dict[str, str]:
    now = int(time.time())
    good = {"sub": str(user_id), "role": "admin", "tv": 0, "typ": "access", "aud": "chat", "iss": "chat-server",
            "iat": now, "exp": now + 600}
    private = (key_dir / "jwt.pem").read_bytes()
    public = (key_dir / "jwt.pub.pem").read_bytes()
    return {
        "expired": jwt.encode({**good, "iat": now - 1200, "exp": now - 600}, private, algorithm="EdDSA"),
        "forged": jwt.encode(good, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "alg_none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(good) + ".",
        "wrong_audience": jwt.encode({**good, "aud": "other"}, private, algorithm="EdDSA"),
        "hs256_with_public_key": _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(good) + "." + "c2lnbmF0dXJl",
        "refresh_as_access": jwt.encode({**good, "typ": "refresh"}, private, algorithm="EdDSA"),
        "garbage": "not.a.token",
        "hs256_real": jwt.encode(good, public.decode()[:64], algorithm="HS256"),
    }


async def test_bad_tokens_are_refused_everywhere(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    key_dir = Path(harness.env["JWT_PRIVATE_KEY_FILE"]).parent
    for name, token in _bad_tokens(key_dir, alice.id).items():
        async with harness.http.get(node.base_url + "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
            assert r.status == 401 and body["error"]["code"] == "unauthorized", name
        client = Client(node.base_url, harness.http, alice.user, {"access_token": token})
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect()
    async with harness.http.get(node.base_url + "/api/v1/users/me") as r:
        assert r.status == 401
