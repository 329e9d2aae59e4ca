"""Operations endpoints and the API description."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServerHarness

CORE_ROUTES = {
    "/api/v1/auth/register": {"post"}, "/api/v1/auth/login": {"post"}, "/api/v1/auth/refresh": {"post"},
    "/api/v1/auth/logout": {"post"}, "/api/v1/auth/logout-all": {"post"}, "/api/v1/users/me": {"get"},
    "/api/v1/rooms": {"get", "post"}, "/api/v1/rooms/{id}": {"get"}, "/api/v1/rooms/{id}/members": {"post"},
    "/api/v1/rooms/{id}/messages": {"get"}, "/api/v1/dms": {"post"}, "/api/v1/admin/users": {"get"},
    "/api/v1/admin/users/{id}": {"patch"},
}


async def test_health_ready_metrics_and_openapi(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice = await harness.user(node)
    _, body = await alice.call("POST", "/api/v1/rooms", {"name": "m", "kind": "public"}, expect=201)
    await alice.connect()
    await alice.send(body["room"]["id"], "counted")
    await alice.emit("history", {"room_id": 99999999})  # one error, counted by code
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        async with s.get(node.base_url + "/healthz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with s.get(node.base_url + "/readyz") as r:
            ready = await r.json()
            assert r.status == 200 and ready == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}
        async with s.get(node.base_url + "/metrics") as r:
            assert r.status == 200 and r.content_type == "text/plain"
            samples = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
                       for fam in text_string_to_metric_families(await r.text()) for smp in fam.samples}
        assert samples[("chat_socket_connections", ())] == 1
        assert samples[("chat_messages_total", (("author_kind", "user"),))] == 1
        assert samples[("chat_socket_events_total", (("event", "message:send"), ("outcome", "ok")))] == 1
        assert samples[("chat_socket_events_total", (("event", "history"), ("outcome", "not_found")))] == 1
        assert samples[("chat_errors_total", (("code", "not_found"),))] == 1
        assert samples[("chat_message_send_seconds_count", ())] == 1
        assert any(name == "chat_message_send_seconds_bucket" for name, _ in samples)
        async with s.get(node.base_url + "/api/v1/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        assert doc["openapi"].startswith("3.") and doc["info"]["title"]
        for path, methods in CORE_ROUTES.items():
            assert methods <= set(doc["paths"].get(path, {})), path
        assert "/api/v1/wa/conversations" in doc["paths"] and "/api/v1/auth/otp/verify" in doc["paths"]
        async with s.get(node.base_url + "/api/docs") as r:
            page = await r.text()
            assert r.status == 200 and r.content_type == "text/html" and "openapi.json" in page
            assert "script-src 'self'" in r.headers["Content-Security-Policy"] and "https://" not in page
        async with s.get(node.base_url + "/api/docs/assets/swagger-ui-bundle.js") as r:
            assert r.status == 200 and "javascript" in r.content_type  # served here, not from a CDN
        async with s.get(node.base_url + "/") as r:
            assert r.status == 200 and r.headers["X-Content-Type-Options"] == "nosniff"


async def test_metrics_need_the_token_when_one_is_set(harness: ServerHarness) -> None:
    node = await harness.start_node(metrics_token="scrape-secret")
    async with aiohttp.ClientSession() as s:
        async with s.get(node.base_url + "/metrics") as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        async with s.get(node.base_url + "/metrics", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with s.get(node.base_url + "/metrics", headers={"Authorization": "Bearer scrape-secret"}) as r:
            assert r.status == 200 and "chat_socket_connections" in await r.text()
