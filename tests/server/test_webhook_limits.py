"""The WhatsApp webhook endpoint under abuse: forged posts are refused from memory (no database
query), each client address is limited per minute before any check, and signed posts keep
working when an account's secret changes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from ipaddress import ip_network
from typing import Any

import asyncpg

from tests.fakes.graph_api import GraphApiFake, make_text_webhook, signed_post, signed_post_headers
from tests.services.postgres import PostgresService
from tests.support import ChatNode, Client, ServerHarness

PN, SECRET, VERIFY = "PN900", "app-secret-limits", "verify-limits"
CONTACT = "4917012399999"


async def _setup(harness: ServerHarness, graph: GraphApiFake, **config: Any) -> tuple[ChatNode, Client]:
    node = await harness.start_node(wa_graph_url=graph.base_url, **config)
    admin = await harness.user(node, role="admin")
    await _add_account(admin, SECRET)
    return node, admin


async def _add_account(admin: Client, secret: str) -> int:
    _, body = await admin.call("POST", "/api/v1/admin/wa/accounts", {
        "phone_number_id": PN, "display_phone": "+1 555 000 9999", "access_token": "EAAG-token",
        "app_secret": secret, "verify_token": VERIFY}, expect=201)
    return int(body["account"]["id"])


async def _post(harness: ServerHarness, node: ChatNode, raw: bytes, headers: dict[str, str]) -> int:
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw, headers=headers) as r:
        await r.read()
        return r.status


def _webhook(n: int) -> bytes:
    raw, _ = signed_post(SECRET, make_text_webhook(PN, CONTACT, "Ann", f"wamid.L{n}", f"message {n}"))
    return raw


async def test_unsigned_and_forged_webhook_posts_are_refused_without_touching_postgresql(
        harness: ServerHarness, graph: GraphApiFake, pg_service: PostgresService) -> None:
    node, _ = await _setup(harness, graph)
    raw = _webhook(1)
    assert await _post(harness, node, raw, signed_post_headers(SECRET, raw)) == 200
    db_name = harness.database_url.rsplit("/", 1)[-1].split("?")[0]
    admin_conn = await asyncpg.connect(pg_service.dsn)
    try:
        # the node's database goes away: no new connection, the open ones ended
        await admin_conn.execute(f'ALTER DATABASE "{db_name}" ALLOW_CONNECTIONS false')
        await admin_conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db_name)
        forged = _webhook(2)
        json = {"Content-Type": "application/json"}
        refusals = [
            json,                                                            # no header
            {**json, "X-Hub-Signature-256": ""},
            {**json, "X-Hub-Signature-256": "sha256=not-hex"},
            {**json, "X-Hub-Signature-256": "sha1=" + "0" * 40},
            signed_post_headers("a-guessed-secret", forged),                 # well formed, wrong secret
            {**signed_post_headers(SECRET, raw), "Content-Type": "application/json"},  # another body's signature
        ]
        for _ in range(5):
            for headers in refusals:
                assert await _post(harness, node, forged, headers) == 401, headers
        # and the database really is out of reach: a genuine post that must store fails
        assert await _post(harness, node, forged, signed_post_headers(SECRET, forged)) >= 500
    finally:
        await admin_conn.execute(f'ALTER DATABASE "{db_name}" ALLOW_CONNECTIONS true')
        await admin_conn.close()


async def _at_start_of_a_minute() -> None:
    """The limit counts in fixed one-minute windows: start well inside one (waits at most 15 s)."""
    if time.time() % 60 > 45:
        await asyncio.sleep(60.5 - time.time() % 60)


async def test_the_webhook_post_past_the_per_minute_limit_of_an_address_gets_429_before_any_check(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    per_min = 5
    limits = dataclasses.replace(harness.config().limits, webhook_per_min=per_min)
    node, _ = await _setup(harness, graph, limits=limits, trusted_proxies=(ip_network("127.0.0.1/32"),))
    await _at_start_of_a_minute()
    from_a = {"X-Forwarded-For": "203.0.113.7"}
    raw = _webhook(1)
    assert await _post(harness, node, raw, {**from_a, **signed_post_headers(SECRET, raw)}) == 200
    for _ in range(per_min - 1):
        assert await _post(harness, node, raw, from_a) == 401
    async with harness.http.post(node.base_url + "/webhooks/whatsapp", data=raw,
                                 headers={**from_a, **signed_post_headers(SECRET, raw)}) as r:
        body = await r.json()
        assert r.status == 429 and body["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
    async with harness.http.get(node.base_url + "/webhooks/whatsapp", headers=from_a,
                                params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}) as r:
        assert r.status == 429
    # another address is counted on its own
    assert await _post(harness, node, raw, {"X-Forwarded-For": "203.0.113.8"}) == 401


async def test_signed_posts_are_accepted_after_the_account_secret_changes(
        harness: ServerHarness, graph: GraphApiFake) -> None:
    node, admin = await _setup(harness, graph)
    raw = _webhook(1)
    assert await _post(harness, node, raw, signed_post_headers(SECRET, raw)) == 200

    # changed through this node's admin API: at once
    _, listed = await admin.call("GET", "/api/v1/admin/wa/accounts", expect=200)
    await admin.call("DELETE", f"/api/v1/admin/wa/accounts/{listed['accounts'][0]['id']}", expect=204)
    await _add_account(admin, "second-secret")
    raw = _webhook(2)
    assert await _post(harness, node, raw, signed_post_headers(SECRET, raw)) == 401
    assert await _post(harness, node, raw, signed_post_headers("second-secret", raw)) == 200

    # changed elsewhere (another node, or by hand): accepted once this node reloads, within seconds
    conn = await asyncpg.connect(harness.database_url)
    try:
        await conn.execute("UPDATE wa_accounts SET app_secret = 'third-secret'")
    finally:
        await conn.close()
    raw = _webhook(3)
    deadline = time.monotonic() + 20
    while (status := await _post(harness, node, raw, signed_post_headers("third-secret", raw))) != 200:
        assert status == 401 and time.monotonic() < deadline
        await asyncio.sleep(0.5)
    raw = _webhook(4)
    assert await _post(harness, node, raw, signed_post_headers("second-secret", raw)) == 401
    q = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "777"}
    async with harness.http.get(node.base_url + "/webhooks/whatsapp", params=q) as r:
        assert r.status == 200 and await r.text() == "777"
