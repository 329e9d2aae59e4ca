"""A socket lives only as long as its authorisation: it is ended (``session:ended {reason}``,
then a server disconnect) when its token expires without an ``auth`` renewal, when its user
logs out everywhere or changes role, and when its login's refresh family is revoked, on every
node within 2 s, also while Redis is down; and a user cannot open more than
``MAX_SOCKETS_PER_USER`` sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis.asyncio as aioredis
import socketio

from tests.services import RedisService
from tests.support import PASSWORD, ChatNode, Client, ServerHarness, refused_connect

END_WITHIN_S = 2.0  # the promise: revocation_check_s (1 s) plus the query and the disconnect


@dataclass
class Watched:
    """A real Socket.IO client that records ``session:ended`` and its disconnect."""

    sio: socketio.AsyncClient
    ended: list[dict[str, Any]] = field(default_factory=list)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    async def ended_with(self, timeout: float) -> str:
        """The reason the server gave; waits (bounded) for the event and the disconnect."""
        async with asyncio.timeout(timeout):
            await self.dropped.wait()
        assert self.ended, "disconnected without session:ended"
        return str(self.ended[0]["reason"])

    async def still_works(self) -> None:
        assert self.sio.connected and not self.ended and not self.dropped.is_set()
        ack = await self.sio.call("sync", {"cursors": {}}, timeout=10)
        assert ack["ok"], ack


class Sockets:
    def __init__(self) -> None:
        self.opened: list[socketio.AsyncClient] = []

    async def open(self, url: str, token: str, transport: str = "websocket") -> Watched:
        w = Watched(socketio.AsyncClient(reconnection=False))

        async def on_ended(data: Any = None) -> None:
            w.ended.append(data)

        w.sio.on("session:ended", on_ended)
        w.sio.on("disconnect", lambda *_: w.dropped.set())
        self.opened.append(w.sio)
        await w.sio.connect(url, auth={"token": token}, transports=[transport], wait_timeout=10)
        return w


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    s = Sockets()
    yield s
    for sio in s.opened:
        try:
            await sio.disconnect()
        except Exception:
            pass


def short_token(harness: ServerHarness, user: Client, ttl_s: int) -> str:
    """An access token of ``user`` (signed with the nodes' key) that expires in ``ttl_s``."""
    now = int(time.time())
    claims = {"sub": str(user.id), "role": user.user["role"], "tv": 0, "typ": "access", "aud": "chat",
              "iss": "chat-server", "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, Path(harness.env["JWT_PRIVATE_KEY_FILE"]).read_bytes(), algorithm="EdDSA")


async def login(harness: ServerHarness, node: ChatNode, user: Client) -> dict[str, Any]:
    async with harness.http.post(node.base_url + "/api/v1/auth/login",
                                 json={"username": user.user["username"], "password": PASSWORD}) as r:
        body = await r.json()
        assert r.status == 200, body
        return dict(body)


async def ended_metric(node: ChatNode, reason: str) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(node.base_url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(f'chat_socket_sessions_ended_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_a_socket_whose_token_expires_is_ended_with_reason_expired(harness: ServerHarness, sockets: Sockets) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    w = await sockets.open(node.base_url, short_token(harness, alice, ttl_s=2))
    assert await w.ended_with(timeout=6) == "expired"
    assert await ended_metric(node, "expired") == 1.0
    # a socket that connected with a normal token is untouched
    other = await sockets.open(node.base_url, alice.tokens["access_token"])
    await other.still_works()


async def test_a_socket_that_renews_with_auth_outlives_its_first_token(harness: ServerHarness, sockets: Sockets) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    w = await sockets.open(node.base_url, short_token(harness, alice, ttl_s=3))
    first_exp = time.time() + 3
    # a bad token, or another user's, is refused and changes nothing
    bad = await w.sio.call("auth", {"token": "nonsense"}, timeout=10)
    assert bad["ok"] is False and bad["error"]["code"] == "unauthorized"
    other = await w.sio.call("auth", {"token": bob.tokens["access_token"]}, timeout=10)
    assert other["ok"] is False and other["error"]["code"] == "forbidden"
    renewed = await w.sio.call("auth", {"token": alice.tokens["access_token"]}, timeout=10)
    assert renewed["ok"] is True and renewed["expires_at"] > first_exp + 60
    # past the first token's expiry plus two expiry ticks, the socket is still there and works
    await asyncio.sleep(max(0.0, first_exp - time.time()) + 2.5)
    await w.still_works()


async def test_logout_all_on_one_node_ends_the_users_sockets_on_another_within_two_seconds(
        harness: ServerHarness, sockets: Sockets) -> None:
    a, b = await harness.start_node(), await harness.start_node()
    alice, bob = await harness.user(a), await harness.user(a)
    on_b = await sockets.open(b.base_url, alice.tokens["access_token"])
    on_a = await sockets.open(a.base_url, alice.tokens["access_token"])
    bystander = await sockets.open(b.base_url, bob.tokens["access_token"])
    await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
    assert await on_a.ended_with(timeout=END_WITHIN_S) == "logged_out"
    assert await on_b.ended_with(timeout=END_WITHIN_S) == "logged_out"
    await bystander.still_works()
    assert await ended_metric(b, "logged_out") == 1.0


async def test_logout_all_ends_every_socket_of_every_login_on_two_nodes_with_session_ended(
        harness: ServerHarness, sockets: Sockets) -> None:
    """S4: several logins (browser tabs, a phone), several sockets each, both transports, on two
    nodes: one logout-all ends all of them with ``session:ended {reason: logged_out}`` and a
    disconnect within 2 s; nobody else's socket is touched."""
    a, b = await harness.start_node(), await harness.start_node()
    alice, bob = await harness.user(a), await harness.user(b)
    logins = [alice.tokens, await login(harness, a, alice), await login(harness, b, alice)]
    mine = [await sockets.open(node.base_url, tokens["access_token"], transport)
            for tokens in logins for node in (a, b) for transport in ("websocket", "polling")]
    others = [await sockets.open(node.base_url, bob.tokens["access_token"]) for node in (a, b)]
    await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
    reasons = await asyncio.gather(*(w.ended_with(timeout=END_WITHIN_S) for w in mine))
    assert reasons == ["logged_out"] * len(mine) == ["logged_out"] * 12
    assert all(len(w.ended) == 1 for w in mine)
    for w in others:
        await w.still_works()
    assert await ended_metric(a, "logged_out") + await ended_metric(b, "logged_out") == 12.0
    for tokens in logins:  # and none of those logins can open a socket again
        assert (await refused_connect(b.base_url, tokens["access_token"]))["code"] == "unauthorized"
    # nothing of the ended sessions holds the nodes (a polling client's last long-poll included)
    for node in (a, b):
        async with asyncio.timeout(5):
            await harness.stop_node(node)


async def test_logout_all_ends_sockets_on_other_nodes_within_two_seconds_while_redis_is_down(
        harness: ServerHarness, sockets: Sockets) -> None:
    redis = RedisService().start()  # a Redis of its own: the session one is shared
    try:
        harness.env["REDIS_URL"] = redis.url
        a, b = await harness.start_node(), await harness.start_node()
        alice = await harness.user(a)
        on_b = await sockets.open(b.base_url, alice.tokens["access_token"])
        redis.kill()
        await alice.call("POST", "/api/v1/auth/logout-all", expect=204)
        assert await on_b.ended_with(timeout=END_WITHIN_S) == "logged_out"
    finally:
        for node in list(harness.nodes):  # stop them while their Redis still exists
            await harness.stop_node(node)
        redis.cleanup()


async def test_refresh_token_reuse_ends_that_logins_sockets_on_every_node_and_not_the_users_other_login(
        harness: ServerHarness, sockets: Sockets) -> None:
    a, b = await harness.start_node(), await harness.start_node()
    alice = await harness.user(a)
    stolen = dict(alice.tokens)  # the registration's login (one refresh family)
    other_login = await login(harness, a, alice)  # a second login: another family
    this_login = await sockets.open(b.base_url, stolen["access_token"])
    this_login_here = await sockets.open(a.base_url, stolen["access_token"])
    that_login = await sockets.open(b.base_url, other_login["access_token"])
    async with harness.http.post(a.base_url + "/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}) as r:
        assert r.status == 200
    # the rotated refresh token presented again: the family is revoked, its sockets end
    async with harness.http.post(a.base_url + "/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}) as r:
        assert r.status == 401
    assert await this_login_here.ended_with(timeout=END_WITHIN_S) == "revoked"
    assert await this_login.ended_with(timeout=END_WITHIN_S) == "revoked"
    # the family's access tokens are refused from now on, the other login's still work
    assert (await refused_connect(b.base_url, stolen["access_token"]))["code"] == "unauthorized"
    await asyncio.sleep(2 * harness.config().revocation_check_s)  # a few more looks on node b
    await that_login.still_works()


async def test_logout_ends_only_that_logins_sockets_with_reason_logged_out(harness: ServerHarness, sockets: Sockets) -> None:
    a, b = await harness.start_node(), await harness.start_node()
    alice = await harness.user(a)
    other_login = await login(harness, a, alice)
    this_login = await sockets.open(b.base_url, alice.tokens["access_token"])
    that_login = await sockets.open(b.base_url, other_login["access_token"])
    await alice.call("POST", "/api/v1/auth/logout", {"refresh_token": alice.tokens["refresh_token"]}, expect=204)
    assert await this_login.ended_with(timeout=END_WITHIN_S) == "logged_out"
    await asyncio.sleep(2 * harness.config().revocation_check_s)
    await that_login.still_works()


async def test_a_role_change_ends_the_users_sockets_on_every_node_with_reason_revoked(
        harness: ServerHarness, sockets: Sockets) -> None:
    a, b = await harness.start_node(), await harness.start_node()
    admin = await harness.user(a, role="admin")
    bob = await harness.user(a, role="staff")
    on_b = await sockets.open(b.base_url, bob.tokens["access_token"])
    await admin.call("PATCH", f"/api/v1/admin/users/{bob.id}", {"role": "user"}, expect=200)
    assert await on_b.ended_with(timeout=END_WITHIN_S) == "revoked"
    assert await ended_metric(b, "revoked") == 1.0


async def test_a_users_socket_past_the_cap_is_refused_with_rate_limited_counting_every_node(
        harness: ServerHarness, sockets: Sockets) -> None:
    a, b = await harness.start_node(), await harness.start_node()
    alice = await harness.user(a)
    cap = harness.config().limits.sockets_per_user
    assert cap == 20
    token = alice.tokens["access_token"]
    opened = [await sockets.open((a if i % 2 else b).base_url, token) for i in range(cap)]
    # presence registers a socket just after its connect: wait (bounded) until all are counted
    r = aioredis.from_url(harness.env["REDIS_URL"])
    try:
        async with asyncio.timeout(10):
            while await r.hlen(f"{harness.env['REDIS_PREFIX']}presence:sockets:{alice.id}") < cap:
                await asyncio.sleep(0.05)
    finally:
        await r.aclose()
    refused = await refused_connect(a.base_url, token)
    assert refused["code"] == "rate_limited"
    assert (await refused_connect(b.base_url, token))["code"] == "rate_limited"
    # one closes: there is room for one more again
    await opened[0].sio.disconnect()
    async with asyncio.timeout(10):
        while True:
            try:
                await sockets.open(a.base_url, token)
                break
            except socketio.exceptions.ConnectionError:
                await asyncio.sleep(0.1)
