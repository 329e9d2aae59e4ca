"""The route layer's promises on a live chat-server and chat-archive, one request each."""

from __future__ import annotations

from server.actions import rooms as room_actions
from tests.archive.conftest import ArchiveEnv, start_archive
from tests.support import ServerHarness

BEYOND_BIGINT = "304185567791504440996591152282992640"


async def test_a_path_id_beyond_bigint_is_not_found_not_a_server_error(harness: ServerHarness) -> None:
    node = await harness.start_node()
    staff = await harness.user(node, role="staff")
    for path in (f"/api/v1/rooms/{BEYOND_BIGINT}", f"/api/v1/wa/conversations/{BEYOND_BIGINT}",
                 "/api/v1/rooms/0", "/api/v1/rooms/abc"):
        status, body = await staff.call("GET", path)
        assert (status, body["error"]["code"]) == (404, "not_found"), path
    status, body = await staff.call("POST", f"/api/v1/wa/conversations/{BEYOND_BIGINT}/read", {"seq": 1})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_an_undeclared_method_answers_405_with_allow(harness: ServerHarness, archive_env: ArchiveEnv) -> None:
    node = await harness.start_node()
    user = await harness.user(node)
    async with harness.http.delete(node.base_url + "/api/v1/rooms", headers=user.auth) as r:
        assert r.status == 405 and set(r.headers["Allow"].split(",")) == {"GET", "POST"}
        assert (await r.json())["error"]["code"] == "invalid"
    archive = await start_archive(archive_env.config(chat_server_url=node.base_url))
    try:
        async with harness.http.put(archive.base_url + "/archive/v1/search", headers=user.auth) as r:
            assert r.status == 405 and r.headers["Allow"] == "GET"
    finally:
        await archive.runner.cleanup()


async def test_the_document_states_the_rules_the_server_enforces(harness: ServerHarness) -> None:
    node = await harness.start_node()
    user = await harness.user(node)
    async with harness.http.get(node.base_url + "/api/v1/openapi.json") as r:
        doc = await r.json()
    name = doc["components"]["schemas"]["CreateRoomBody"]["properties"]["name"]
    assert name["maxLength"] == room_actions.ROOM_NAME_MAX
    status, body = await user.call("POST", "/api/v1/rooms", {"name": "x" * (room_actions.ROOM_NAME_MAX + 1),
                                                             "kind": "public"})
    assert (status, body["error"]["details"]["field"]) == (400, "name")
    status, body = await user.call("POST", "/api/v1/rooms", {"name": "   ", "kind": "public"})
    assert (status, body["error"]["details"]["field"]) == (400, "name")
    created = doc["paths"]["/api/v1/rooms"]["post"]["responses"]["201"]
    assert created["links"]["GetRoom"] == {"operationId": "get_room", "parameters": {"id": "$response.body#/room/id"}}
