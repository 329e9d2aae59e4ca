"""Avatars: a user's own image upload becomes their picture (PUT /api/v1/users/me/avatar), its
signed thumbnail URL travels in every user record (me, member lists, DM peers, member events),
the previous picture's bytes are swept, and the orphan sweep keeps a picture it would otherwise
delete. Real PostgreSQL and the local file store."""

from __future__ import annotations

from typing import Any

from tests.server.test_files import db_rows, fetch, png, start, stored_keys, upload, wait_until
from tests.support import Client, ServerHarness, make_room

WEBP_MAGIC = b"RIFF"


async def picture(client: Client, name: str = "me.png") -> dict[str, Any]:
    status, f = await upload(client, png(200, 120), name, "image/png")
    assert status == 201, f
    return dict(f)


async def set_avatar(client: Client, upload_id: str) -> tuple[int, Any]:
    return await client.call("PUT", "/api/v1/users/me/avatar", {"upload_id": upload_id})


async def thumbnail_of(client: Client, url: str) -> bytes:
    status, data, headers = await fetch(client, url)
    assert status == 200, (status, data)
    assert headers["Content-Type"].startswith("image/webp") and data[:4] == WEBP_MAGIC and data[8:12] == b"WEBP"
    return data


async def test_setting_a_picture_puts_its_thumbnail_url_in_me_the_member_list_and_the_dm_peer(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice, bob)
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["avatar_url"] is None
    f = await picture(alice)
    status, body = await set_avatar(alice, f["id"])
    assert status == 200, body
    assert body["user"]["avatar_url"] is not None
    thumb = await thumbnail_of(alice, body["user"]["avatar_url"])
    assert thumb == (await fetch(alice, f["thumb_url"]))[1]

    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert await thumbnail_of(alice, me["user"]["avatar_url"]) == thumb
    _, room = await bob.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
    by_id = {m["id"]: m for m in room["room"]["members"]}
    assert by_id[bob.id]["avatar_url"] is None
    assert await thumbnail_of(bob, by_id[alice.id]["avatar_url"]) == thumb  # bob holds no token in the fetch

    await bob.call("POST", "/api/v1/dms", {"user_id": alice.id})
    _, rooms = await bob.call("GET", "/api/v1/rooms", expect=200)
    dm = next(r for r in rooms["rooms"] if r["kind"] == "direct")
    assert await thumbnail_of(bob, dm["peer"]["avatar_url"]) == thumb
    _, found = await bob.call("GET", f"/api/v1/users?q={me['user']['username']}", expect=200)
    assert found["users"][0]["avatar_url"] is not None


async def test_replacing_and_removing_a_picture_trash_the_old_file_and_the_sweep_deletes_its_bytes(
        harness: ServerHarness) -> None:
    node = await start(harness, orphan_ttl_s=600.0)  # the sweep runs every minute: bytes go by the trash only
    alice = await harness.user(node)
    first, second = await picture(alice, "one.png"), await picture(alice, "two.png")
    await set_avatar(alice, first["id"])
    status, body = await set_avatar(alice, second["id"])
    assert status == 200, body
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert await thumbnail_of(alice, me["user"]["avatar_url"]) == (await fetch(alice, second["thumb_url"]))[1]
    assert [r["id"] for r in await db_rows(harness, "SELECT id FROM files")] == [second["id"]]
    assert (await fetch(alice, first["thumb_url"]))[0] == 404

    status, body = await alice.call("DELETE", "/api/v1/users/me/avatar")
    assert status == 200 and body["user"]["avatar_url"] is None, body
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["avatar_url"] is None
    assert await db_rows(harness, "SELECT id FROM files") == []
    assert (await fetch(alice, second["thumb_url"]))[0] == 404
    status, body = await alice.call("DELETE", "/api/v1/users/me/avatar")
    assert status == 200 and body["user"]["avatar_url"] is None

    # the trash is emptied by the sweep, which a restart runs at once
    await harness.stop_node(node)
    await start(harness, orphan_ttl_s=600.0)

    async def bytes_gone() -> bool:
        return stored_keys(harness) == [] and await db_rows(harness, "SELECT id FROM file_trash") == []

    await wait_until(bytes_gone, 10)


async def test_someone_elses_upload_an_unknown_id_a_non_image_and_an_attached_upload_are_refused(
        harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, mallory = await harness.user(node), await harness.user(node)
    f = await picture(alice)
    status, body = await set_avatar(mallory, f["id"])
    assert status == 403 and body["error"]["code"] == "forbidden", body
    status, body = await set_avatar(mallory, "no-such-upload")
    assert status == 400 and body["error"]["code"] == "invalid", body
    _, text = await upload(mallory, b"just some words\n", "notes.txt", "text/plain")
    status, body = await set_avatar(mallory, text["id"])
    assert status == 415 and body["error"]["code"] == "unsupported_type", body
    room_id = await make_room(mallory)
    await mallory.connect()
    sent = await mallory.emit("message:send", {"room_id": room_id, "body": "", "client_id": "a-1",
                                               "attachments": [(await picture(mallory))["id"]]})
    status, body = await set_avatar(mallory, sent["message"]["attachments"][0]["id"])
    assert status == 409 and body["error"]["code"] == "conflict", body
    _, me = await mallory.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["avatar_url"] is None
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    assert me["user"]["avatar_url"] is None


async def test_the_orphan_sweep_keeps_a_picture_and_deletes_an_unused_upload_beside_it(harness: ServerHarness) -> None:
    node = await start(harness, orphan_ttl_s=1.0)  # the sweep runs every 0.5 s
    alice = await harness.user(node)
    kept, orphan = await picture(alice, "kept.png"), await picture(alice, "orphan.png")
    status, body = await set_avatar(alice, kept["id"])
    assert status == 200, body

    async def orphan_gone() -> bool:
        return [r["id"] for r in await db_rows(harness, "SELECT id FROM files")] == [kept["id"]] \
            and orphan["id"] not in stored_keys(harness)

    await wait_until(orphan_gone, 10)
    assert sorted(stored_keys(harness)) == sorted([kept["id"], f"{kept['id']}.thumb"])
    _, me = await alice.call("GET", "/api/v1/users/me", expect=200)
    await thumbnail_of(alice, me["user"]["avatar_url"])


async def test_a_member_event_carries_the_joining_users_picture(harness: ServerHarness) -> None:
    node = await harness.start_node()
    alice, bob = await harness.user(node), await harness.user(node)
    room_id = await make_room(alice)
    await set_avatar(bob, (await picture(bob))["id"])
    await alice.connect()
    await bob.connect()
    await alice.emit("room:join", {"room_id": room_id})
    joined = await bob.emit("room:join", {"room_id": room_id})
    assert joined["ok"] is True
    event = await alice.log.wait_for("member:joined", lambda e: e["user"]["id"] == bob.id)
    await thumbnail_of(alice, event["user"]["avatar_url"])
    mine = next(m for m in joined["members"] if m["id"] == bob.id)
    assert mine["avatar_url"] == event["user"]["avatar_url"]
