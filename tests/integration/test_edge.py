"""What nginx.conf adds at the edge, checked through Debian's nginx: caching of the built assets,
security headers (once each, on nginx's own error responses too), request-size and rate limits,
what stays private (/metrics), and ``/archive/`` routed to chat-archive on real Kafka and a
MongoDB-protocol server."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.integration.conftest import ASSET_NAME, Edge
from tests.integration.edge import EdgeClient, eventually, session_from
from tests.support import ServerHarness

YEAR_IMMUTABLE = "public, max-age=31536000, immutable"


def one(headers: Any, name: str) -> str:
    values = headers.getall(name, [])
    assert len(values) == 1, (name, values)
    return str(values[0])


async def test_assets_are_cached_for_a_year_and_every_security_header_appears_once(edge: Edge) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{edge.base_url}/assets/{ASSET_NAME}", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.status == 200
            assert one(r.headers, "Cache-Control") == YEAR_IMMUTABLE
            assert one(r.headers, "Content-Encoding") == "gzip"
            assert one(r.headers, "X-Content-Type-Options") == "nosniff"
            assert one(r.headers, "X-Frame-Options") == "DENY"
            assert one(r.headers, "Server") == "nginx"  # no version
            assert "console.log" in await r.text()
        async with s.get(edge.base_url + "/") as r:
            assert r.status == 200 and r.content_type == "text/html"
            assert one(r.headers, "Cache-Control") == "no-cache"  # the page itself always revalidates
            assert "script-src 'self'" in one(r.headers, "Content-Security-Policy")  # the app's, on the page itself
            for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Permissions-Policy"):
                one(r.headers, name)  # the app's or nginx's, never both
            assert "Strict-Transport-Security" not in r.headers  # plain HTTP here: no HSTS


async def test_metrics_stay_private_at_the_edge(edge: Edge) -> None:
    node = edge.nodes["node-a"]
    async with aiohttp.ClientSession() as s:
        async with s.get(edge.base_url + "/metrics") as r:
            assert r.status == 404
        async with s.get(node.base_url + "/metrics") as r:
            assert r.status == 200  # scraped on the node itself


async def test_oversized_requests_and_login_bursts_are_refused_by_nginx_with_security_headers(edge: Edge) -> None:
    addr = await edge.addr("node-a")
    async with session_from(addr) as s:
        big = {"username": "x", "password": "y" * (200 * 1024)}
        async with s.post(edge.base_url + "/api/v1/auth/login", json=big) as r:
            assert r.status == 413
            assert one(r.headers, "X-Content-Type-Options") == "nosniff"

        async def login() -> tuple[int, Any]:
            async with s.post(edge.base_url + "/api/v1/auth/login", json={"username": "nobody", "password": "wrong-password"}) as r:
                await r.read()
                return r.status, r.headers

        results = await asyncio.gather(*(login() for _ in range(30)))
    statuses = [status for status, _ in results]
    assert set(statuses) == {401, 429}, statuses  # a burst of 10 passes, the rest waits its turn
    limited = next(headers for status, headers in results if status == 429)
    assert one(limited, "X-Frame-Options") == "DENY"


async def test_archive_path_reaches_chat_archive_with_messages_relayed_through_kafka(
        harness: ServerHarness, archive_edge: Edge) -> None:
    edge = archive_edge
    node = edge.nodes["node-a"]
    alice = await harness.user(node)
    staff = await harness.user(node, role="staff")
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "archived", "kind": "public"}, expect=201)
    room_id = int(body["room"]["id"])
    client = await EdgeClient(alice, await edge.addr("node-b"), "websocket").connect(edge.base_url)
    try:
        sent = [await client.send(room_id, f"for the archive {i}") for i in range(3)]
    finally:
        await client.close()

    async with aiohttp.ClientSession() as s:
        # the browser finds chat-archive on the same origin, under /archive/
        async with s.get(edge.base_url + "/api/v1/archive/config", headers=alice.auth) as r:
            assert r.status == 200
            assert await r.json() == {"enabled": True, "base_url": ""}

        url = f"{edge.base_url}/archive/v1/rooms/{room_id}/messages"

        async def archived() -> list[int]:
            async with s.get(url, headers=staff.auth) as r:
                assert r.status == 200, await r.text()
                ids = [m["id"] for m in (await r.json())["messages"]]
                return ids if len(ids) == len(sent) else []

        # relayed after HOT_RETENTION (1 s): PostgreSQL -> Kafka -> chat-archive -> MongoDB
        assert await eventually(archived, timeout=30) == [m["id"] for m in sent]
        async with s.get(url) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"  # chat-archive's answer, not nginx's
