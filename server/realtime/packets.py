"""The Socket.IO packet class of our server: the stock one without the binary scan per packet.

python-socketio builds every outgoing EVENT and ACK packet with ``binary=None``, and the stock
``Packet`` then walks the whole payload in Python (``data_is_binary``: a call per dict value
and list item) to find bytes before it encodes it with ``json.dumps``. For a message's ack (the
stored record) that walk costs about as much as the encoding. ``LeanPacket`` encodes the data
with orjson first: orjson refuses bytes (``TypeError``), so a payload it encodes has none and
its JSON is kept for ``encode``; a payload it refuses takes the stock path (the scan, then
BINARY_EVENT/BINARY_ACK with attachments), unchanged. The wire format is the stock one
(``test_packets.py`` holds the two equal).
"""

from __future__ import annotations

from typing import Any

import orjson
from socketio import packet as sio_packet

_PLAIN = (sio_packet.EVENT, sio_packet.ACK)


class LeanPacket(sio_packet.Packet):
    _text: str | None = None  # the JSON of ``data``, when orjson could encode it

    def __init__(self, packet_type: int = sio_packet.EVENT, data: Any = None, namespace: str | None = None,
                 id: int | None = None, binary: bool | None = None, encoded_packet: Any = None) -> None:
        if binary is None and encoded_packet is None and data is not None and packet_type in _PLAIN:
            try:
                self._text = orjson.dumps(data).decode()
                binary = False
            except TypeError:
                pass  # bytes (or a type JSON cannot hold): the stock scan decides, as before
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self) -> Any:
        text = self._text
        if text is None or self.packet_type not in _PLAIN:
            return super().encode()
        head = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            head += self.namespace + ","
        if self.id is not None:
            head += str(self.id)
        return head + text
