"""One interface for every way we reach a WhatsApp contact: the Cloud API and linked devices.

A conversation is bound to one channel (a Cloud API business number, or a phone linked as a
companion device, see ``linked_device.py``); the outbox, the assistant and the desk call a
``Channel`` and never learn which. Inbound traffic of every channel becomes the same records
(``models.InboundMessage``, ``models.StatusUpdate``).

Every failure is a ``CloudApiError`` (the name is historical: it is the channel error), whose
``state`` is the vocabulary staff see and whose ``retryable`` tells the outbox whether to queue
the message again. A capability a channel lacks fails with state ``unsupported`` (not retryable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .cloud_api import CloudApiClient, SendResult
from .errors import CloudApiError

ChannelKind = Literal["cloud_api", "linked_device"]
CHANNELS: tuple[ChannelKind, ...] = ("cloud_api", "linked_device")
UNSUPPORTED = "unsupported"

ChannelError = CloudApiError


@dataclass(frozen=True, slots=True)
class OutboundFile:
    """A file to send: its type and name, its size in bytes, and ``open``, which streams its
    bytes from the start (called afresh for each attempt; the store serves them)."""

    mime: str
    name: str
    size: int
    open: Callable[[], AsyncIterator[bytes]]


def unsupported(what: str) -> CloudApiError:
    return CloudApiError(0, None, f"{what} is not supported on this channel", state=UNSUPPORTED)


class Channel(Protocol):
    """Sends to the contacts of one business identity (a number or a linked session)."""

    kind: ChannelKind

    async def send_text(self, to: str, body: str) -> list[SendResult]:
        """One or more messages (long texts are split); their ids in order."""
        ...

    async def send_media(self, to: str, kind: str, file: OutboundFile, *, caption: str | None = None) -> SendResult:
        """Upload ``file`` through the channel and send it as a ``kind`` message (image, video,
        audio, document; ``caption`` only where WhatsApp shows one)."""
        ...

    async def send_template(self, to: str, name: str, language: str,
                            components: Sequence[dict[str, Any]]) -> SendResult: ...

    async def mark_read(self, wamid: str, to: str) -> None:
        """Blue ticks on ``wamid`` (a message ``to`` sent us)."""
        ...


class CloudApiChannel:
    """The Cloud API of one business number (``wa_accounts`` row), through ``CloudApiClient``."""

    kind: ChannelKind = "cloud_api"

    def __init__(self, api: CloudApiClient, phone_number_id: str, access_token: str) -> None:
        self.api = api
        self.phone_number_id = phone_number_id
        self._token = access_token

    def __repr__(self) -> str:  # the token never reaches a log line
        return f"CloudApiChannel({self.phone_number_id!r})"

    async def send_text(self, to: str, body: str) -> list[SendResult]:
        return await self.api.send_text(self.phone_number_id, self._token, to, body)

    async def send_media(self, to: str, kind: str, file: OutboundFile, *, caption: str | None = None) -> SendResult:
        media_id = await self.api.upload_media(self.phone_number_id, self._token, file.mime, file.name, file.open)
        return await self.api.send_media(self.phone_number_id, self._token, to, kind, media_id,
                                         caption=caption, filename=file.name)

    async def send_template(self, to: str, name: str, language: str,
                            components: Sequence[dict[str, Any]]) -> SendResult:
        return await self.api.send_template(self.phone_number_id, self._token, to, name, language,
                                            list(components))

    async def mark_read(self, wamid: str, to: str) -> None:
        await self.api.mark_read(self.phone_number_id, self._token, wamid)
