"""Reactions through the archive: the Kafka record carries the message's reaction summary, the
archived document keeps it, and both chat-server's history (continued into the archive) and
chat-archive's own API serve it; an archived message takes no new reactions."""

from __future__ import annotations

from tests.archive.conftest import ArchiveEnv, start_archive
from tests.archive.test_api_and_history import _get, _wait_archived
from tests.support import ServerHarness, make_room


async def test_an_archived_message_keeps_its_reactions_on_every_read_path(
        harness: ServerHarness, archive_env: ArchiveEnv) -> None:
    asked = await harness.start_node()
    archive = await start_archive(archive_env.config(chat_server_url=asked.base_url))
    try:
        # reactions are made while the message is hot (this node moves nothing)
        alice, bob = await harness.user(asked), await harness.user(asked)
        staff = await harness.user(asked, role="staff")
        room_id = await make_room(alice, bob, name="kept")
        await alice.connect()
        await bob.connect()
        msg = await alice.send(room_id, "archive my reactions")
        await bob.emit("message:react", {"id": msg["id"], "emoji": "👍🏽", "on": True})
        await alice.emit("message:react", {"id": msg["id"], "emoji": "👍🏽", "on": True})
        reacted = (await bob.emit("message:react", {"id": msg["id"], "emoji": "🧑🏻‍💻", "on": True}))["message"]
        expected = [{"emoji": "👍🏽", "count": 2, "user_ids": [bob.id, alice.id]},
                    {"emoji": "🧑🏻‍💻", "count": 1, "user_ids": [bob.id]}]
        assert reacted["reactions"] == expected
        await alice.disconnect()
        await bob.disconnect()

        # now a node whose relay moves messages older than a second
        harness.env.update({"KAFKA_BOOTSTRAP_SERVERS": archive_env.kafka.bootstrap, "HOT_RETENTION": "1s",
                            "RELAY_INTERVAL": "200ms", "ARCHIVE_URL": archive.base_url,
                            "ARCHIVE_TOPIC": archive_env.topic})
        relaying = await harness.start_node()
        alice.base_url = relaying.base_url
        bob.base_url = relaying.base_url
        await _wait_archived(alice, room_id, 1, archive_env)

        doc = await archive_env.document(msg["id"])
        assert doc is not None and doc["reactions"] == expected

        _, page = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
        [from_archive] = [m for m in page["messages"] if m["id"] == msg["id"]]
        assert from_archive["reactions"] == expected
        status, body = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/messages", staff.tokens["access_token"])
        assert status == 200, body
        [staff_view] = [m for m in body["messages"] if m["id"] == msg["id"]]
        assert staff_view["reactions"] == expected

        # the archive is read-only: the message has left PostgreSQL
        await bob.connect()
        late = await bob.emit("message:react", {"id": msg["id"], "emoji": "🎉", "on": True})
        assert late["ok"] is False and late["error"]["code"] == "not_found"
    finally:
        await archive.runner.cleanup()
