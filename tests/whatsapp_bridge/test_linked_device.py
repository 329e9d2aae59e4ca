"""neonize's event types mapped to our records (no server, no network): who a message is from,
what is skipped, receipts into statuses, connection events into session states, the store DSN;
and the order of calls into Go around a stop (with a stand-in for neonize's Go-backed client,
which has no way to be observed from Python without crashing the process)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from neonize.proto.Neonize_pb2 import JID, ConnectFailure, LoggedOut, MessageInfo, MessageSource, PairStatus, Receipt
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    DocumentMessage,
    ExtendedTextMessage,
    ImageMessage,
    LocationMessage,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage

from whatsapp_bridge.errors import CloudApiError
from whatsapp_bridge.linked_device import (
    LinkedDeviceClient,
    go_lock,
    inbound_from_event,
    phone_message_from_event,
    state_from_event,
    statuses_from_receipt,
    store_dsn,
)
from whatsapp_bridge.media import inbound_media


def _source(user: str = "4917012345678", server: str = "s.whatsapp.net", **kw: object) -> MessageSource:
    return MessageSource(Chat=JID(User=user, Server=server), Sender=JID(User=user, Server=server), **kw)


def _event(source: MessageSource, message: E2EMessage, mid: str = "3EB0X") -> MessageEv:
    return MessageEv(Info=MessageInfo(MessageSource=source, ID=mid, Pushname="Ann", Timestamp=int(time.time())),
                     Message=message)


def test_a_contact_text_maps_to_an_inbound_message_with_a_session_scoped_id() -> None:
    msg = inbound_from_event(7, _event(_source(), E2EMessage(conversation="hi")))
    assert msg is not None and (msg.wa_id, msg.text, msg.type, msg.wamid) == ("4917012345678", "hi", "text", "ld:7:3EB0X")
    ext = inbound_from_event(7, _event(_source(), E2EMessage(extendedTextMessage=ExtendedTextMessage(text="a link"))))
    assert ext is not None and ext.text == "a link"


def test_a_hidden_number_uses_the_phone_from_the_alt_jid_or_keeps_the_lid() -> None:
    lid = MessageSource(Chat=JID(User="123", Server="lid"), Sender=JID(User="123", Server="lid"),
                        SenderAlt=JID(User="4917099999999", Server="s.whatsapp.net"))
    assert inbound_from_event(1, _event(lid, E2EMessage(conversation="x"))).wa_id == "4917099999999"  # type: ignore[union-attr]
    bare = MessageSource(Chat=JID(User="123", Server="lid"), Sender=JID(User="123", Server="lid"))
    assert inbound_from_event(1, _event(bare, E2EMessage(conversation="x"))).wa_id == "123@lid"  # type: ignore[union-attr]


def test_own_group_and_broadcast_messages_are_skipped_and_a_location_is_one_readable_line() -> None:
    assert inbound_from_event(1, _event(_source(IsFromMe=True), E2EMessage(conversation="x"))) is None
    assert inbound_from_event(1, _event(_source(IsGroup=True), E2EMessage(conversation="x"))) is None
    assert inbound_from_event(1, _event(_source("status", "broadcast"), E2EMessage(conversation="x"))) is None
    place = inbound_from_event(1, _event(_source(), E2EMessage(locationMessage=LocationMessage(degreesLatitude=1.0))))
    assert place is not None and (place.text, place.type, place.media_payload) == ("[location]", "linked_location", None)


def test_a_message_typed_on_the_phone_maps_to_the_chat_of_its_contact_without_our_push_name() -> None:
    # from us to the contact: the chat is the contact, the sender and the push name are ours
    ours = JID(User="4915100000001", Server="s.whatsapp.net")
    to_contact = MessageSource(Chat=JID(User="4917012345678", Server="s.whatsapp.net"), Sender=ours, IsFromMe=True)
    typed = phone_message_from_event(7, _event(to_contact, E2EMessage(conversation="on my way"), mid="3EB0P"))
    assert typed is not None
    assert (typed.wa_id, typed.contact_name, typed.text, typed.type, typed.wamid) == \
        ("4917012345678", None, "on my way", "text", "ld:7:3EB0P")
    assert typed.meta == {"linked_device": True, "from_phone": True}
    # a hidden number: the contact's phone from the recipient's alt JID, else the lid
    lid = MessageSource(Chat=JID(User="123", Server="lid"), Sender=ours, IsFromMe=True,
                        RecipientAlt=JID(User="4917099999999", Server="s.whatsapp.net"))
    assert phone_message_from_event(7, _event(lid, E2EMessage(conversation="x"))).wa_id == "4917099999999"  # type: ignore[union-attr]
    bare = MessageSource(Chat=JID(User="123", Server="lid"), Sender=ours, IsFromMe=True)
    assert phone_message_from_event(7, _event(bare, E2EMessage(conversation="x"))).wa_id == "123@lid"  # type: ignore[union-attr]
    # what another device of ours sent, still wrapped, reads as its inner message
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import DeviceSentMessage
    wrapped = E2EMessage(deviceSentMessage=DeviceSentMessage(destinationJID="4917012345678@s.whatsapp.net",
                                                             message=E2EMessage(conversation="from the laptop")))
    assert phone_message_from_event(7, _event(to_contact, wrapped)).text == "from the laptop"  # type: ignore[union-attr]
    # a contact's message, a group and our status broadcast are not the business writing to a contact
    assert phone_message_from_event(7, _event(_source(), E2EMessage(conversation="x"))) is None
    assert phone_message_from_event(7, _event(_source(IsFromMe=True, IsGroup=True), E2EMessage(conversation="x"))) is None
    assert phone_message_from_event(7, _event(_source("status", "broadcast", IsFromMe=True),
                                              E2EMessage(conversation="x"))) is None


def test_a_contact_file_maps_to_a_pending_download_whose_keys_stay_out_of_the_message_meta() -> None:
    image = ImageMessage(caption="look", mimetype="image/jpeg", fileLength=1234, mediaKey=b"k" * 32,
                         directPath="/v/t62/abc", JPEGThumbnail=b"thumb")
    msg = inbound_from_event(1, _event(_source(), E2EMessage(imageMessage=image), mid="IMG1"))
    assert msg is not None and (msg.type, msg.text) == ("image", "[image] look")
    media = inbound_media(msg.type, msg.meta)
    assert media is not None and (media.kind, media.media_id, media.mime, media.name, media.caption) == \
        ("image", "ld:1:IMG1", "image/jpeg", "image.jpg", "look")
    assert msg.meta["file_size"] == 1234 and b"k" * 32 not in repr(msg.meta).encode()
    kept = E2EMessage.FromString(msg.media_payload or b"")
    assert kept.imageMessage.mediaKey == b"k" * 32 and kept.imageMessage.directPath == "/v/t62/abc"
    assert not kept.imageMessage.JPEGThumbnail  # the preview is not kept: the file is fetched
    doc = inbound_from_event(1, _event(_source(), E2EMessage(documentMessage=DocumentMessage(
        fileName="offer.pdf", mimetype="application/pdf", caption="the offer"))))
    assert doc is not None and inbound_media(doc.type, doc.meta).name == "offer.pdf"  # type: ignore[union-attr]
    voice = inbound_from_event(1, _event(_source(), E2EMessage(audioMessage=AudioMessage(
        mimetype="audio/ogg; codecs=opus", PTT=True))))
    assert voice is not None and inbound_media(voice.type, voice.meta).name == "voice-note.ogg"  # type: ignore[union-attr]


def test_receipts_become_statuses_and_the_others_say_nothing() -> None:
    delivered = statuses_from_receipt(2, Receipt(MessageSource=_source(), MessageIDs=["A", "B"], Type=1, Timestamp=1))
    assert [(s.wamid, s.status) for s in delivered] == [("ld:2:A", "delivered"), ("ld:2:B", "delivered")]
    assert statuses_from_receipt(2, Receipt(MessageSource=_source(), MessageIDs=["A"], Type=6))[0].status == "read"
    assert statuses_from_receipt(2, Receipt(MessageSource=_source(), MessageIDs=["A"], Type=5)) == []  # read on our phone


def test_connection_events_become_session_states_with_reasons() -> None:
    assert state_from_event(LoggedOut(Reason=4, OnConnect=True)).reason == "main_device_gone (on connect)"  # type: ignore[union-attr]
    banned = state_from_event(ConnectFailure(Reason=3, Message="spam"))
    assert banned is not None and (banned.kind, banned.reason) == ("disconnected", "temp_banned: spam")
    assert state_from_event(ConnectFailure(Reason=2)).kind == "logged_out"  # type: ignore[union-attr]
    paired = state_from_event(PairStatus(Status=2, ID=JID(User="4915112345678", Server="s.whatsapp.net")))
    assert paired is not None and (paired.kind, paired.jid) == ("connected", "4915112345678@s.whatsapp.net")


def test_the_store_dsn_keeps_tls_settings_and_puts_the_session_schema_first() -> None:
    assert store_dsn("postgresql://u:p@db:5432/chat", "wa_store_3") == \
        "postgresql://u:p@db:5432/chat?sslmode=disable&search_path=wa_store_3"
    assert "sslmode=verify-full" in store_dsn("postgres://db/chat?sslmode=verify-full", "wa_store_3")


class GoClient:
    """Records the calls neonize's client would pass into Go. After ``stop`` Go has torn its
    client down, and any further call would dereference nil inside Go and end the process."""

    def __init__(self, connection: asyncio.Future[Any]) -> None:
        self.calls: list[str] = []
        self.connection = connection

    async def stop(self) -> None:
        self.calls.append("stop")
        self.connection.get_loop().call_later(0.05, self.connection.set_result, None)  # Go's connect returns soon after

    async def get_me(self) -> Any:
        self.calls.append("get_me")

    async def mark_read(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("mark_read")


async def test_calls_queued_behind_a_stop_never_reach_gos_torn_down_client() -> None:
    """A stop takes the Go-call lock first; a read receipt and a "who am I" asked meanwhile (the
    session was running when they were asked) wait behind it, and by their turn Go's client is
    gone: they answer "not connected" (a passing 503, and None) and never call into Go."""
    connection: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    client = LinkedDeviceClient(1, "postgresql://u@127.0.0.1/db", sink=None)  # type: ignore[arg-type]
    go = GoClient(connection)
    client._client, client._task, client._linked = go, connection, True
    assert client.connected
    async with go_lock():  # a call in flight: everything else queues on the lock, in order
        closing = asyncio.create_task(client.close())
        await asyncio.sleep(0)
        asked = asyncio.create_task(client.me())
        read = asyncio.create_task(client.mark_read("ld:1:3EB0Y", "4917012345678"))
        await asyncio.sleep(0)
    assert await asked is None
    try:
        await read
        raise AssertionError("a read receipt after the stop went through")
    except CloudApiError as exc:
        assert exc.http_status == 503 and exc.state == "session_disconnected"
    await asyncio.wait_for(closing, 5)
    assert go.calls == ["stop"]
    assert not client.running
