"""``server.realtime.packets.LeanPacket`` (our Socket.IO packet class) encodes every packet
exactly as python-socketio's stock ``Packet`` does, binary payloads included."""

from __future__ import annotations

from typing import Any

import pytest
from socketio import packet as sio_packet

from server import jsonlib
from server.realtime.packets import LeanPacket

RECORD: dict[str, Any] = {
    "id": 7, "room_id": 3, "seq": 12, "author_id": 5, "author_kind": "user", "author_name": "Zoë \"z\" </script>",
    "body": "line\nbreak \u2028 \U0001f600 \x00", "created_at": "2026-12-01T15:00:00.123Z", "client_id": "c-1",
    "reply_to": None, "edited_at": None, "deleted_at": None, "meta": {"mentions": [1, 2]},
    "attachments": [{"id": "f1", "url": "https://x/y?sig=1", "size": 10}], "reactions": [],
}


class _Stock(sio_packet.Packet):
    json = jsonlib


@pytest.mark.parametrize("kwargs", [
    {"packet_type": sio_packet.ACK, "data": [{"ok": True, "message": RECORD}], "id": 41},
    {"packet_type": sio_packet.ACK, "data": [], "id": 0, "namespace": "/"},
    {"packet_type": sio_packet.ACK, "data": [{"ok": False}], "id": 3, "namespace": "/admin"},
    {"packet_type": sio_packet.EVENT, "data": ["message", RECORD]},
    {"packet_type": sio_packet.EVENT, "data": ["typing", {"room_id": 1}], "namespace": "/other", "id": 9},
    {"packet_type": sio_packet.CONNECT, "data": {"sid": "abc"}, "namespace": "/"},
    {"packet_type": sio_packet.DISCONNECT, "namespace": "/"},
])
def test_a_packet_is_encoded_exactly_as_the_stock_packet_encodes_it(kwargs: dict[str, Any]) -> None:
    ours, stock = LeanPacket(**kwargs), _Stock(**kwargs)
    assert ours.encode() == stock.encode()
    assert ours.packet_type == stock.packet_type


def test_a_payload_with_bytes_still_goes_out_as_a_binary_packet_with_attachments() -> None:
    for packet_type, binary_type in ((sio_packet.EVENT, sio_packet.BINARY_EVENT), (sio_packet.ACK, sio_packet.BINARY_ACK)):
        data = ["file", {"name": "a", "blob": b"\x00\x01"}]
        ours, stock = LeanPacket(packet_type, data=data, id=4), _Stock(packet_type, data=data, id=4)
        assert ours.packet_type == stock.packet_type == binary_type
        wire = f'{binary_type}1-4["file",{{"name":"a","blob":{{"_placeholder":true,"num":0}}}}]'
        assert ours.encode() == stock.encode() == [wire, b"\x00\x01"]


def test_a_received_packet_decodes_as_before() -> None:
    text = '2/chat,17["message:send",{"room_id":1,"body":"hi"}]'
    ours, stock = LeanPacket(encoded_packet=text), _Stock(encoded_packet=text)
    assert (ours.packet_type, ours.namespace, ours.id, ours.data) == (stock.packet_type, stock.namespace, stock.id, stock.data)
