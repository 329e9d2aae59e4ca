"""The provider interface every model backend implements, and helpers the providers share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

TurnRole = Literal["user", "assistant", "system-note"]
ErrorKind = Literal["timeout", "rate_limited", "blocked", "empty", "error"]


@dataclass(frozen=True, slots=True)
class Turn:
    role: TurnRole
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class Request:
    """One provider request, the same for every provider (built by ``ai.prompt``): ``system``
    holds only our instructions and goes in the provider's system slot; ``data`` is the one
    user-role content, the chat as a quoted data block. Nothing a person wrote is in ``system``."""

    system: str
    data: str
    # a person can take the conversation over (a WhatsApp conversation, where staff are told);
    # in team rooms nobody is, so an assistant must not promise it there
    handoff_possible: bool = False


class ProviderError(Exception):
    """A failed provider call. ``kind`` becomes the ``error`` of the room's system message and the
    metric's outcome; ``retryable`` is true for rate limits, 5xx and connection failures (not for
    4xx requests the provider will refuse again); ``retry_after`` is the provider's own hint."""

    def __init__(self, kind: ErrorKind, message: str = "", retry_after: float | None = None,
                 retryable: bool | None = None) -> None:
        super().__init__(message or kind)
        self.kind = kind
        self.retry_after = retry_after
        self.retryable = kind in ("rate_limited", "error") if retryable is None else retryable


class Provider(Protocol):
    name: str
    model: str
    offline: bool

    def stream_reply(self, request: Request) -> AsyncIterator[str]:
        """The reply as text chunks, in order. Raises ``ProviderError``."""
        ...

    async def summarise(self, previous_summary: str, messages: list[Turn]) -> str:
        """A new rolling summary covering the previous one and ``messages`` (a model gets both
        as data, through ``ai.prompt.summary_request``)."""
        ...


def parse_retry_after(value: object) -> float | None:
    """Seconds from a ``Retry-After`` header ("7") or a Google ``RetryInfo.retryDelay`` ("7s",
    "1.5s"); ``None`` when absent or unreadable (HTTP dates are rare for these APIs)."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(str(value).strip().removesuffix("s"))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def estimate_tokens(text: str) -> int:
    """About four characters a token for English text; good enough for budgets and the benchmark."""
    return max(1, (len(text) + 3) // 4)

