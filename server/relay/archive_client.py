"""Reads from chat-archive: a room's archived history, so history continues past the hot
store, and archived search hits, so search does.

History authenticates with a short token of chat-server's own service identity
(``chatcore.access.SERVICE_ROLE``), not a user's: chat-server has already applied the access
rule to the user asking, and chat-archive accepts this identity on the history route only.
chat-server itself refuses it as a user (no user row has id 0 or that role). Search passes the
user's own bearer token through instead: chat-archive asks chat-server about that user and
decides room by room with the shared rule, as for any user's query.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from chatcore.access import SERVICE_ROLE, SERVICE_USER_ID
from chatcore.errors import Unavailable
from chatcore.events import MessageRecord
from chatcore.tokens import TokenIssuer


def service_token(issuer: TokenIssuer) -> str:
    """A token of chat-server's service identity, for its history reads from the archive."""
    return issuer.issue(SERVICE_USER_ID, SERVICE_ROLE, 0)


class ArchiveHistoryClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: Callable[[], str], timeout_s: float = 5.0) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def history(self, room_id: int, before_seq: int, limit: int) -> tuple[list[MessageRecord], bool]:
        url = f"{self.base_url}/archive/v1/rooms/{room_id}/history"
        try:
            async with self.session.get(url, params={"before_seq": before_seq, "limit": limit}, timeout=self.timeout,
                                        headers={"Authorization": f"Bearer {self.token()}"}) as resp:
                if resp.status != 200:
                    raise Unavailable(f"the archive answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"the archive is unreachable ({type(exc).__name__})") from None
        return [MessageRecord.from_wire(m) for m in body["messages"]], bool(body["has_more"])

    async def search(self, authorization: str, params: dict[str, str]) -> tuple[list[MessageRecord], str | None]:
        """chat-archive's literal search, asked with the user's own ``Authorization`` header:
        chat-archive checks it with chat-server and applies the access rule to that user, so the
        service token never reads search results. Returns (messages, next cursor)."""
        url = f"{self.base_url}/archive/v1/search"
        try:
            async with self.session.get(url, params=params, timeout=self.timeout,
                                        headers={"Authorization": authorization}) as resp:
                if resp.status != 200:
                    raise Unavailable(f"the archive answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"the archive is unreachable ({type(exc).__name__})") from None
        return [MessageRecord.from_wire(m) for m in body["messages"]], body.get("next_cursor")
