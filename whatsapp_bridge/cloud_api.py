"""The Graph API client for the WhatsApp Cloud API.

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with ``Authorization: Bearer`` for
texts (split at 4096 characters), templates and read receipts.

- Every attempt is bounded by ``timeout_s``; a call makes at most ``1 + max_retries`` attempts.
- 429, 5xx, timeouts and network errors are retried with capped exponential backoff and jitter,
  waiting at least ``Retry-After`` when the answer carries one (and giving up at once when it
  asks for longer than ``max_retry_after_s``: the caller's queue is the place for long waits).
  Any other 4xx is final. A timed-out send may have reached Meta, so a retry can duplicate it;
  Meta offers no idempotency key, and a duplicate beats a lost reply.
- Sends of one business number are paced ``min_interval_s`` apart (Meta limits throughput per
  number); different numbers do not wait for each other.
- The access token goes only into the ``Authorization`` header: never into exceptions or logs
  (Meta's error texts are scrubbed of it too).

The pure rules (split, window, OTP template) live in ``rules.py``, the error type and code
table in ``errors.py``; both are re-exported here.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from .errors import BAD_RESPONSE, INVALID, NETWORK, TIMEOUT, CloudApiError
from .rules import SERVICE_WINDOW, TEXT_LIMIT, otp_template_components, split_text, within_service_window

__all__ = [
    "SERVICE_WINDOW",
    "TEXT_LIMIT",
    "CloudApiClient",
    "CloudApiError",
    "SendResult",
    "backoff_delay",
    "otp_template_components",
    "split_text",
    "within_service_window",
]

log = logging.getLogger(__name__)

REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class SendResult:
    wamid: str  # Meta's id of the sent message: statuses webhooks refer to it
    to: str  # the contact's wa_id as Meta resolved it


def backoff_delay(attempt: int, base_s: float, cap_s: float, retry_after_s: float | None = None,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    "Equal jitter": half of the capped exponential step is fixed, half random, so clients that
    failed together do not retry together, yet each waits a sensible minimum. A ``Retry-After``
    from the server is a floor, never shortened by the jitter.
    """
    step: float = min(cap_s, base_s * 2.0**attempt)
    delay = step / 2 + rand() * step / 2
    return max(delay, retry_after_s) if retry_after_s is not None else delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


class CloudApiClient:
    """One per process, sharing the app's ``aiohttp.ClientSession``; safe for concurrent sends."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str = "https://graph.facebook.com",
                 api_version: str = "v21.0", timeout_s: float = 10, max_retries: int = 4,
                 min_interval_s: float = 0.0, *, backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0,
                 max_retry_after_s: float = 60.0) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_retries = max_retries
        self.min_interval_s = min_interval_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self._next_slot: dict[str, float] = {}  # phone_number_id -> monotonic time of its next send

    async def send_text(self, phone_number_id: str, access_token: str, to: str, body: str,
                        context_wamid: str | None = None) -> list[SendResult]:
        """Send ``body`` as one text message per 4096-character part, in order.

        ``context_wamid`` makes the first part a reply to that message. If a part fails, the
        raised ``CloudApiError.sent`` lists the parts already delivered.
        """
        parts = split_text(body)
        if not parts or not body.strip():
            raise CloudApiError(0, None, "a text message needs a non-empty body", state=INVALID)
        results: list[SendResult] = []
        for i, part in enumerate(parts):
            payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                       "type": "text", "text": {"body": part, "preview_url": False}}
            if context_wamid and i == 0:
                payload["context"] = {"message_id": context_wamid}
            try:
                results.append(await self._send(phone_number_id, access_token, payload))
            except CloudApiError as exc:
                exc.sent = list(results)
                raise
        return results

    async def send_template(self, phone_number_id: str, access_token: str, to: str, name: str, language: str,
                            components: list[dict[str, Any]] | None = None) -> SendResult:
        """Send an approved template: the only kind of message allowed outside the 24-hour window."""
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return await self._send(phone_number_id, access_token, {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "template", "template": template})

    async def mark_read(self, phone_number_id: str, access_token: str, wamid: str) -> None:
        """Show the contact blue ticks on ``wamid`` (and everything before it)."""
        await self._post(phone_number_id, access_token,
                         {"messaging_product": "whatsapp", "status": "read", "message_id": wamid})

    async def _send(self, phone_number_id: str, access_token: str, payload: dict[str, Any]) -> SendResult:
        await self._pace(phone_number_id)
        status, data = await self._post(phone_number_id, access_token, payload)
        wamid = _first(data.get("messages")).get("id")
        if not isinstance(wamid, str) or not wamid:
            # not retried: the message may well have gone out
            raise CloudApiError(status, None, "the Graph API answered without a message id", state=BAD_RESPONSE)
        return SendResult(wamid, str(_first(data.get("contacts")).get("wa_id") or payload["to"]))

    async def _pace(self, phone_number_id: str) -> None:
        if self.min_interval_s <= 0:
            return
        # Reserve the next free slot before sleeping: concurrent senders queue up in call order
        # without a lock, and a cancelled waiter merely leaves a gap.
        now = time.monotonic()
        slot = max(now, self._next_slot.get(phone_number_id, 0.0))
        self._next_slot[phone_number_id] = slot + self.min_interval_s
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _post(self, phone_number_id: str, access_token: str,
                    payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = f"{self.base_url}/{self.api_version}/{phone_number_id}/messages"
        headers = {"Authorization": f"Bearer {access_token}"}
        for attempt in range(self.max_retries + 1):
            try:
                return await self._attempt(url, headers, payload, access_token)
            except CloudApiError as error:
                too_long = error.retry_after_s is not None and error.retry_after_s > self.max_retry_after_s
                if not error.retryable or attempt >= self.max_retries or too_long:
                    log.debug("WhatsApp API call for number %s failed: %s", phone_number_id, error)
                    raise
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, error.retry_after_s)
                log.info("WhatsApp API %s (code %s) for number %s; retry %d/%d in %.2f s",
                         error.state, error.code, phone_number_id, attempt + 1, self.max_retries, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, url: str, headers: dict[str, str], payload: dict[str, Any],
                       access_token: str) -> tuple[int, dict[str, Any]]:
        try:
            async with self.session.post(url, json=payload, headers=headers, timeout=self.timeout) as resp:
                raw = await resp.read()
                status, reason, retry_after = resp.status, resp.reason or "", resp.headers.get("Retry-After")
        except TimeoutError:  # also aiohttp's ServerTimeoutError, which is a ClientError too
            raise CloudApiError(0, None, "the Graph API did not answer in time", state=TIMEOUT) from None
        except aiohttp.ClientError as exc:
            # the type only: an aiohttp message may quote the request
            raise CloudApiError(0, None, f"network error: {type(exc).__name__}", state=NETWORK) from None
        data = _json_object(raw)
        if status < 400:
            return status, data
        err = data.get("error")
        err = err if isinstance(err, dict) else {}
        error_data = err.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        title = str(err.get("message") or reason or "no error message")
        raise CloudApiError(
            status, _int(err.get("code")), _scrub(title, access_token),
            details=_scrub(str(details), access_token) if details else None,
            retry_after_s=parse_retry_after(retry_after),
        )


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; anything else (a proxy's HTML error page) as empty."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _first(items: Any) -> dict[str, Any]:
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _scrub(text: str, access_token: str) -> str:
    return text.replace(access_token, REDACTED) if access_token else text
