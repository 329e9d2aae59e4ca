"""The Graph API client for the WhatsApp Cloud API.

Every request has a timeout. 429, 5xx, timeouts and network errors are retried with capped
exponential backoff and jitter (honouring ``Retry-After``); other 4xx are final. Sends of one
business number are paced (``min_interval_s``). The access token goes only into the
``Authorization`` header: never into exceptions or logs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
SERVICE_WINDOW = timedelta(hours=24)
ERROR_STATES = {
    131047: "outside_window",  # more than 24 hours since the customer last wrote
    131026: "undeliverable",
    131051: "unsupported_type",
    131052: "media_download_failed",
    130429: "rate_limited",
    131056: "rate_limited",  # pair rate limit
    80007: "rate_limited",
    131048: "spam_rate_limited",
    132000: "template_params",
    132001: "template_missing",
    190: "auth",
    100: "invalid",
    131008: "invalid",
    131009: "invalid",
}


@dataclass(frozen=True, slots=True)
class SendResult:
    wamid: str
    to: str


class CloudApiError(Exception):
    def __init__(self, http_status: int, code: int | None, title: str) -> None:
        self.http_status = http_status
        self.code = code
        self.title = title
        self.state = ERROR_STATES.get(code or 0, "rate_limited" if http_status == 429 else
                                      "server_error" if http_status >= 500 else
                                      "network" if http_status == 0 else "failed")
        super().__init__(f"WhatsApp API error {code} ({self.state}): {title}")


def within_service_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW


def split_text(body: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split on paragraph, line, then word boundaries; no part longer than ``limit``."""
    parts: list[str] = []
    rest = body
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit  # one very long word: cut hard
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def otp_template_components(code: str) -> list[dict[str, Any]]:
    """The body parameter and copy-code button of an authentication template."""
    return [
        {"type": "body", "parameters": [{"type": "text", "text": code}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": code}]},
    ]


class CloudApiClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str = "https://graph.facebook.com",
                 api_version: str = "v21.0", timeout_s: float = 10, max_retries: int = 4,
                 min_interval_s: float = 0.0, backoff_base_s: float = 0.5) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_retries = max_retries
        self.min_interval_s = min_interval_s
        self.backoff_base_s = backoff_base_s
        self._next_send: dict[str, float] = {}
        self._pace_locks: dict[str, asyncio.Lock] = {}

    async def send_text(self, phone_number_id: str, access_token: str, to: str, body: str,
                        context_wamid: str | None = None) -> list[SendResult]:
        results = []
        for i, part in enumerate(split_text(body)):
            payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                                       "type": "text", "text": {"body": part, "preview_url": False}}
            if context_wamid and i == 0:
                payload["context"] = {"message_id": context_wamid}
            results.append(await self._send(phone_number_id, access_token, payload))
        return results

    async def send_template(self, phone_number_id: str, access_token: str, to: str, name: str, language: str,
                            components: list[dict[str, Any]] | None = None) -> SendResult:
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return await self._send(phone_number_id, access_token, {"messaging_product": "whatsapp", "to": to,
                                                                "type": "template", "template": template})

    async def mark_read(self, phone_number_id: str, access_token: str, wamid: str) -> None:
        await self._post(phone_number_id, access_token,
                         {"messaging_product": "whatsapp", "status": "read", "message_id": wamid})

    async def _send(self, phone_number_id: str, access_token: str, payload: dict[str, Any]) -> SendResult:
        await self._pace(phone_number_id)
        body = await self._post(phone_number_id, access_token, payload)
        try:
            return SendResult(str(body["messages"][0]["id"]), str(payload["to"]))
        except (KeyError, IndexError, TypeError):
            raise CloudApiError(200, None, "unexpected response from the Graph API") from None

    async def _pace(self, phone_number_id: str) -> None:
        if self.min_interval_s <= 0:
            return
        lock = self._pace_locks.setdefault(phone_number_id, asyncio.Lock())
        async with lock:
            wait = self._next_send.get(phone_number_id, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_send[phone_number_id] = time.monotonic() + self.min_interval_s

    async def _post(self, phone_number_id: str, access_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{self.api_version}/{phone_number_id}/messages"
        headers = {"Authorization": f"Bearer {access_token}"}
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self.session.post(url, json=payload, headers=headers, timeout=self.timeout) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status < 400:
                        return data if isinstance(data, dict) else {}
                    err = (data or {}).get("error", {}) if isinstance(data, dict) else {}
                    error = CloudApiError(resp.status, err.get("code"), str(err.get("message") or resp.reason))
                    if "Retry-After" in resp.headers:
                        try:
                            retry_after = float(resp.headers["Retry-After"])
                        except ValueError:
                            retry_after = None
                    retryable = resp.status == 429 or resp.status >= 500 or error.state == "rate_limited"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = CloudApiError(0, None, f"network error: {type(exc).__name__}")
                retryable = True
            if not retryable or attempt >= self.max_retries:
                raise error
            delay = retry_after if retry_after is not None else self.backoff_base_s * 2**attempt
            await asyncio.sleep(min(delay, 30.0) * (0.8 + 0.4 * random.random()))
            attempt += 1
            log.info("WhatsApp API %s; retry %d", error.state, attempt)
