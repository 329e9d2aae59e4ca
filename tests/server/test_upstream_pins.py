"""The upstream code our run-time patches and subclasses were written against is still what runs.

server/realtime replaces methods of python-engineio's classes at run time (``lean_socket``,
``fanout.install_socket_poll``), subclasses engineio's and python-socketio's servers, managers
and WebSocket driver overriding private methods (``peers``, ``fanout``, ``bus``), finds
python-socketio's handler tasks by a private coroutine's name (``shutdown``), and takes WebSocket
connections over from aiohttp after the upgrade request (``lean_ws``). A release that changes
any of that would not fail an import: it would change behaviour quietly.

``GUARDED`` records, for each upstream function or class we replace, override, reproduce or
depend on the internals of, a hash of its normalised source (docstrings and comments removed,
formatting as ``ast.unparse`` writes it) in the version the patch was checked against. A
different hash fails naming the function, the installed version, and what of ours to re-check.
The source is read from the installed module's file, not with ``inspect.getsource`` on the
class attribute: once a server has been built in the same test session the attribute is our
replacement.

The versions themselves: pyproject.toml holds each patched library to one minor version, above
the security floors; requirements.lock (``scripts/lock``) pins every package with hashes and is
what ``scripts/bootstrap.sh`` installs, so the lock must satisfy pyproject.toml and the
environment must run the locked versions.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.services.base import REPO_ROOT

# distribution -> the version the hashes below were recorded for
CHECKED_VERSIONS = {"python-engineio": "4.15.1", "python-socketio": "5.18.1", "aiohttp": "3.14.5"}

# the floors below which known vulnerabilities are unfixed: pyproject.toml's pins stay above them
SECURITY_FLOORS = {"python-engineio": "4.13.2", "python-socketio": "5.16.3", "aiohttp": "3.10.11", "aiokafka": "0.14"}

# "module:Qualified.name" -> (distribution, hash of the normalised source, what of ours depends on it)
GUARDED: dict[str, tuple[str, str, str]] = {
    # --- python-engineio ---------------------------------------------------------------------
    "engineio.async_socket:AsyncSocket._websocket_handler": (
        "python-engineio", "2822186d44689f3a",
        "server/realtime/lean_ws.py LeanWebSocket does its work (its upgrade exchange, its read loop) instead"),
    "engineio.async_socket:AsyncSocket.schedule_ping": (
        "python-engineio", "004bb5cd7ba28d22", "server/realtime/lean_socket.py _schedule_ping replaces it"),
    "engineio.async_socket:AsyncSocket._send_ping": (
        "python-engineio", "3a68852b51299992", "server/realtime/lean_socket.py PingScheduler._ping does its work"),
    "engineio.async_socket:AsyncSocket.poll": (
        "python-engineio", "e65ca9f757c5c6ec", "server/realtime/fanout.py _poll_without_a_task replaces it"),
    "engineio.async_socket:AsyncSocket.check_ping_timeout": (
        "python-engineio", "d36d430b8f12e8ea", "server/realtime/lean_socket.py PingScheduler (last_ping, ping_timeout)"),
    "engineio.async_socket:AsyncSocket.send": (
        "python-engineio", "2e6c0146d180bd97", "server/realtime/lean_socket.py PacketQueue (queue.put of every packet)"),
    "engineio.async_socket:AsyncSocket.receive": (
        "python-engineio", "88ce7b48e2f00753", "server/realtime/lean_ws.py LeanWebSocket._read and lean_socket _schedule_ping (PONG)"),
    "engineio.async_socket:AsyncSocket.close": (
        "python-engineio", "18bdb592eb77a06d", "server/realtime/lean_socket.py end_session, PacketQueue._overflow; server/shutdown.py"),
    "engineio.async_socket:AsyncSocket.handle_get_request": (
        "python-engineio", "f7daa9ad7adfb982", "server/realtime/fanout.py poll and lean_socket PacketQueue (long-polling)"),
    "engineio.async_socket:AsyncSocket._upgrade_websocket": (
        "python-engineio", "35cbe5112b598f6a", "server/realtime/lean_ws.py LeanDriver (handler.__self__, _async['websocket'])"),
    "engineio.base_socket:BaseSocket.__init__": (
        "python-engineio", "6e785fa1cd081f49", "server/realtime/lean_socket.py PacketQueue (made by server.create_queue())"),
    "engineio.async_server:AsyncServer.create_queue": (
        "python-engineio", "543bcd6f4eecbaa3", "server/realtime/peers.py ChatEngineServer.create_queue and install_lean_sockets override it"),
    "engineio.async_server:AsyncServer.handle_request": (
        "python-engineio", "7a4971c7500e6422", "server/realtime/peers.py ChatEngineServer.handle_request overrides it"),
    "engineio.async_server:AsyncServer._handle_connect": (
        "python-engineio", "a47d4a5c5e429da3", "server/realtime/peers.py session_opened (socket made, then the connect event)"),
    "engineio.base_server:BaseServer._get_socket": (
        "python-engineio", "7aaec00f00cf2605", "server/realtime/peers.py ChatEngineServer.handle_request (closed sessions)"),
    "engineio.async_drivers.aiohttp:WebSocket": (
        "python-engineio", "b293e711478c1e39", "server/realtime/fanout.py make_websocket_class subclasses it, overriding __call__"),
    "engineio.async_drivers.aiohttp:translate_request": (
        "python-engineio", "19e9ec601c7565b3",
        "server/realtime/lean_ws.py LeanDriver (environ['aiohttp.request']); peers.slim_environ (the request's keys)"),
    "engineio.async_drivers.aiohttp:create_route": (
        "python-engineio", "ede83cdc276b5e77", "server/realtime/peers.py ChatEngineServer.handle_request (the route's handler)"),
    "engineio.async_server:AsyncServer._trigger_event": (
        "python-engineio", "f4dbe0de0fecf870",
        "server/realtime/plain_events.py PlainEvents.dispatch does its work for plain events (the message handler)"),
    "engineio.async_server:AsyncServer.send_packet": (
        "python-engineio", "335fd299936ca149", "server/realtime/plain_events.py PlainEvents._handle_event_internal (the ack)"),
    "engineio.packet:Packet.decode": (
        "python-engineio", "5ea36fab260659ac",
        "server/realtime/lean_ws.py LeanWebSocket._message hands a MESSAGE's text to PlainEvents.dispatch undecoded"),
    "engineio.packet:Packet.__init__": (
        "python-engineio", "a03aca17f0f4b8e8", "server/realtime/fanout.py _EncodedPacket subclasses Packet without calling it"),
    "engineio.packet:Packet.encode": (
        "python-engineio", "502a935273efdf66", "server/realtime/fanout.py _EncodedPacket.encode overrides it"),
    # --- python-socketio ---------------------------------------------------------------------
    "socketio.base_server:BaseServer.__init__": (
        "python-socketio", "46223a462e684cd7", "server/realtime/peers.py (eio from _engineio_server_class); server/shutdown.py (eio.on('connect'))"),
    "socketio.async_server:AsyncServer._engineio_server_class": (
        "python-socketio", "726f2848023f38ac", "server/realtime/peers.py ChatSocketServer._engineio_server_class overrides it"),
    "socketio.async_server:AsyncServer._handle_eio_connect": (
        "python-socketio", "3686c5190dfb3d99", "server/realtime/peers.py ChatSocketServer._handle_eio_connect overrides it"),
    "socketio.async_server:AsyncServer._handle_eio_disconnect": (
        "python-socketio", "f7742d33d9739e32", "server/realtime/peers.py ChatSocketServer._handle_eio_disconnect overrides it"),
    "socketio.async_server:AsyncServer._handle_eio_message": (
        "python-socketio", "f772a451d918e87a", "server/realtime/plain_events.py PlainEvents.dispatch does its work for plain events"),
    "socketio.async_server:AsyncServer._trigger_event": (
        "python-socketio", "c96ce8e57718ef20",
        "server/realtime/plain_events.py PlainEvents._handle_event_internal calls the handler as it does"),
    "socketio.base_server:BaseServer._get_event_handler": (
        "python-socketio", "bb48e0c3164a1e4f", "server/realtime/plain_events.py PlainEvents._plain_handler (which handler runs)"),
    "socketio.async_server:AsyncServer._send_packet": (
        "python-socketio", "1bc829cccb4c67d9", "server/realtime/plain_events.py PlainEvents._handle_event_internal (the ack)"),
    "socketio.packet:Packet.decode": (
        "python-socketio", "7bb4fad188333541", "server/realtime/plain_events.py PlainEvents.dispatch parses plain events"),
    "socketio.async_server:AsyncServer._handle_event": (
        "python-socketio", "f9d48888b2c4f4b1",
        "server/shutdown.py _event_tasks (the task it starts per event); server/realtime/plain_events.py dispatch does its work"),
    "socketio.async_server:AsyncServer._handle_event_internal": (
        "python-socketio", "963582a5f821da35",
        "server/shutdown.py _event_tasks (found by its name and its server argument); plain_events overrides it"),
    "socketio.async_manager:AsyncManager.emit": (
        "python-socketio", "73f2199d8288b596", "server/realtime/fanout.py FanoutRedisManager.emit and event_args reproduce it"),
    "socketio.async_pubsub_manager:AsyncPubSubManager.__init__": (
        "python-socketio", "baeb77e44cafc19b", "server/realtime/bus.py RedisBus (channel, host_id, json)"),
    "socketio.async_pubsub_manager:AsyncPubSubManager.emit": (
        "python-socketio", "463fa36235781c98", "server/realtime/fanout.py FanoutRedisManager.emit overrides it (its bus message)"),
    "socketio.async_pubsub_manager:AsyncPubSubManager._handle_emit": (
        "python-socketio", "46370549f53198b4", "server/realtime/fanout.py FanoutRedisManager._handle_emit overrides it"),
    "socketio.async_pubsub_manager:AsyncPubSubManager._thread": (
        "python-socketio", "c13cd40a1791f7d6", "server/realtime/bus.py RedisBus._listen (what it yields is decoded here)"),
    "socketio.async_redis_manager:AsyncRedisManager._redis_connect": (
        "python-socketio", "cae8173d3c3cba60", "server/realtime/bus.py RedisBus._send calls it"),
    "socketio.async_redis_manager:AsyncRedisManager._publish": (
        "python-socketio", "57775544728f8601", "server/realtime/bus.py RedisBus._publish overrides it"),
    "socketio.async_redis_manager:AsyncRedisManager._redis_listen_with_retries": (
        "python-socketio", "6563d2f6b5aa3d86", "server/realtime/bus.py RedisBus._listen iterates it"),
    "socketio.async_redis_manager:AsyncRedisManager._listen": (
        "python-socketio", "0a847633273085b7", "server/realtime/bus.py RedisBus._listen overrides it"),
    "socketio.base_manager:BaseManager.basic_enter_room": (
        "python-socketio", "705877858d9fa712", "server/realtime/fanout.py IndexedRooms.basic_enter_room extends it"),
    "socketio.base_manager:BaseManager.basic_leave_room": (
        "python-socketio", "8c315192c6837321", "server/realtime/fanout.py IndexedRooms.basic_leave_room extends it"),
    "socketio.base_manager:BaseManager.basic_disconnect": (
        "python-socketio", "27b154ad1b456740", "server/realtime/fanout.py IndexedRooms.basic_disconnect replaces it"),
    "socketio.base_manager:BaseManager.basic_close_room": (
        "python-socketio", "c7fb5d8f4e9013b0", "server/realtime/fanout.py IndexedRooms (its reverse index, kept by basic_leave_room)"),
    "socketio.base_manager:BaseManager.get_rooms": (
        "python-socketio", "f98c8b83591bd578", "server/realtime/fanout.py IndexedRooms.get_rooms replaces it"),
    "socketio.base_manager:BaseManager.get_participants": (
        "python-socketio", "ff486d06f687b2d6", "server/realtime/fanout.py FanoutRedisManager._deliver_local"),
    "socketio.packet:Packet.encode": (
        "python-socketio", "c0c942925dd5e295", "server/realtime/fanout.py _deliver_local (the frame encoded once for all)"),
    "socketio.packet:Packet.data_is_binary": (
        "python-socketio", "1a217138b164d0e8", "server/realtime/fanout.py FanoutRedisManager.emit (bytes take the stock path)"),
    # --- aiohttp -----------------------------------------------------------------------------
    "aiohttp._websocket.writer:WebSocketWriter._write_websocket_frame": (
        "aiohttp", "d25ec64bcf10d7d3", "server/realtime/lean_socket.py text_frame reproduces what it writes"),
    "aiohttp.web_protocol:RequestHandler.finish_response": (
        "aiohttp", "69ba20608ca2bc38",
        "server/realtime/lean_ws.py _TakenOver (a ConnectionError from prepare: the client is gone, nothing written)"),
    "aiohttp.web_protocol:RequestHandler.start": (
        "aiohttp", "bf1eb39ecefbc464",
        "server/realtime/lean_ws.py LeanDriver (aiohttp closes only its own, already closed, transport)"),
}


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def upstream_source(target: str) -> str:
    """The normalised source of ``module:Qualified.name`` as the installed module file has it."""
    module, qualname = target.split(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"{module} is not installed"
    node: ast.AST = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for part in qualname.split("."):
        body = getattr(node, "body", [])
        found = [n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == part]
        assert found, f"{target}: no {part!r} in {spec.origin} (the upstream code was moved or removed)"
        node = found[-1]  # the last definition is the one that stands
    _strip_docstrings(node)
    return ast.unparse(node)


def source_hash(target: str) -> str:
    return hashlib.sha256(upstream_source(target).encode()).hexdigest()[:16]


@pytest.mark.parametrize("target", sorted(GUARDED))
def test_the_upstream_code_a_patch_relies_on_is_what_it_was_written_against(target: str) -> None:
    dist, recorded, ours = GUARDED[target]
    installed = importlib.metadata.version(dist)
    actual = source_hash(target)
    origin = getattr(importlib.util.find_spec(target.split(":")[0]), "origin", "?")
    assert actual == recorded, (
        f"{target} changed: its source in {dist} {installed} differs from {dist} {CHECKED_VERSIONS[dist]}, "
        f"the version our code was checked against ({ours}). Re-check that code against the new source "
        f"({origin}), then record the new hash {actual!r} and the version in tests/server/test_upstream_pins.py."
    )


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _requirements(extras: tuple[str, ...] = ("dev", "bench")) -> list[Requirement]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_each_patched_library_is_held_to_the_checked_minor_version_above_its_security_floor() -> None:
    by_name = {canonicalize_name(r.name): r for r in _requirements(())}
    for dist, checked in CHECKED_VERSIONS.items():
        spec = by_name[dist].specifier
        installed = importlib.metadata.version(dist)
        assert installed in spec, f"{dist} {installed} is installed, outside pyproject.toml's {spec}: run scripts/bootstrap.sh"
        assert installed == checked, (
            f"{dist} {installed} is installed; GUARDED's hashes were recorded for {checked}: when every hash "
            f"still matches, set CHECKED_VERSIONS[{dist!r}] = {installed!r} in tests/server/test_upstream_pins.py")
        major, minor = Version(checked).release[:2]
        assert f"{major}.{minor + 1}" not in spec and Version(f"{major}.{minor}.9999") in spec, (
            f"pyproject.toml must hold {dist} to {major}.{minor}.x (the minor version the patches were checked against): {spec}")
    for dist, floor in SECURITY_FLOORS.items():
        spec = by_name[dist].specifier
        lowest = [Version(s.version) for s in spec if s.operator in (">=", "==", "~=")]
        assert lowest and min(lowest) >= Version(floor), f"pyproject.toml lets {dist} below its security floor {floor}: {spec}"


def _locked(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, marker) of a uv-compiled, hashed requirements file."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    locked: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if not line or line[0] in "# -":
            continue
        req_part = line.split(" --hash=")[0]
        assert "--hash=sha256:" in line, f"{path.name}: {req_part} has no hash"
        req = Requirement(req_part)
        (pin,) = req.specifier
        assert pin.operator == "==", f"{path.name}: {req_part} is not pinned"
        locked[canonicalize_name(req.name)] = (pin.version, str(req.marker or ""))
    return locked


LOCK = REPO_ROOT / "requirements.lock"
RUNTIME_LOCK = REPO_ROOT / "requirements-runtime.lock"


def _applies(marker: str, extras: tuple[str, ...] = ("",)) -> bool:
    return not marker or any(Marker(marker).evaluate({"extra": e}) for e in extras)


def test_the_lock_files_satisfy_pyproject_and_agree_with_each_other() -> None:
    full, runtime = _locked(LOCK), _locked(RUNTIME_LOCK)
    stale = []
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name not in full or full[name][0] not in req.specifier:
            stale.append(f"{req} (locked: {full.get(name, ('none',))[0]})")
    assert not stale, f"requirements.lock does not satisfy pyproject.toml, run scripts/lock: {stale}"
    for req in _requirements(()):
        assert canonicalize_name(req.name) in runtime or not _applies(str(req.marker or "")), \
            f"requirements-runtime.lock lacks {req}: run scripts/lock"
    differ = {n: (v, full.get(n, ("none",))[0]) for n, (v, _) in runtime.items() if full.get(n, ("",))[0] != v}
    assert not differ, f"requirements-runtime.lock and requirements.lock disagree (runtime, full): {differ}; run scripts/lock"


def test_the_environment_runs_exactly_the_locked_versions() -> None:
    wrong = {}
    for name, (version, marker) in _locked(LOCK).items():
        if not _applies(marker):
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong[name] = f"{installed}, locked {version}"
    assert not wrong, f"this environment differs from requirements.lock (run scripts/bootstrap.sh): {wrong}"
