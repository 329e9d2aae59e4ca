"""The Graph API client for the WhatsApp Cloud API.

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with ``Authorization: Bearer`` for
texts (split at 4096 characters), templates, media messages and read receipts; media in and out:
``GET /{media-id}`` (where a contact's file is), a ``GET`` of that URL (its bytes, streamed) and
``POST /{phone_number_id}/media`` (a multipart upload, streamed, answering a media id).

- Every attempt is bounded by ``timeout_s``; a call makes at most ``1 + max_retries`` attempts.
- 429, 5xx, timeouts and network errors are retried with capped exponential backoff and jitter,
  waiting at least ``Retry-After`` when the answer carries one (and giving up at once when it
  asks for longer than ``max_retry_after_s``: the caller's queue is the place for long waits).
  Any other 4xx is final. A timed-out send may have reached Meta, so a retry can duplicate it;
  Meta offers no idempotency key, and a duplicate beats a lost reply.
- Sends of one business number are paced ``min_interval_s`` apart (Meta limits throughput per
  number); different numbers do not wait for each other.
- The access token goes only into the ``Authorization`` header: never into exceptions or logs
  (Meta's error texts are scrubbed of it too), and never to a media URL outside Meta's own hosts
  (``media_url_allowed``).

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from .errors import BAD_RESPONSE, INVALID, NETWORK, TIMEOUT, TOO_LARGE, CloudApiError
from .media import CAPTIONED, MediaInfo
from .rules import SERVICE_WINDOW, TEXT_LIMIT, otp_template_components, split_text, within_service_window

__all__ = [
    "SERVICE_WINDOW",
    "TEXT_LIMIT",
    "CloudApiClient",
    "CloudApiError",
    "MediaInfo",
    "SendResult",
    "backoff_delay",
    "otp_template_components",
    "split_text",
    "within_service_window",
]

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
MEDIA_CHUNK = 256 * 1024  # bytes per read of a media download
# Meta serves media from its CDN hosts; the bearer token is sent to nothing else
MEDIA_HOST_SUFFIXES = (".fbsbx.com", ".facebook.com", ".fbcdn.net", ".whatsapp.net")


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
                 max_retry_after_s: float = 60.0, media_timeout_s: float = 60.0) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        # a media transfer (download or upload) as a whole, bytes included
        self.media_timeout = aiohttp.ClientTimeout(total=media_timeout_s)
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

    async def list_templates(self, waba_id: str, access_token: str, *, page_size: int = 100,
                             max_pages: int = 50) -> list[dict[str, Any]]:
        """The message templates of a WhatsApp Business Account (``GET /{waba-id}/message_templates``),
        following Meta's ``paging.cursors.after`` for at most ``max_pages`` pages (each attempt
        bounded by ``timeout_s``, retried like every call)."""
        url = f"{self.base_url}/{self.api_version}/{waba_id}/message_templates"
        fields = "name,language,status,category,components"
        found: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(max_pages):
            page_url = f"{url}?fields={fields}&limit={page_size}" + (f"&after={quote(after, safe='')}" if after else "")

            def attempt(u: str = page_url) -> Awaitable[tuple[int, dict[str, Any]]]:
                return self._attempt("GET", u, access_token)

            _, data = await self._retrying(waba_id, attempt)
            items = data.get("data")
            if not isinstance(items, list):
                raise CloudApiError(200, None, "the Graph API answered a template list without data",
                                    state=BAD_RESPONSE)
            found.extend(t for t in items if isinstance(t, dict))
            paging = data.get("paging")
            cursors = paging.get("cursors") if isinstance(paging, dict) else None
            nxt = cursors.get("after") if isinstance(cursors, dict) and isinstance(paging, dict) and paging.get("next") else None
            if not isinstance(nxt, str) or not nxt:
                return found
            after = nxt
        log.warning("template list of %s cut at %d pages", waba_id, max_pages)
        return found

    async def send_media(self, phone_number_id: str, access_token: str, to: str, kind: str, media_id: str, *,
                         caption: str | None = None, filename: str | None = None) -> SendResult:
        """Send an uploaded file as an ``image``, ``video``, ``audio`` or ``document`` message;
        ``caption`` only where WhatsApp shows one, ``filename`` for documents."""
        body: dict[str, Any] = {"id": media_id}
        if caption and kind in CAPTIONED:
            body["caption"] = caption
        if filename and kind == "document":
            body["filename"] = filename
        return await self._send(phone_number_id, access_token, {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: body})

    async def upload_media(self, phone_number_id: str, access_token: str, mime: str, filename: str,
                           chunks: Callable[[], AsyncIterator[bytes]]) -> str:
        """Upload a file for sending (``POST /{phone_number_id}/media``, multipart); its media id.

        ``chunks`` opens the bytes afresh for each attempt: they stream from the store to Meta
        and are never held whole."""
        url = f"{self.base_url}/{self.api_version}/{phone_number_id}/media"

        def form() -> aiohttp.MultipartWriter:
            writer = aiohttp.MultipartWriter("form-data")
            for name, value in (("messaging_product", "whatsapp"), ("type", mime)):
                part = writer.append(value, {"Content-Type": "text/plain"})
                part.set_content_disposition("form-data", name=name)
            part = writer.append_payload(aiohttp.AsyncIterablePayload(chunks(), content_type=mime))
            part.set_content_disposition("form-data", name="file", filename=filename)
            return writer

        _, data = await self._retrying(phone_number_id, lambda: self._attempt(
            "POST", url, access_token, data=form(), timeout=self.media_timeout))
        media_id = data.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise CloudApiError(200, None, "the Graph API answered an upload without a media id", state=BAD_RESPONSE)
        return media_id

    async def media_info(self, media_id: str, access_token: str) -> MediaInfo:
        """Where a contact's file is (``GET /{media-id}``): a URL valid for 5 minutes, its type,
        size and SHA-256."""
        url = f"{self.base_url}/{self.api_version}/{media_id}"
        _, data = await self._retrying(media_id, lambda: self._attempt("GET", url, access_token))
        where = data.get("url")
        if not isinstance(where, str) or not where:
            raise CloudApiError(200, None, "the Graph API answered without a media URL", state=BAD_RESPONSE)
        size = _int(data.get("file_size"))
        sha = data.get("sha256")
        return MediaInfo(where, str(data.get("mime_type") or "application/octet-stream"), size,
                         sha if isinstance(sha, str) and sha else None)

    def media_url_allowed(self, url: str) -> bool:
        """Whether the bearer token may be sent to ``url``: HTTPS on one of Meta's media hosts,
        or the Graph API's own origin (a test server, a proxy in front of Meta)."""
        try:
            parts, base = urlsplit(url), urlsplit(self.base_url)
        except ValueError:
            return False
        host = (parts.hostname or "").lower()
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return True
        return parts.scheme == "https" and any(host.endswith(s) for s in MEDIA_HOST_SUFFIXES)

    async def download_media(self, url: str, access_token: str, max_bytes: int) -> AsyncGenerator[bytes, None]:
        """The bytes at a media URL, in chunks, never more than ``max_bytes`` (else
        ``CloudApiError`` state ``too_large``). Getting an answer is retried like any call; once
        bytes flow, a failure (timeout, cut connection) is raised to the caller."""
        if not self.media_url_allowed(url):
            raise CloudApiError(0, None, "the media URL is not on a WhatsApp media host", state=INVALID)
        headers = _auth_header(access_token)
        got = 0  # bytes yielded: once any are, a failure cannot be retried (they would repeat)
        for attempt in range(self.max_retries + 1):
            try:
                async with self.session.get(url, headers=headers, timeout=self.media_timeout,
                                            max_redirects=3) as resp:
                    if resp.status >= 400:
                        raw = await resp.content.read(64 * 1024)
                        raise _http_error(resp.status, resp.reason or "", resp.headers.get("Retry-After"), raw,
                                          access_token)
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise _too_large(max_bytes)
                    async for chunk in resp.content.iter_chunked(MEDIA_CHUNK):
                        got += len(chunk)
                        if got > max_bytes:
                            raise _too_large(max_bytes)
                        yield chunk
                    return
            except TimeoutError:
                error = CloudApiError(0, None, "the media download did not finish in time", state=TIMEOUT)
            except aiohttp.ClientError as exc:
                error = CloudApiError(0, None, f"network error: {type(exc).__name__}", state=NETWORK)
            except CloudApiError as exc:
                error = exc
            if got or not self._retry_again(error, attempt, "media download"):
                raise error
            await asyncio.sleep(backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, error.retry_after_s))
        raise AssertionError("unreachable: the last attempt returns or raises")

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
        return await self._retrying(phone_number_id, lambda: self._attempt("POST", url, access_token, json=payload))

    def _retry_again(self, error: CloudApiError, attempt: int, url_label: str) -> bool:
        too_long = error.retry_after_s is not None and error.retry_after_s > self.max_retry_after_s
        if not error.retryable or attempt >= self.max_retries or too_long:
            log.debug("WhatsApp API call for %s failed: %s", url_label, error)
            return False
        log.info("WhatsApp API %s (code %s) for %s; retry %d/%d", error.state, error.code, url_label,
                 attempt + 1, self.max_retries)
        return True

    async def _retrying(self, label: str,
                        attempt_once: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]) -> tuple[int, dict[str, Any]]:
        """``attempt_once`` until it succeeds, with backoff on passing failures (``label`` names
        the number or media in logs: never the token)."""
        for attempt in range(self.max_retries + 1):
            try:
                return await attempt_once()
            except CloudApiError as error:
                if not self._retry_again(error, attempt, f"number or media {label}"):
                    raise
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, error.retry_after_s)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, method: str, url: str, access_token: str, *, json: dict[str, Any] | None = None,
                       data: Any = None, timeout: aiohttp.ClientTimeout | None = None) -> tuple[int, dict[str, Any]]:
        headers = _auth_header(access_token)
        try:
            async with self.session.request(method, url, json=json, data=data, headers=headers,
                                            timeout=timeout or self.timeout) as resp:
                raw = await resp.read()
                status, reason, retry_after = resp.status, resp.reason or "", resp.headers.get("Retry-After")
        except TimeoutError:  # also aiohttp's ServerTimeoutError, which is a ClientError too
            raise CloudApiError(0, None, "the Graph API did not answer in time", state=TIMEOUT) from None
        except aiohttp.ClientError as exc:
            # the type only: an aiohttp message may quote the request
            raise CloudApiError(0, None, f"network error: {type(exc).__name__}", state=NETWORK) from None
        if status < 400:
            return status, _json_object(raw)
        raise _http_error(status, reason, retry_after, raw, access_token)


def _auth_header(access_token: str) -> dict[str, str]:
    """The bearer header; a token with control characters (a paste gone wrong) is refused as an
    auth failure here rather than by the HTTP library as a header injection."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in access_token):
        raise CloudApiError(0, None, "the access token contains control characters", state="auth")
    return {"Authorization": f"Bearer {access_token}"}


def _http_error(status: int, reason: str, retry_after: str | None, raw: bytes, access_token: str) -> CloudApiError:
    """Meta's error envelope (or a proxy's page) as a ``CloudApiError``, scrubbed of the token."""
    data = _json_object(raw)
    err = data.get("error")
    err = err if isinstance(err, dict) else {}
    error_data = err.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    title = str(err.get("message") or reason or "no error message")
    return CloudApiError(
        status, _int(err.get("code")), _scrub(title, access_token),
        details=_scrub(str(details), access_token) if details else None,
        retry_after_s=parse_retry_after(retry_after),
    )


def _too_large(max_bytes: int) -> CloudApiError:
    return CloudApiError(0, None, f"the media file is larger than {max_bytes} bytes", state=TOO_LARGE)


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
