"""Messages the business types on the linked phone, on real PostgreSQL and Redis with the real
neonize client: its dispatcher fed neonize's own event types, the client's calls that reach
WhatsApp's servers replaced by ``FakePhone`` (``test_wa_linked_media``). They show in the
conversation they belong to, once, as sent, and the contact's receipts tick them."""

from __future__ import annotations

import time

import asyncpg
from neonize.proto.Neonize_pb2 import JID, MessageInfo, MessageSource
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from tests.server.test_wa_linked_media import linked_conversation
from tests.server.test_wa_sessions import CONTACT, feed, receipt_event, running_session, service, text_event
from tests.support import ServerHarness
from whatsapp_bridge.linked_device import phone_message_from_event

OURS = "4915100000001"  # FakePhone's own number


def typed_event(message_id: str, body: str, *, to: str = CONTACT) -> MessageEv:
    """What whatsmeow hands over for a message typed on the phone: from us, in the contact's chat."""
    source = MessageSource(Chat=JID(User=to, Server="s.whatsapp.net"), Sender=JID(User=OURS, Server="s.whatsapp.net"),
                           IsFromMe=True, IsGroup=False)
    info = MessageInfo(MessageSource=source, ID=message_id, Pushname="Shop phone", Timestamp=int(time.time()), Type="text")
    return MessageEv(Info=info, Message=E2EMessage(conversation=body))


async def test_a_message_typed_on_the_phone_shows_once_in_its_conversation_and_ticks_with_the_contacts_receipts(
        harness: ServerHarness) -> None:
    node, staff, sid, room_id, phone = await linked_conversation(harness)
    wamid = f"ld:{sid}:PH1"
    _, before = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}", expect=200)
    await feed(node, sid, typed_event("PH1", "On my way, 10 minutes"))
    shown = await staff.log.wait_for("message", lambda m: m["meta"].get("wamid") == wamid, 10)
    # the business's message under the session's name, not the contact's and not the push name
    assert (shown["author_kind"], shown["author_id"], shown["author_name"], shown["body"]) == \
        ("user", None, "front desk", "On my way, 10 minutes")
    assert shown["meta"]["from_phone"] is True
    # the conversation's preview is the phone's message, and its state is as it was
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["room_id"] == room_id and (
        c["last_message"] or {}).get("id") == shown["id"], 10)
    state = ("status", "assignee", "ai_enabled", "mode", "queue")
    assert {k: conv[k] for k in state} == {k: before["conversation"][k] for k in state}
    _, timeline = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}/events", expect=200)
    firsts = [e for e in timeline["events"] if e["kind"] == "first_response"]
    assert [(e["actor"], e["meta"]) for e in firsts] == [(None, {"by": "phone"})]  # nobody had answered before
    # whatsmeow hands it over again (a reconnect's offline sync), then the contact reads it
    await feed(node, sid, typed_event("PH1", "On my way, 10 minutes"))
    await feed(node, sid, receipt_event(4, "PH1"))
    read = await staff.log.wait_for("wa:status", lambda e: e.get("wamid") == wamid, 10)
    assert read["status"] == "read" and read["message_id"] == shown["id"] and read["room_id"] == room_id
    _, hist = await staff.call("GET", f"/api/v1/rooms/{room_id}/messages", expect=200)
    assert [m["body"] for m in hist["messages"] if m["meta"].get("from_phone")] == ["On my way, 10 minutes"]
    # the phone sent it: it never went out from here (the assistant's handoff notice to the
    # contact's first message may have)
    assert not [m for _, m in phone.sent if "On my way" in str(m)]


async def test_a_chat_the_phone_starts_opens_a_conversation_the_business_handles_in_person(
        harness: ServerHarness, database_url: str) -> None:
    node, staff, sid, _room_id, _phone = await linked_conversation(harness)
    other = "4917000000042"
    typed = phone_message_from_event(sid, typed_event("PH2", "hi, it's the shop: your order is ready", to=other))
    assert typed is not None
    await service(node).whatsapp.ingest_from_phone(sid, typed)
    await service(node).whatsapp.ingest_from_phone(sid, typed)  # handed over again: nothing more
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["contact"]["wa_id"] == other, 10)
    assert conv["unread"] == 0  # the business's own message: nothing for staff to read
    # in person: the assistant off, so the contact's answer to the shop's outreach goes to people
    assert (conv["channel"], conv["status"], conv["ai_enabled"], conv["mode"], conv["assignee"]) == \
        ("linked_device", "open", False, "human", None)
    opened = await staff.log.wait_for("conversation:event", lambda e: e["room_id"] == conv["room_id"], 10)
    assert (opened["kind"], opened["meta"]) == ("opened", {"by": "phone"})
    # the business spoke first: the stay's first answer is the phone's, at once
    first = await staff.log.wait_for("conversation:event", lambda e: e["room_id"] == conv["room_id"]
                                     and e["kind"] == "first_response", 10)
    assert first["meta"] == {"by": "phone"} and first["id"] > opened["id"]
    _, hist = await staff.call("GET", f"/api/v1/rooms/{conv['room_id']}/messages", expect=200)
    assert [(m["author_kind"], m["body"]) for m in hist["messages"]] == [("user", "hi, it's the shop: your order is ready")]
    # the contact answers: the same conversation, and still nobody but people answer
    assert (await staff.emit("room:join", {"room_id": conv["room_id"]}))["ok"]
    await feed(node, sid, text_event("IN2", "great, on my way", sender=other))
    answer = await staff.log.wait_for("message", lambda m: m["room_id"] == conv["room_id"] and m["author_kind"] == "contact", 10)
    assert answer["body"] == "great, on my way"
    unread = await staff.log.wait_for("conversation:updated", lambda c: c["room_id"] == conv["room_id"] and c["unread"], 10)
    assert unread["unread"] == 1  # the contact's answer is
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM wa_contacts WHERE wa_id = $1", other) == 1
        assert await conn.fetchval("SELECT ai_enabled FROM wa_contacts WHERE wa_id = $1", other) is False
        assert [tuple(r) for r in await conn.fetch(
            "SELECT direction, status FROM wa_messages WHERE room_id = $1 ORDER BY id", conv["room_id"])] == \
            [("out", "sent"), ("in", "received")]
    finally:
        await conn.close()


async def test_a_reply_typed_on_the_phone_takes_a_conversation_the_assistant_answers_over(
        harness: ServerHarness) -> None:
    # as a staff reply from the web app does: the assistant must not talk over a person
    node, _admin, staff, sid = await running_session(harness)
    # a question the offline assistant's knowledge base answers (an unknown one hands off)
    await feed(node, sid, text_event("IN3", "how do I create a room?"))
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    room_id = conv["room_id"]
    assert (conv["ai_enabled"], conv["mode"]) == (True, "ai")
    await feed(node, sid, typed_event("PH4", "I'll show you on a call, one moment"))
    taken = await staff.log.wait_for("conversation:updated", lambda c: c["room_id"] == room_id and not c["ai_enabled"], 10)
    assert (taken["mode"], taken["assignee"], taken["status"]) == ("human", None, conv["status"])
    _, timeline = await staff.call("GET", f"/api/v1/wa/conversations/{room_id}/events", expect=200)
    assert [(e["kind"], e["meta"]) for e in timeline["events"] if e["kind"] != "opened"] == \
        [("taken_over", {"by": "phone", "implicit": True}), ("first_response", {"by": "phone"})]
    # staff hand it back: the assistant answers again
    _, back = await staff.call("POST", f"/api/v1/wa/conversations/{room_id}/handback", expect=200)
    assert back["conversation"]["ai_enabled"] is True

