"""A retried send (same client_id) is answered from the unique constraint and counted, so
retries that reach the store are visible on /metrics."""

from __future__ import annotations

import re

import aiohttp

from tests.support import ServerHarness, two_in_a_room


async def _duplicates(base_url: str) -> float:
    async with aiohttp.ClientSession() as s, s.get(base_url + "/metrics") as r:
        text = await r.text()
    found = re.search(r"^chat_message_send_retries_total (\S+)$", text, re.M)
    assert found, "chat_message_send_retries_total is missing"
    return float(found.group(1))


async def test_a_retried_send_is_stored_once_and_counted_as_a_duplicate(harness: ServerHarness) -> None:
    alice, _bob, room_id = await two_in_a_room(harness)
    first = await alice.send(room_id, "once", client_id="retry-1")
    assert await _duplicates(alice.base_url) == 0
    for _ in range(3):
        again = await alice.send(room_id, "once", client_id="retry-1")
        assert again["id"] == first["id"] and again["seq"] == first["seq"]
    assert await _duplicates(alice.base_url) == 3
