"""The assistant's handoff in a linked-device conversation racing a person's takeover, on real
PostgreSQL and Redis with the real neonize client (its calls that reach WhatsApp's servers
replaced by ``FakePhone``, whose send is held open here)."""

from __future__ import annotations

import asyncio
from typing import Any

from neonize.proto.Neonize_pb2 import Connected

from tests.server.test_wa_linked_media import FakePhone
from tests.server.test_wa_sessions import feed, running_session, service, text_event
from tests.support import ServerHarness


async def test_a_takeover_while_the_assistants_handoff_notice_goes_out_is_not_undone_by_the_handoff(
        harness: ServerHarness) -> None:
    # the assistant hands off (its notice sent, then the conversation set to pending, AI off) and
    # a person takes over in between: the person's open conversation must stay theirs and open
    node, _admin, staff, sid = await running_session(harness)
    phone = FakePhone()
    entered, release = asyncio.Event(), asyncio.Event()
    send = phone.send_message

    async def gated(to: Any, message: Any) -> Any:
        entered.set()
        await release.wait()
        return await send(to, message)

    phone.send_message = gated  # type: ignore[method-assign]
    client = service(node).held[sid].client
    phone.install(client.neonize_client)
    await asyncio.wait_for(_connected(phone, client), 20)
    await feed(node, sid, Connected(status=True))
    await feed(node, sid, text_event("IN5", "zebra quantum marmalade?"))  # nothing the assistant knows
    await asyncio.wait_for(entered.wait(), 10)  # its handoff notice is on its way to the phone
    conv = await staff.log.wait_for("conversation:updated", lambda c: c["channel"] == "linked_device", 10)
    _, taken = await staff.call("POST", f"/api/v1/wa/conversations/{conv['room_id']}/takeover", expect=200)
    assert (taken["conversation"]["status"], taken["conversation"]["assignee"]["id"]) == ("open", staff.id)
    release.set()
    reply = next(t for t in asyncio.all_tasks() if t.get_name().startswith(f"ai-reply:{conv['room_id']}:"))
    await asyncio.wait_for(reply, 10)
    assert phone.sent  # the notice went out
    _, after = await staff.call("GET", f"/api/v1/wa/conversations/{conv['room_id']}", expect=200)
    assert (after["conversation"]["status"], after["conversation"]["assignee"]["id"], after["conversation"]["ai_enabled"]) \
        == ("open", staff.id, False)


async def _connected(phone: FakePhone, client: Any) -> None:
    while not (phone.task is not None and not phone.task.done() and client.running):
        await asyncio.sleep(0.05)
