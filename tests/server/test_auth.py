"""Accounts and tokens: the full cycle, refresh rotation with reuse detection, revocation,
and every kind of bad token on REST and on the Socket.IO handshake."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import socketio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.config import Config, ConfigError
from tests.support import PASSWORD, Client, ServerHarness, refused_connect


async def _login(h: ServerHarness, base: str, username: str, password: str) -> tuple[int, dict[str, Any]]:
    async with h.http.post(base + "/api/v1/auth/login", json={"username": username, "password": password}) as r:
        return r.status, await r.json()


async def _refresh(h: ServerHarness, base: str, token: str) -> tuple[int, dict[str, Any]]:
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
    rotated = Client(node.base_url, harness.http, alice.user, second)
    _, me = await rotated.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["id"] == alice.id
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
    status, other_login = await _login(harness, node.base_url, alice.user["username"], PASSWORD)
    assert status == 200
    sio = await alice.connect()
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *_: dropped.set())
    old = dict(alice.tokens)
    await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
    await asyncio.wait_for(dropped.wait(), 5)  # the open socket was closed by the server
    alice.sio = None
    for tokens in (old, other_login):
        status, body = await Client(node.base_url, harness.http, alice.user, tokens).call("GET", "/api/v1/users/me")
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert (await refused_connect(node.base_url, tokens["access_token"]))["code"] == "unauthorized"
        status, _ = await _refresh(harness, node.base_url, tokens["refresh_token"])
        assert status == 401
    # a new login works again
    status, fresh = await _login(harness, node.base_url, alice.user["username"], PASSWORD)
    assert status == 200
    await Client(node.base_url, harness.http, alice.user, fresh).call("GET", "/api/v1/users/me", expect=200)


async def test_role_change_invalidates_tokens_and_open_sockets(harness: ServerHarness) -> None:
    node = await harness.start_node()
    admin = await harness.user(node, role="admin")
    bob = await harness.user(node, role="staff")
    sio = await bob.connect()
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *_: dropped.set())
    await admin.call("PATCH", f"/api/v1/admin/users/{bob.id}", {"role": "user"}, expect=200)
    # an open socket holds the old role (and the staff channel): the server closes it
    await asyncio.wait_for(dropped.wait(), 5)
    bob.sio = None
    status, body = await bob.call("GET", "/api/v1/users/me")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert (await refused_connect(node.base_url, bob.tokens["access_token"]))["code"] == "unauthorized"
    # the refresh token carries no role: rotating it yields an access token with the new role
    status, rotated = await _refresh(harness, node.base_url, bob.tokens["refresh_token"])
    assert status == 200
    assert jwt.decode(rotated["access_token"], options={"verify_signature": False})["role"] == "user"
    _, me = await Client(node.base_url, harness.http, bob.user, rotated).call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["role"] == "user"
    status, body = await Client(node.base_url, harness.http, bob.user, rotated).call("GET", "/api/v1/admin/users")
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await admin.call("PATCH", f"/api/v1/admin/users/{bob.id}", {"role": "god"})
    assert status == 400 and body["error"]["code"] == "invalid"


def _b64(d: dict[str, Any] | bytes) -> str:
    raw = d if isinstance(d, bytes) else json.dumps(d).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand: PyJWT rightly refuses to use a PEM key as an HMAC secret, an attacker does not."""
    signing_input = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(claims)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _claims(user_id: int, **changes: object) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": str(user_id), "role": "user", "tv": 0, "typ": "access", "aud": "chat", "iss": "chat-server",
            "iat": now, "exp": now + 600}
    return {**base, **changes}


def _bad_tokens(key_dir: Path, user_id: int) -> dict[str, str]:
    now = int(time.time())
    good = _claims(user_id)
    private = (key_dir / "jwt.pem").read_bytes()
    public = (key_dir / "jwt.pub.pem").read_bytes()
    return {
        "expired": jwt.encode(_claims(user_id, iat=now - 1200, exp=now - 600), private, algorithm="EdDSA"),
        "forged_signature": jwt.encode(good, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "tampered_claims": _tamper(jwt.encode(good, private, algorithm="EdDSA"), _claims(user_id, role="admin")),
        "alg_none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(good) + ".",
        "wrong_audience": jwt.encode(_claims(user_id, aud="other"), private, algorithm="EdDSA"),
        "wrong_issuer": jwt.encode(_claims(user_id, iss="someone-else"), private, algorithm="EdDSA"),
        "hs256_with_the_public_key": _hs256(good, public),
        "hs256_with_the_public_key_stripped": _hs256(good, public.strip()),
        "refresh_typ_as_access": jwt.encode(_claims(user_id, typ="refresh"), private, algorithm="EdDSA"),
        "no_expiry": jwt.encode({k: v for k, v in good.items() if k != "exp"}, private, algorithm="EdDSA"),
        "garbage": "not.a.token",
        "empty": "",
    }


def _tamper(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(claims)}.{signature}"


async def test_a_well_formed_token_is_accepted(harness: ServerHarness) -> None:
    """The control for the bad-token test: the same claims, correctly signed, do work."""
    node = await harness.start_node()
    alice = await harness.user(node)
    key_dir = Path(harness.env["JWT_PRIVATE_KEY_FILE"]).parent
    token = jwt.encode(_claims(alice.id), (key_dir / "jwt.pem").read_bytes(), algorithm="EdDSA")
    client = Client(node.base_url, harness.http, alice.user, {"access_token": token})
    _, me = await client.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["id"] == alice.id
    await client.connect()
    await client.disconnect()


async def test_bad_tokens_are_refused_on_rest_and_on_connect(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    key_dir = Path(harness.env["JWT_PRIVATE_KEY_FILE"]).parent
    for name, token in _bad_tokens(key_dir, alice.id).items():
        async with harness.http.get(node.base_url + "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
            body = await r.json()
            assert r.status == 401 and body["error"]["code"] == "unauthorized", name
        assert (await refused_connect(node.base_url, token))["code"] == "unauthorized", name
    async with harness.http.get(node.base_url + "/api/v1/users/me") as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    async with harness.http.get(node.base_url + "/api/v1/users/me", headers={"Authorization": "Basic YTpi"}) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    # no auth object at all on the handshake
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(node.base_url, transports=["websocket"], wait_timeout=5)
    await sio.disconnect()


async def _login_statuses(harness: ServerHarness, node_url: str, forwarded_for: str, n: int) -> list[int]:
    statuses = []
    for i in range(n):
        async with harness.http.post(node_url + "/api/v1/auth/login",
                                     json={"username": f"nobody{i}-{forwarded_for}", "password": "wrong password"},
                                     headers={"X-Forwarded-For": forwarded_for}) as r:
            statuses.append(r.status)
    return statuses


async def test_per_ip_limits_use_x_forwarded_for_only_from_trusted_proxies(harness: ServerHarness) -> None:
    harness.env["RATE_LIMIT_LOGIN_PER_MIN"] = "3"
    # behind a trusted proxy (nginx on loopback here) each client has its own bucket
    harness.env["TRUSTED_PROXIES"] = "127.0.0.1/32"
    behind = await harness.start_node()
    assert await _login_statuses(harness, behind.base_url, "198.51.100.7", 4) == [401, 401, 401, 429]
    assert await _login_statuses(harness, behind.base_url, "203.0.113.9, 198.51.100.8", 3) == [401, 401, 401]
    # a client cannot pick its bucket: only the right-most untrusted hop counts
    assert await _login_statuses(harness, behind.base_url, "203.0.113.1, 198.51.100.8", 1) == [429]
    # without trusted proxies the header is ignored: everyone here is 127.0.0.1, one bucket
    harness.env["TRUSTED_PROXIES"] = ""
    direct = await harness.start_node()
    assert await _login_statuses(harness, direct.base_url, "192.0.2.1", 1) == [401]
    assert await _login_statuses(harness, direct.base_url, "192.0.2.2", 3) == [401, 401, 429]


def test_trusted_proxies_must_be_addresses_or_networks(harness: ServerHarness) -> None:
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config.from_env({**harness.env, "TRUSTED_PROXIES": "10.0.0.0/8, nginx"})
