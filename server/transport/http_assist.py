"""Agent assist on WhatsApp conversations (staff only): a summary, a suggested reply.

Routes join ``http.routes`` on import (``server/app.py`` imports this module).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chatcore.api import Call, IdPath, Reply
from chatcore.schemas import Wire

from ..actions import assist as actions
from .http import actor_of, routes, svc_of


class AssistDraft(Wire):
    text: str = Field(description="written by the AI; empty when the conversation has no messages yet")
    ai_written: Literal[True] = Field(description="always true: show it labelled as written by the AI")
    upto_seq: int = Field(ge=0, description="the newest message the assistant read")
    provider: str
    model: str
    offline: bool


class AssistEnvelope(Wire):
    draft: AssistDraft


def _assist_route(kind: str, path: str, summary: str, description: str) -> None:
    async def handler(call: Call[None, None, IdPath]) -> Reply:
        draft = await actions.do_assist(svc_of(call.request), actor_of(call), call.path.id, kind)
        return Reply({"draft": {"text": draft.text, "ai_written": True, "upto_seq": draft.upto_seq,
                                "provider": draft.provider, "model": draft.model, "offline": draft.offline}})

    handler.__name__ = f"assist_{kind}"
    routes.post(f"/api/v1/wa/conversations/{{id}}/assist/{path}", summary, auth="staff",
                responses={200: AssistEnvelope}, description=description)(handler)


_assist_route("summary", "summary", "A short AI summary of the conversation so far (staff only)",
              "Built on the assistant's cached summary of the conversation plus its newest messages. "
              "Stored nowhere, sent to nobody; counts against the caller's hourly assistant quota "
              "(429 rate_limited past it; 503 unavailable when the provider fails).")
_assist_route("suggestion", "suggestion", "An AI-suggested reply for staff to edit and send (staff only)",
              "The reply the assistant would give to the newest message. Stored nowhere and sent to "
              "nobody: staff edit it and send it as their own message. Counts against the caller's "
              "hourly assistant quota (429 rate_limited past it; 503 unavailable when the provider fails).")
