"""The archive in MongoDB (``chat_archive.messages``, ``_id`` = message id).

Uses only what both MongoDB and FerretDB 1.x support: unique compound indexes, unordered
``insert_many`` (duplicates replaced by delete + insert), ``find`` with range filters, sort and
limit, escaped case-insensitive ``$regex`` and ``delete_many``. A TTL index is created only
where the server accepts it (detected at start); retention otherwise runs as a periodic
``delete_many`` on ``created_at``. Search stays a ``$regex`` bounded by room or author and time
on every server: ``$text`` matches stemmed words, not substrings, so using it where present
would make the same query answer differently on different servers.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import BulkWriteError, OperationFailure

from chatcore.events import Attachment, MessageRecord, Reaction, iso
from chatcore.files import FileUrlSigner

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000


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
    def __init__(self, client: AsyncMongoClient, db: str) -> None:
        self.client = client
        self.col = client[db]["messages"]
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

    async def upsert(self, docs: list[dict[str, Any]]) -> int:
        """Store by ``_id``; a redelivered document replaces the stored one.

        New documents go in with one unordered ``insert_many`` (fast everywhere); only the ones
        that already exist (duplicate key, i.e. redeliveries) are replaced one by one.
        """
        if not docs:
            return 0
        try:
            result = await self.col.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            again = [docs[e["index"]] for e in errors]
            if again:
                # replace the stored copies: delete + insert is two bulk operations on every server,
                # where per-document upserts are slow on some (FerretDB). A crash in between is
                # repaired by the redelivery that follows (offsets are committed after this).
                await self.col.delete_many({"_id": {"$in": [d["_id"] for d in again]}})
                await self.col.insert_many(again, ordered=False)
            return len(docs)

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def count(self, query: dict[str, Any] | None = None) -> int:
        return await self.col.count_documents(query or {})

    async def find(self, query: dict[str, Any], sort: list[tuple[str, int]], limit: int) -> list[dict[str, Any]]:
        return await self.col.find(query).sort(sort).limit(limit).to_list(limit)

    async def room_ids(self, query: dict[str, Any], limit: int) -> list[int]:
        """The distinct rooms of the messages ``query`` matches, at most ``limit`` of them."""
        cursor = await self.col.aggregate([{"$match": query}, {"$group": {"_id": "$room_id"}}, {"$limit": limit}])
        return [int(d["_id"]) for d in await cursor.to_list(limit)]

    async def delete_older_than(self, days: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=days)
        result = await self.col.delete_many({"created_at": {"$lt": cutoff}})
        return result.deleted_count

    @staticmethod
    def text_filter(q: str) -> dict[str, Any]:
        return {"body": {"$regex": re.escape(q), "$options": "i"}}
