"""Search continuing from PostgreSQL into the archive (real Kafka, FerretDB, chat-archive), under
the user's own access: chat-archive asks chat-server about the user whose token it is passed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.archive.conftest import ArchiveEnv, start_archive
from tests.archive.test_api_and_history import _wait_archived
from tests.support import Client, ServerHarness, make_room


async def _search(client: Client, expect: int = 200, **params: Any) -> Any:
    _, body = await client.call("GET", "/api/v1/search?" + urlencode(params), expect=expect)
    return body


async def _all_pages(client: Client, **params: Any) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Every hit of a search, page by page: [(source, body)], and the pages."""
    hits: list[tuple[str, str]] = []
    pages = []
    cursor = None
    for _ in range(20):
        page = await _search(client, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        hits += [(h["source"], h["message"]["body"]) for h in page["hits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return hits, pages
    raise AssertionError("the pages never ended")


async def test_search_continues_into_the_archive_under_the_users_own_access(harness: ServerHarness,
                                                                          archive_env: ArchiveEnv) -> None:
    asked = await harness.start_node()  # the node chat-archive asks about access
    archive = await start_archive(archive_env.config(chat_server_url=asked.base_url))
    try:
        harness.env.update({"KAFKA_BOOTSTRAP_SERVERS": archive_env.kafka.bootstrap, "HOT_RETENTION": "1s",
                            "RELAY_INTERVAL": "200ms", "ARCHIVE_URL": archive.base_url,
                            "ARCHIVE_TOPIC": archive_env.topic})
        relaying = await harness.start_node()
        alice, eve = await harness.user(relaying), await harness.user(relaying)
        public = await make_room(alice, name="open")
        private = await make_room(alice, name="closed", kind="private")
        await alice.connect()
        await alice.send(public, "an old narwhal story")
        await alice.send(public, "older narwhal news")
        await alice.send(private, "the secret narwhal")
        await _wait_archived(alice, public, 2, None)
        await _wait_archived(alice, private, 1, archive_env)
        await alice.disconnect()
        await harness.stop_node(relaying)
        node = await harness.start_node(hot_retention_s=3600.0)  # what is sent now stays hot
        for c in (alice, eve):
            c.base_url = node.base_url
        await alice.connect()
        await alice.send(public, "a fresh narwhal")

        hits, pages = await _all_pages(alice, q="narwhal", limit=2)
        assert hits[0] == ("hot", "a fresh narwhal")
        assert sorted(hits[1:]) == [("archive", "an old narwhal story"), ("archive", "older narwhal news"),
                                    ("archive", "the secret narwhal")]
        assert not any(p["archive_unavailable"] for p in pages)
        archived = next(h for p in pages for h in p["hits"] if h["source"] == "archive")
        assert [archived["snippet"][s["start"]:s["end"]] for s in archived["highlights"]] == ["narwhal"]

        # a non-member: the public room's archived hits, never the private room's
        hits, _ = await _all_pages(eve, q="narwhal")
        assert sorted(hits) == [("archive", "an old narwhal story"), ("archive", "older narwhal news"),
                                ("hot", "a fresh narwhal")]
        body = await _search(eve, expect=404, q="secret", room_id=private)
        assert body["error"]["code"] == "not_found"
        hits, _ = await _all_pages(alice, q="secret", room_id=private)
        assert hits == [("archive", "the secret narwhal")]
    finally:
        await archive.runner.cleanup()
    # the archive gone: the hot hits, and a page that says the archived ones are missing
    page = await _search(alice, q="narwhal")
    assert [(h["source"], h["message"]["body"]) for h in page["hits"]] == [("hot", "a fresh narwhal")]
    assert page["archive_unavailable"] is True and page["next_cursor"] is None
