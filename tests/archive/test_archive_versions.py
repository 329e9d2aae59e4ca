"""Edits and deletions reach the archive: versioned records, applied only over older versions,
and tombstones for messages deleted after they were archived."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chatcore.errors import Archived, NotFound
from chatcore.events import Attachment, MessageRecord, iso
from server.actions.messages import do_delete_message, do_edit_message
from server.context import SERVICES
from server.storage import users as udb
from server.storage.db import create_pool
from server.storage.messages import get_message
from tests.archive.conftest import ArchiveEnv, RunningArchive, seed_messages, start_archive
from tests.archive.faults import BATCH, kill, paused, spawn_archive, stop, until_consumed, write_log
from tests.archive.test_archive_kills import _relay_env, _until_hot_rows
from tests.archive.test_relay_and_consumer import _relay
from tests.support import Client, ServerHarness

pytestmark = pytest.mark.heavy


def _message(mid: int, version: int, body: str, **extra: Any) -> bytes:
    record = {"v": 1, "id": mid, "room_id": 9, "seq": mid, "author_id": 1, "author_kind": "user", "author_name": "A",
              "body": body, "created_at": "2026-01-01T00:00:00.000Z", "edited_at": None, "deleted_at": None,
              "version": version, **extra}
    return orjson.dumps(record)


def _tombstone(mid: int, version: int) -> bytes:
    return orjson.dumps({"v": 1, "op": "delete", "id": mid, "room_id": 9, "version": version,
                         "deleted_at": "2026-03-01T00:00:00.000Z"})


async def test_archive_keeps_the_newest_version_whatever_order_and_redelivery_bring(
        archive_env: ArchiveEnv, archive_app: RunningArchive) -> None:
    from archive.app import CONSUMER

    records = [
        _message(1, 0, "first"), _message(1, 5, "edited", edited_at="2026-01-02T00:00:00.000Z"),
        _message(1, 0, "first"),  # a redelivered older version
        _message(2, 0, "to erase", attachments=[{"id": "f1", "name": "a.txt", "mime": "text/plain", "size": 3}]),
        _tombstone(2, 7), _message(2, 0, "to erase"),  # the erased message's first record again
        _tombstone(2, 7),  # a redelivered tombstone
        _message(3, 4, "same"), _message(3, 4, "same"),  # the same version twice
        _tombstone(99, 8),  # a message the archive never held
    ]
    outcomes = archive_app.app[CONSUMER].outcomes
    producer = AIOKafkaProducer(bootstrap_servers=archive_env.kafka.bootstrap)
    await producer.start()
    try:
        for n, r in enumerate(records, 1):  # one at a time, each applied before the next is sent
            await producer.send_and_wait(archive_env.topic, r, key=b"9")
            for _ in range(300):
                if sum(outcomes.values()) >= n:
                    break
                await asyncio.sleep(0.05)
    finally:
        await producer.stop()
    one, two, three = [await archive_env.document(i) for i in (1, 2, 3)]
    assert one is not None and one["body"] == "edited" and one["version"] == 5
    assert two is not None and two["body"] == "" and two["attachments"] == [] and two["deleted_at"] is not None
    assert two["version"] == 7
    assert three is not None and three["body"] == "same"
    assert await archive_env.document(99) is None
    assert dict(outcomes) == {"inserted": 3, "updated": 2, "stale": 2, "duplicate": 2, "missing": 1}


async def test_a_message_edited_between_the_relays_send_and_delete_stays_hot_and_reaches_the_archive_edited(
        database_url: str, archive_env: ArchiveEnv, archive_app: RunningArchive) -> None:
    from archive.app import CONSUMER

    await seed_messages(database_url, rooms=1, per_room=20, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=4)
    relay = _relay(pool, archive_env, batch_size=50, send_timeout_s=10)  # beside other workers: the default bound
    editor = await pool.acquire()
    try:
        room_id = await pool.fetchval("SELECT room_id FROM messages LIMIT 1")
        # the edit's transaction holds seq 5 while the relay sends, so the relay's delete waits for it
        tx = editor.transaction()
        await tx.start()
        await editor.execute("SELECT 1 FROM messages WHERE room_id = $1 AND seq = 5 FOR UPDATE", room_id)
        task = asyncio.create_task(relay.run_once())
        for _ in range(200):
            if await pool.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                   " AND query LIKE '%FOR UPDATE%'"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the relay never reached its delete")
        mid = await editor.fetchval("UPDATE messages SET body = 'edited while in flight', edited_at = now()"
                                    " WHERE room_id = $1 AND seq = 5 RETURNING id", room_id)
        await tx.commit()
        assert await task == 4  # seqs 1-4 left; 5 changed, so 5-20 stay (the hot part stays a suffix)
        assert await pool.fetchval("SELECT archived_upto_seq FROM rooms WHERE id = $1", room_id) == 4
        assert await pool.fetchval("SELECT count(*) FROM messages") == 16
        assert relay.kept_changed == 16
        while await relay.run_once():
            pass
        outcomes = archive_app.app[CONSUMER].outcomes
        for _ in range(200):
            if sum(outcomes.values()) >= 36:
                break
            await asyncio.sleep(0.05)
        doc = await archive_env.document(mid)
        assert doc is not None and doc["body"] == "edited while in flight" and doc["edited_at"] is not None
        # the edited row's second record lands over the first (updated) or, when the consumer
        # met the newer one first, the older one is refused (stale): one of the two, once
        assert (outcomes["inserted"], outcomes["duplicate"], outcomes["updated"] + outcomes["stale"]) == (20, 15, 1), \
            dict(outcomes)
    finally:
        await pool.release(editor)
        await relay.close()
        await pool.close()


def _expected(msg: MessageRecord) -> dict[str, Any]:
    deleted = msg.deleted_at is not None
    return {"body": "" if deleted else msg.body, "edited_at": iso(msg.edited_at), "deleted_at": iso(msg.deleted_at),
            "attachments": [] if deleted else [a.meta() for a in msg.attachments]}


def _stored(doc: dict[str, Any]) -> dict[str, Any]:
    return {"body": doc.get("body", ""), "edited_at": iso(doc.get("edited_at")), "deleted_at": iso(doc.get("deleted_at")),
            "attachments": [Attachment.from_wire(a).meta() for a in doc.get("attachments") or ()]}


@pytest.mark.timeout(600)  # seven process lives killed, thousands of operations
async def test_edits_and_deletions_racing_a_killed_relay_and_consumer_leave_the_archive_equal_to_postgres(
        harness: ServerHarness, database_url: str, archive_env: ArchiveEnv, tmp_path: Path) -> None:
    # 12 relay batches, as many as the four relay lives (each killed at its 2nd or 3rd) can take;
    # batches of 200 keep the run short on FerretDB-on-SQLite. Edits and deletes go on, paced,
    # until the last relay life is started, so they race every kill whatever the machine's speed.
    rooms, per_room, max_ops_per_room, batch = 4, 600, 3000, 200
    total = await seed_messages(database_url, rooms=rooms, per_room=per_room, age_s=3600)
    pool = await create_pool(database_url, timeout_s=10, min_size=1, max_size=8)
    node = await harness.start_node()  # no Kafka: its actions edit and delete, other processes relay
    svc = node.app[SERVICES] if node.app is not None else None
    assert svc is not None
    rows = await pool.fetch("SELECT id, room_id, author_id FROM messages ORDER BY id")
    # every fifth message carries a file's metadata (the relay and the tombstone must carry and erase it)
    await pool.execute("UPDATE messages SET attachments = jsonb_build_array(jsonb_build_object('id', 'f' || id,"
                       " 'name', 'a.txt', 'mime', 'text/plain', 'size', 3)) WHERE id % 5 = 0")
    final: dict[int, MessageRecord] = {}
    for r in rows:
        m = await get_message(pool, r["id"])
        assert m is not None
        final[m.id] = m
    author = await udb.get_user(pool, rows[0]["author_id"])
    assert author is not None
    history: dict[int, list[Any]] = {}
    counts = {"edited": 0, "deleted": 0, "archived_deletes": 0, "edit_refused": 0, "gone": 0}

    async def operate(ids: list[int]) -> None:
        rng = random.Random(ids[0])
        for i in range(max_ops_per_room):
            if relays_done.is_set():
                break
            # mostly near the relay's front (the oldest hot rows), some anywhere
            left = await pool.fetchval("SELECT min(id) FROM messages WHERE id = ANY($1::bigint[])", ids)
            lo = ids.index(left) if left is not None else len(ids) - 1
            mid = ids[min(len(ids) - 1, max(0, lo + rng.randint(-40, 200)))] if rng.random() < 0.8 else rng.choice(ids)
            try:
                if rng.random() < 0.7:
                    final[mid] = await do_edit_message(svc, author, mid, f"edit {i} of {mid}")
                    counts["edited"] += 1
                    history.setdefault(mid, []).append(("edit", iso(final[mid].edited_at), iso(final[mid].deleted_at)))
                else:
                    was_hot = await pool.fetchval("SELECT true FROM messages WHERE id = $1", mid)
                    final[mid] = await do_delete_message(svc, author, mid)
                    counts["deleted" if was_hot else "archived_deletes"] += 1
                    history.setdefault(mid, []).append(("del", was_hot, iso(final[mid].edited_at), iso(final[mid].deleted_at)))
            except Archived:
                counts["edit_refused"] += 1  # an archived message can be deleted, not edited
                history.setdefault(mid, []).append(("edit refused",))
            except NotFound as exc:
                counts["gone"] += 1  # deleted already
                history.setdefault(mid, []).append(("gone", str(exc)))
            await asyncio.sleep(0.02)

    by_room: dict[int, list[int]] = {}
    for r in rows:
        by_room.setdefault(r["room_id"], []).append(r["id"])
    relays_done = asyncio.Event()
    ops = asyncio.gather(*(operate(ids) for ids in by_room.values()))

    relay_kills = consumer_kills = 0

    async def relay_lives() -> None:
        nonlocal relay_kills
        for life in range(4):
            file = tmp_path / f"relay-{life}.json"
            proc = (await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env, f"relay.sent:{2 + life % 2}:{file}", batch))).process
            assert proc is not None
            state = await paused(file, proc, timeout=120)
            assert await pool.fetchval("SELECT count(*) FROM messages WHERE id = ANY($1::bigint[])",
                                       state["ids"]) == len(state["ids"])  # sent, not deleted
            kill(proc)
            relay_kills += 1
        await asyncio.to_thread(harness.spawn_node, **_relay_env(archive_env, batch=batch))
        relays_done.set()

    async def consumer_lives() -> None:
        nonlocal consumer_kills
        for life in range(3):
            file = tmp_path / f"consumer-{life}.json"
            proc = await asyncio.to_thread(spawn_archive, archive_env, tmp_path, f"consumer.written:{2 + life % 2}:{file}")
            consumer_proc.append(proc)
            await paused(file, proc, timeout=120)
            kill(proc)
            consumer_kills += 1
        consumer_proc.append(await asyncio.to_thread(spawn_archive, archive_env, tmp_path))

    consumer_proc: list[Any] = []
    try:
        await asyncio.gather(ops, relay_lives(), consumer_lives())
        assert await _until_hot_rows(pool, 0) == 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (outbox := await pool.fetchval("SELECT count(*) FROM archive_outbox")) and loop.time() < deadline:
            await asyncio.sleep(0.1)
        assert outbox == 0, f"{outbox} tombstones still in the outbox"
        # everything is in Kafka now: once the group has committed all of it, the archive is final
        # (on a loaded machine the consumer's backlog took minutes; reading before that compared
        # a snapshot the last tombstones had not reached yet)
        # a liveness bound: FerretDB-on-SQLite takes a redelivered batch at tens of records a
        # second when the suite's workers share the two cores (chat-archive then shrinks its batches)
        await until_consumed(archive_env, timeout=300)
        want = {mid: _expected(m) for mid, m in final.items()}
        got = await _all_docs(archive_env)
        log = await write_log(archive_env)
        print(f"racing edits and deletes: {total} messages, ops {counts}, relay kills {relay_kills}, consumer kills "
              f"{consumer_kills}, write log {dict(log)}")
        wrong = [mid for mid in want if got.get(mid) != want[mid]]
        for mid in wrong[:3]:
            print("MISMATCH", mid, want[mid], got.get(mid), history.get(mid),
                  await pool.fetchrow("SELECT * FROM archived_messages WHERE id = $1", mid))
        assert not wrong, [(mid, want[mid], got.get(mid)) for mid in wrong[:5]]
        assert len(got) == total
        # each message inserted once; a write cut short by its timeout (logged as interrupted) is
        # redelivered, so its inserts show as duplicates instead
        assert log["inserted"] == total or (log["interrupted"] and log["inserted"] < total)
        # duplicates come from kills (one batch each), interrupted writes, and the relay's own
        # re-sends: a row changed between its send and its delete keeps itself and the later rows
        # of its room hot, and those unchanged later rows go again (each relay's log counts them)
        kept = sum(int(m.group(1)) for f in harness.tmp.glob("node-*.log")
                   for m in re.finditer(r"relay: (\d+) of \d+ sent messages changed meanwhile", f.read_text()))
        print(f"relay re-sent {kept} rows it kept hot")
        assert log["duplicate"] <= (relay_kills + consumer_kills + log["interrupted"]) * BATCH + kept
        assert counts["archived_deletes"] > 0 and counts["edit_refused"] > 0 and log["updated"] > 0
    finally:
        for p in consumer_proc:
            stop(p)
        await pool.close()


async def _all_docs(env: ArchiveEnv) -> dict[int, dict[str, Any]]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient = AsyncMongoClient(env.ferret.url, serverSelectionTimeoutMS=5000)
    try:
        return {d["_id"]: _stored(d) async for d in client[env.db]["messages"].find({})}
    finally:
        await client.close()


async def _get(base: str, path: str, token: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(base + path, params=params,
                                                   headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


async def test_a_user_deletes_an_archived_message_and_it_leaves_archive_search_and_export(
        harness: ServerHarness, archive_env: ArchiveEnv) -> None:
    asked = await harness.start_node()
    archive = await start_archive(archive_env.config(chat_server_url=asked.base_url))
    harness.env.update({"KAFKA_BOOTSTRAP_SERVERS": archive_env.kafka.bootstrap, "HOT_RETENTION": "1s",
                        "RELAY_INTERVAL": "200ms", "ARCHIVE_URL": archive.base_url, "ARCHIVE_TOPIC": archive_env.topic})
    node = await harness.start_node()
    try:
        alice, bob = await harness.user(node), await harness.user(node)
        _, body = await alice.call("POST", "/api/v1/rooms", {"name": "old", "kind": "public", "members": [bob.id]},
                                  expect=201)
        room_id = body["room"]["id"]
        await alice.connect()
        await bob.connect()
        secret = await alice.send(room_id, "the secret plan xyzzy")
        await alice.send(room_id, "an ordinary line")
        await _until_archived(alice, room_id, 2, archive_env)
        token = alice.tokens["access_token"]
        assert (await _get(archive.base_url, "/archive/v1/search", token, q="xyzzy", room_id=room_id))[1]["messages"]

        edit = await alice.emit("message:edit", {"id": secret["id"], "body": "changed"})
        assert not edit["ok"] and edit["error"]["code"] == "archived"
        refused = await bob.emit("message:delete", {"id": secret["id"]})
        assert not refused["ok"] and refused["error"]["code"] == "forbidden"
        ack = await alice.emit("message:delete", {"id": secret["id"]})
        assert ack["ok"] and ack["message"]["deleted_at"] and ack["message"]["body"] == ""
        again = await alice.emit("message:delete", {"id": secret["id"]})
        assert not again["ok"] and again["error"]["code"] == "not_found"
        await bob.log.wait_for("message:updated", lambda m: m["id"] == secret["id"] and m["deleted_at"])

        for _ in range(150):
            doc = await archive_env.document(secret["id"])
            if doc is not None and doc.get("deleted_at") is not None:
                break
            await asyncio.sleep(0.2)
        assert doc is not None and doc["body"] == "" and doc["deleted_at"] is not None
        _, found = await _get(archive.base_url, "/archive/v1/search", token, q="xyzzy", room_id=room_id)
        assert found["messages"] == []
        _, export = await _get(archive.base_url, f"/archive/v1/rooms/{room_id}/export", token)
        assert "xyzzy" not in export and str(secret["id"]) in export  # a tombstone, without its text
        _, hist = await alice.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
        gone = next(m for m in hist["messages"] if m["id"] == secret["id"])
        assert gone["body"] == "" and gone["deleted_at"]
    finally:
        await archive.runner.cleanup()


async def _until_archived(alice: Client, room_id: int, upto: int, env: ArchiveEnv) -> None:
    for _ in range(150):
        _, room = await alice.call("GET", f"/api/v1/rooms/{room_id}", expect=200)
        if room["room"]["archived_upto_seq"] >= upto and (await env.count())[0] >= upto:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("not archived")
