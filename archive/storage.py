"""The archive in MongoDB (``chat_archive.messages``, ``_id`` = message id).

Every document carries the ``version`` of the record it came from (schema/0021 on chat-server;
documents stored before versions existed have none and count as older than any). A record is
applied only over an older version, so a redelivered or late record never overwrites a newer
one; each record's outcome is counted: ``inserted`` (new message), ``updated`` (a newer
version replaced the stored one, or a tombstone erased it), ``duplicate`` (the same version was
stored already: a redelivery), ``stale`` (an older version than the stored one), ``missing`` (a
tombstone for a message the archive does not hold, e.g. expired).

Uses only what both MongoDB and FerretDB 1.x support: unique compound indexes, unordered
``insert_many`` (new documents; the duplicates it refuses are then applied one by one, on a
version condition), ``find`` with range filters, sort and limit, escaped case-insensitive
``$regex``, ``$or``/``$exists`` filters, ``replace_one``/``update_one`` and ``delete_many``. A TTL index is created only
where the server accepts it (detected at start); retention otherwise runs as a periodic
``delete_many`` on ``created_at``. Search stays a ``$regex`` bounded by room or author and time
on every server: ``$text`` matches stemmed words, not substrings, so using it where present
would make the same query answer differently on different servers.

The query API's reads (``find``, ``aggregate``, ``count_documents``) go through ``reader``, a
client without a client-wide operation timeout, and each carries ``maxTimeMS``
(``max_time_ms``): the store stops a scan itself when the limit passes and answers
``ExecutionTimeout`` (code 50), while chat-archive still waits (the limit is under its own
timeout). Under a client-wide ``timeoutMS`` PyMongo would replace that ``maxTimeMS`` with the
time left minus one round trip, so the store's answer and chat-archive's own deadline would race.
A page is one command: its batch size is its limit, so no ``getMore`` follows (a ``getMore``
carries no ``maxTimeMS``; MongoDB counts it against the ``find``'s, FerretDB reads the whole
result in the ``find``). The consumer's writes and reads stay on ``client``, whose ``timeoutMS``
gives every command a ``maxTimeMS`` of the time left.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, OperationFailure

from chatcore.events import ARCHIVE_OP_DELETE, Attachment, MessageRecord, Reaction, iso, parse_iso
from chatcore.files import FileUrlSigner

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
OUTCOMES = ("inserted", "updated", "duplicate", "stale", "missing")


def _older_than(version: int) -> dict[str, Any]:
    """A filter for a stored version below ``version`` (no version at all is older than any)."""
    return {"$or": [{"version": {"$lt": version}}, {"version": {"$exists": False}}]}


def _version(doc: dict[str, Any]) -> int:
    return -1 if doc.get("version") is None else int(doc["version"])


def to_tombstone(record: dict[str, Any]) -> dict[str, Any]:
    """A Kafka tombstone record (validated) -> ``{_id, version, deleted_at}``."""
    deleted_at = parse_iso(str(record["deleted_at"]))
    if deleted_at is None:
        raise ValueError("deleted_at is required")
    return {"op": ARCHIVE_OP_DELETE, "_id": int(record["id"]), "room_id": int(record["room_id"]),
            "version": int(record["version"]), "deleted_at": deleted_at}


def to_doc(record: dict[str, Any]) -> dict[str, Any]:
    """A Kafka archive record (validated) -> the stored document."""
    msg = MessageRecord.from_wire(record)
    return {
        "_id": msg.id, "room_id": msg.room_id, "seq": msg.seq, "author_id": msg.author_id,
        "author_kind": msg.author_kind, "author_name": msg.author_name, "body": msg.body,
        "client_id": msg.client_id, "reply_to": msg.reply_to, "meta": msg.meta,
        "created_at": msg.created_at, "edited_at": msg.edited_at, "deleted_at": msg.deleted_at,
        # metadata only: URLs expire, so whoever serves the message signs fresh ones
        "attachments": [a.meta() for a in msg.attachments] if msg.deleted_at is None else [],
        # the summary as the record carried it when the message left PostgreSQL (reactions stop there)
        "reactions": [r.to_wire() for r in msg.reactions] if msg.deleted_at is None else [],
        "version": int(record.get("version") or 0),
    }


def to_wire(doc: dict[str, Any], signer: FileUrlSigner | None = None) -> dict[str, Any]:
    """The stored document -> the message record clients know. Attachments get signed URLs
    when this process holds the file-URL secret (``FILE_URL_SECRET_FILE``), else null ones."""
    files = [Attachment.from_wire(a) for a in doc.get("attachments") or ()] if doc.get("deleted_at") is None else []
    if signer is not None:
        files = [signer.sign(a) for a in files]
    return {
        "id": doc["_id"], "room_id": doc["room_id"], "seq": doc["seq"], "author_id": doc.get("author_id"),
        "author_kind": doc["author_kind"], "author_name": doc.get("author_name"), "body": doc.get("body", ""),
        "client_id": doc.get("client_id"), "reply_to": doc.get("reply_to"),
        "created_at": iso(doc["created_at"]), "edited_at": iso(doc.get("edited_at")),
        "deleted_at": iso(doc.get("deleted_at")), "meta": doc.get("meta") or {},
        "attachments": [a.to_wire() for a in files],
        # documents stored before reactions existed have no field
        "reactions": [Reaction.from_wire(r).to_wire() for r in doc.get("reactions") or ()]
        if doc.get("deleted_at") is None else [],
    }


class ArchiveStore:
    def __init__(self, client: AsyncMongoClient, db: str, reader: AsyncMongoClient | None = None,
                 query_time_limit_ms: int | None = None) -> None:
        self.client = client
        self.col = client[db]["messages"]
        self.reads = (reader or client)[db]["messages"]  # the query API's reads
        self.max_time_ms = query_time_limit_ms  # the store's bound on each of them; None: none
        self.has_ttl = False

    async def setup(self, ttl_days: float | None) -> None:
        await self.col.create_index([("room_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="room_seq")
        await self.col.create_index([("author_id", ASCENDING), ("created_at", ASCENDING)], name="author_time")
        if ttl_days is not None:
            # the TTL option goes on the one created_at index: MongoDB refuses a second index
            # with the same key. Refused (FerretDB 1.x, or an existing plain index) -> the
            # plain index and a periodic delete instead.
            try:
                await self.col.create_index([("created_at", ASCENDING)], name="time",
                                            expireAfterSeconds=int(ttl_days * 86400))
                self.has_ttl = True
            except OperationFailure as exc:
                log.info("archive: no TTL index (%s); retention runs as a periodic delete", exc.code)
        if not self.has_ttl:
            await self.col.create_index([("created_at", ASCENDING)], name="time")

    async def apply(self, items: list[dict[str, Any]]) -> Counter[str]:
        """Apply decoded records in their order (documents from ``to_doc``, tombstones from
        ``to_tombstone``); returns the count of each outcome.

        New documents go in with one unordered ``insert_many`` (fast everywhere); the ones it
        refuses as existing are compared with the stored version (one ``find``) and replaced, on
        the condition that the stored version is still older, only when newer. Tombstones follow,
        each an ``update_one`` on the same condition: for one message they always come after its
        document (same room key, so same partition, produced after the document was acked).
        """
        out: Counter[str] = Counter()
        docs: dict[int, dict[str, Any]] = {}
        tombstones: list[dict[str, Any]] = []
        for item in items:
            if item.get("op") == ARCHIVE_OP_DELETE:
                tombstones.append(item)
                continue
            seen = docs.get(item["_id"])
            if seen is not None:  # the same message twice in one batch: the newer one wins
                older, docs[item["_id"]] = (seen, item) if item["version"] > seen["version"] else (item, seen)
                out["duplicate" if older["version"] == docs[item["_id"]]["version"] else "stale"] += 1
            else:
                docs[item["_id"]] = item
        if docs:
            await self._apply_docs(list(docs.values()), out)
        for t in tombstones:
            out[await self._apply_tombstone(t)] += 1
        return out

    async def _apply_docs(self, docs: list[dict[str, Any]], out: Counter[str]) -> None:
        try:
            await self.col.insert_many(docs, ordered=False)
            out["inserted"] += len(docs)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            again = [docs[e["index"]] for e in errors]
        out["inserted"] += len(docs) - len(again)
        stored = {d["_id"]: _version(d) async for d in
                  self.col.find({"_id": {"$in": [d["_id"] for d in again]}}, {"version": 1})}
        for doc in again:
            held = stored.get(doc["_id"])
            if held is None:
                raise RuntimeError(f"message {doc['_id']} refused as a duplicate but not stored (room_id, seq taken?)")
            if held >= doc["version"]:
                out["duplicate" if held == doc["version"] else "stale"] += 1
                continue
            result = await self.col.replace_one({"_id": doc["_id"], **_older_than(doc["version"])}, doc)
            out["updated" if result.modified_count else "stale"] += 1

    async def _apply_tombstone(self, t: dict[str, Any]) -> str:
        erase = {"body": "", "attachments": [], "reactions": [], "deleted_at": t["deleted_at"], "version": t["version"]}
        result = await self.col.update_one({"_id": t["_id"], **_older_than(t["version"])}, {"$set": erase})
        if result.modified_count:
            return "updated"
        held = await self.col.find_one({"_id": t["_id"]}, {"version": 1})
        if held is None:
            return "missing"
        return "duplicate" if _version(held) == t["version"] else "stale"

    async def log_writes(self, outcomes: Counter[str], offsets: dict[str, int]) -> None:
        """One ``write_log`` document per applied batch (``ARCHIVE_WRITE_LOG``): what fault tests
        count, since a killed process loses its counters."""
        await self.client[self.col.database.name]["write_log"].insert_one(
            {"at": datetime.now(UTC), **{k: outcomes.get(k, 0) for k in OUTCOMES}, "offsets": offsets})

    async def log_interrupted(self, reason: str) -> None:
        """A ``write_log`` document for a consumer run that ended in an error (its last batch,
        possibly written in part, is redelivered)."""
        await self.client[self.col.database.name]["write_log"].insert_one(
            {"at": datetime.now(UTC), "interrupted": reason})

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    def _bounded(self) -> dict[str, Any]:
        return {} if self.max_time_ms is None else {"maxTimeMS": self.max_time_ms}

    async def count(self, query: dict[str, Any] | None = None) -> int:
        return await self.reads.count_documents(query or {}, **self._bounded())

    async def find(self, query: dict[str, Any], sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        cursor = self.reads.find(query).sort(sort).limit(limit).batch_size(limit)
        if self.max_time_ms is not None:
            cursor = cursor.max_time_ms(self.max_time_ms)
        return await cursor.to_list(limit)

    async def room_ids(self, query: dict[str, Any], limit: int) -> list[int]:
        """The distinct rooms of the messages ``query`` matches, at most ``limit`` of them."""
        cursor = await self.reads.aggregate([{"$match": query}, {"$group": {"_id": "$room_id"}}, {"$limit": limit}],
                                            batchSize=limit, **self._bounded())
        return [int(d["_id"]) for d in await cursor.to_list(limit)]

    async def delete_older_than(self, days: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        result = await self.col.delete_many({"created_at": {"$lt": cutoff}})
        return result.deleted_count

    @staticmethod
    def text_filter(q: str) -> dict[str, Any]:
        return {"body": {"$regex": re.escape(q), "$options": "i"}}
