"""The fan-out manager's reverse index (sid -> rooms) keeps python-socketio's room bookkeeping
exact: enter, leave, close, disconnect, ``rooms()``; a disconnect visits only the socket's rooms."""

from __future__ import annotations

from typing import Any

from server import jsonlib
from server.realtime.fanout import FanoutRedisManager


class _Counting(dict[Any, Any]):
    """The namespace's room table, counting how often anyone copies or scans all of it."""

    scans = 0

    def copy(self) -> dict[Any, Any]:
        _Counting.scans += 1
        return dict(self)

    def items(self) -> Any:
        _Counting.scans += 1
        return super().items()


def _manager() -> FanoutRedisManager:
    m = FanoutRedisManager("redis://127.0.0.1:1", channel="t", json=jsonlib)
    m.rooms = {"/": _Counting()}
    m.rooms["/"][None] = __import__("bidict").bidict()
    return m


def test_disconnect_leaves_exactly_the_sockets_rooms_without_scanning_the_others() -> None:
    m = _manager()
    for i in range(200):
        sid = f"s{i}"
        m.basic_enter_room(sid, "/", None, eio_sid=f"e{i}")
        m.basic_enter_room(sid, "/", sid, eio_sid=f"e{i}")
        m.basic_enter_room(sid, "/", f"u:{i}")
        m.basic_enter_room(sid, "/", f"r:{i % 10}")
    assert sorted(m.get_rooms("s3", "/"), key=str) == ["r:3", "s3", "u:3"]
    _Counting.scans = 0
    for i in range(0, 200, 2):
        m.basic_disconnect(f"s{i}", "/")
    assert _Counting.scans == 0  # no O(rooms) pass per disconnect
    table = m.rooms["/"]
    assert all(f"s{i}" not in room for room in table.values() for i in range(0, 200, 2))
    assert "u:0" not in table and "s0" not in table  # rooms left empty are gone, as before
    assert set(table["r:1"]) == {f"s{i}" for i in range(1, 200, 10)}
    assert m.get_rooms("s0", "/") == [] and ("/", "s0") not in m._sid_rooms


def test_leave_and_close_room_keep_the_index_in_step() -> None:
    m = _manager()
    for sid in ("a", "b"):
        m.basic_enter_room(sid, "/", None, eio_sid=sid + "e")
        m.basic_enter_room(sid, "/", "r:1")
        m.basic_enter_room(sid, "/", "r:2")
    m.basic_leave_room("a", "/", "r:1")
    assert sorted(m.get_rooms("a", "/")) == ["r:2"]
    m.basic_close_room("r:2", "/")
    assert m.get_rooms("a", "/") == [] and sorted(m.get_rooms("b", "/")) == ["r:1"]
    m.basic_disconnect("b", "/")
    assert "r:1" not in m.rooms["/"] and m.get_rooms("b", "/") == []
