"""Operations endpoints and the API description."""

from __future__ import annotations

import aiohttp

from tests.support import ServerHarness


async def test_health_ready_metrics_and_openapi(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "m", "kind": "public"}, expect=201)
    await alice.connect()
    await alice.send(body["room"]["id"], "counted")
    async with aiohttp.ClientSession() as s:
        async with s.get(node.base_url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with s.get(node.base_url + "/readyz") as r:
            ready = await r.json()
            assert r.status == 200 and ready["checks"] == {"postgres": "ok", "redis": "ok"}
        async with s.get(node.base_url + "/metrics") as r:
            text = await r.text()
            for name in ("chat_socket_connections 1.0", "chat_socket_events_total", "chat_message_send_seconds_bucket",
                         "chat_messages_total{author_kind=\"user\"} 1.0", "chat_errors_total"):
                assert name in text, name
        async with s.get(node.base_url + "/api/v1/openapi.json") as r:
            doc = await r.json()
            assert doc["openapi"].startswith("3.") and "/api/v1/rooms/{id}/messages" in doc["paths"]
            assert "/api/v1/wa/conversations" in doc["paths"] and "/api/v1/auth/otp/verify" in doc["paths"]
        async with s.get(node.base_url + "/api/docs") as r:
            assert r.status == 200 and "openapi.json" in await r.text()
        async with s.get(node.base_url + "/") as r:
            assert r.status == 200 and r.headers["X-Content-Type-Options"] == "nosniff"
