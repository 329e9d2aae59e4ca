"""Who may read what in the archive: chat-server's answer for this request, the shared rule.

A token's signature and expiry say who the caller was when it was issued; they do not say
whether logout-all or a role change revoked it since, or whether the caller still belongs to
a room. chat-archive holds only the public key and no database of users, so on every request
it asks chat-server (``POST /api/v1/access/rooms``), forwarding the caller's own
``Authorization`` header: chat-server authenticates it fully (token version included) and
answers the caller's current role and compliance permission with the facts of the rooms asked
about. chat-archive then applies ``chatcore.access.can_read_room`` itself. A chat-server that
does not answer in ``CHAT_SERVER_TIMEOUT_S`` means ``unavailable`` (503), never open access.

The local signature check comes first (``archive.api.caller``), so forged and expired tokens
are refused without a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from chatcore.access import Principal, RoomFacts, can_read_room
from chatcore.errors import Forbidden, Invalid, Unauthorized, Unavailable

ROOMS_PER_QUESTION = 1000  # chat-server's cap on room_ids (server.actions.rooms.ACCESS_ROOMS_MAX)


@dataclass(frozen=True, slots=True)
class Standing:
    """The caller as chat-server knows them now, and the rooms asked about that they may read."""

    principal: Principal
    readable: frozenset[int]


class ChatServerAccess:
    """Asks chat-server; ``base_urls`` are tried in order until one answers (any node will do)."""

    def __init__(self, session: aiohttp.ClientSession, base_urls: list[str], timeout_s: float) -> None:
        self.session = session
        self.urls = [u.rstrip("/") + "/api/v1/access/rooms" for u in base_urls]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def standing(self, authorization: str, room_ids: list[int], purpose: dict[str, Any] | None = None) -> Standing:
        """``purpose`` (``{action, params, client_ip}``) is what the request is for: chat-server
        writes it to its audit log when the caller is staff (``docs/DESK.md``)."""
        if len(room_ids) > ROOMS_PER_QUESTION:
            raise Invalid(f"the query touches more than {ROOMS_PER_QUESTION} rooms: narrow it with room_id or from/to")
        failure = "no CHAT_SERVER_URL"
        for url in self.urls:
            try:
                status, body = await self._ask(url, authorization, room_ids, purpose)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                failure = type(exc).__name__  # this node is away: the next one may answer
                continue
            if status >= 500 or status == 429:  # draining, overloaded: likewise
                failure = f"it answered {status}"
                continue
            return self._standing(status, body, room_ids)
        raise Unavailable(f"chat-server cannot confirm access ({failure})")

    async def _ask(self, url: str, authorization: str, room_ids: list[int],
                   purpose: dict[str, Any] | None) -> tuple[int, Any]:
        question: dict[str, Any] = {"room_ids": room_ids}
        if purpose is not None:
            question["purpose"] = purpose
        async with self.session.post(url, json=question, timeout=self.timeout,
                                     headers={"Authorization": authorization}) as resp:
            body = await resp.json(content_type=None) if resp.status in (200, 401, 403) else None
            return resp.status, body

    @staticmethod
    def _standing(status: int, body: Any, room_ids: list[int]) -> Standing:
        if status == 401:
            raise Unauthorized(_message(body, "token revoked"))
        if status == 403:
            raise Forbidden(_message(body, "forbidden"))
        if status != 200:
            raise Unavailable(f"chat-server cannot confirm access (it answered {status})")
        try:
            user = body["user"]
            principal = Principal(int(user["id"]), str(user["role"]), bool(user["compliance"]))
            facts = [RoomFacts(int(r["id"]), str(r["kind"]), bool(r["member"])) for r in body["rooms"]]
        except (KeyError, TypeError, ValueError):
            raise Unavailable("chat-server's access answer is malformed") from None
        asked = set(room_ids)
        # the rule is applied here too: chat-server leaves out what the caller may not read, and
        # a room it did not list, or that the shared rule refuses, stays unreadable
        return Standing(principal, frozenset(f.id for f in facts if f.id in asked and can_read_room(principal, f)))


def _message(body: Any, default: str) -> str:
    try:
        return str(body["error"]["message"])
    except (KeyError, TypeError):
        return default
