"""A local server speaking the WhatsApp Cloud API endpoint we use, plus webhook builders.

``GraphApiFake`` serves ``POST /{version}/{phone_number_id}/messages`` on 127.0.0.1: it records
every request on arrival (path, headers, JSON body, monotonic time) and answers like Meta does
(``{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}], "messages": [{"id":
"wamid..."}]}`` for sends, ``{"success": true}`` for read receipts, Meta's error envelope for
failures). Failures are programmed per request, in order::

    graph.fail_next(429, 130429)            # rate limited once, then success
    graph.fail_next(400, 131047)            # outside the 24-hour window
    graph.fail_next(500, times=10)          # a broken API
    graph.fail_next(502, raw_body=b"<html>")  # a proxy's error page
    graph.delay_next(2.0)                   # a slow answer (success after the delay)
    graph.pass_next(); graph.fail_next(400, 131047)  # the first request succeeds, the second fails

With ``access_token`` set, a request without that bearer token gets Meta's 401 / code 190.

Media, both ways. ``serve_media(media_id, data, mime)`` makes a contact's file available:
``GET /{version}/{media_id}`` answers Meta's ``{url, mime_type, sha256 (hex), file_size, id}``
with a URL on this server, and a ``GET`` of that URL (bearer token required) streams the bytes.
An unknown media id answers Meta's 404 (code 100). ``fail_media_next(status, on="info" |
"download", delay_s=...)`` programs failures and slow answers of those two (a delay longer
than the client's timeout is a timeout). ``POST /{version}/{phone_number_id}/media`` takes a
multipart upload (``messaging_product``, ``type``, ``file``), records it in ``uploads`` (the
bytes, the part's file name and type) and answers ``{"id": ...}``; uploads share the failure
queue of ``fail_next`` with message sends. ``media_requests`` records every media GET.

Templates: ``set_templates(waba_id, [...])`` serves ``GET /{version}/{waba_id}/message_templates``
as Meta does, ``limit`` items a page with ``paging.cursors.after`` and ``paging.next`` while more
remain (``template_requests`` records each page asked for). ``fail_for(to, status, code)`` makes
every send to one recipient fail (a number not on WhatsApp: 131026), whatever the order.

Webhook builders produce real-shaped payloads (``make_text_webhook``, ``make_media_webhook``,
``make_message_webhook``, ``make_status_webhook``) and their signed POST (``signed_post``,
``signed_post_headers``) for the tests of chat-server's webhook route.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes import serve
from whatsapp_bridge.signature import sign

DEFAULT_DISPLAY_PHONE = "15550001111"
DEFAULT_RECIPIENT = "491700000000"

# (title, details) Meta sends for the codes tests use; the message field reads "(#code) title".
META_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "Invalid request or possible server error."),
    2: ("Service temporarily unavailable", "Temporary due to downtime or due to being overloaded."),
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    190: ("Invalid OAuth access token - Cannot parse access token", "The access token has expired or is invalid."),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131026: ("Message undeliverable", "Unable to deliver message to the recipient."),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours have passed since "
                                      "the customer last replied to this number."),
    132015: ("Template is paused", "The template has been paused due to low quality."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a short period."),
}


def meta_error(code: int | None, title: str | None = None) -> dict[str, Any]:
    """Meta's error object (``{"error": ...}``'s value) for ``code``."""
    known_title, details = META_ERRORS.get(code or 0, ("Something went wrong", "Unknown error."))
    title = title or known_title
    return {"message": f"(#{code}) {title}" if code is not None else title, "type": "OAuthException",
            "code": code, "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "AbCdEfGhIjKlMnOp"}


@dataclass
class Recorded:
    phone_number_id: str
    headers: dict[str, str]
    json: dict[str, Any]
    at: float  # time.monotonic() on arrival
    version: str = ""


@dataclass
class Upload:
    phone_number_id: str
    headers: dict[str, str]
    fields: dict[str, str]  # the text parts: messaging_product, type
    filename: str | None
    content_type: str | None
    data: bytes
    media_id: str


@dataclass
class MediaGet:
    path: str
    headers: dict[str, str]
    on: str  # info | download


@dataclass
class _Failure:
    status: int
    code: int | None
    delay_s: float = 0.0
    retry_after: str | None = None
    raw_body: bytes | None = None
    message: str | None = None


@dataclass
class GraphApiFake:
    access_token: str | None = None  # when set, other bearer tokens are refused like Meta does
    requests: list[Recorded] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    port: int = 0
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media id -> (bytes, mime)
    media_failures: dict[str, list[_Failure]] = field(default_factory=lambda: {"info": [], "download": []})
    media_requests: list[MediaGet] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    templates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # waba id -> templates
    template_requests: list[dict[str, str]] = field(default_factory=list)
    failing_recipients: dict[str, _Failure] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Condition | None = None
    _stopping: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, code: int | None = None, *, times: int = 1, delay_s: float = 0.0,
                  retry_after: str | None = None, raw_body: bytes | None = None, message: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` and Meta's error body for ``code``.

        ``raw_body`` replaces the JSON body (a proxy's error page, or with a 2xx status an odd
        success); ``message`` replaces the error title. A status below 400 without ``raw_body``
        is a normal success, after ``delay_s`` if given.
        """
        self.failures.extend(_Failure(status, code, delay_s, retry_after, raw_body, message) for _ in range(times))

    def delay_next(self, delay_s: float, *, times: int = 1) -> None:
        """Answer the next ``times`` requests normally, each after ``delay_s``."""
        self.fail_next(200, None, times=times, delay_s=delay_s)

    def pass_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests normally: failures queued after them come later."""
        self.fail_next(200, None, times=times)

    def serve_media(self, media_id: str, data: bytes, mime: str) -> None:
        """A contact's file, as Meta keeps it for the business to download."""
        self.media[media_id] = (data, mime)

    def fail_media_next(self, status: int, code: int | None = None, *, on: str = "info", times: int = 1,
                        delay_s: float = 0.0) -> None:
        """Answer the next ``times`` media ``info`` (GET /{media-id}) or ``download`` requests with
        ``status`` (after ``delay_s``); a status below 400 is a normal answer after the delay."""
        self.media_failures[on].extend(_Failure(status, code, delay_s) for _ in range(times))

    def set_templates(self, waba_id: str, templates: list[dict[str, Any]]) -> None:
        self.templates[waba_id] = templates

    def fail_for(self, to: str, status: int, code: int | None = None) -> None:
        """Every send to ``to`` fails with ``status`` and Meta's body for ``code``."""
        self.failing_recipients[to.lstrip("+")] = _Failure(status, code)

    def sends(self) -> list[Recorded]:
        return [r for r in self.requests
                if r.json.get("type") in ("text", "template", "image", "video", "audio", "document", "sticker")]

    async def wait_for_sends(self, n: int, timeout: float = 10.0) -> list[Recorded]:
        assert self._arrived is not None, "start() the fake first"
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.sends()) >= n), timeout)
        return self.sends()

    async def start(self) -> GraphApiFake:
        self._arrived = asyncio.Condition()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{version}/{number}/messages", self._messages)
        app.router.add_post("/{version}/{number}/media", self._upload)
        app.router.add_get("/{version}/{media_id}", self._media_info)
        app.router.add_get("/{version}/{waba_id}/message_templates", self._templates)
        app.router.add_get("/download/{media_id}", self._media_download)
        self._runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # end programmed delays so shutdown does not wait for them
        if self._runner is not None:
            await self._runner.cleanup()

    async def _messages(self, request: web.Request) -> web.Response:
        assert self._arrived is not None and self._stopping is not None
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        async with self._arrived:
            self.requests.append(Recorded(request.match_info["number"], dict(request.headers),
                                          body if isinstance(body, dict) else {}, time.monotonic(),
                                          request.match_info["version"]))
            self._arrived.notify_all()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and failure.delay_s:
            try:
                await asyncio.wait_for(self._stopping.wait(), failure.delay_s)
            except TimeoutError:
                pass
        if failure is None and isinstance(body, dict):
            failure = self.failing_recipients.get(str(body.get("to", "")).lstrip("+"))
        if failure is not None and (failure.status >= 400 or failure.raw_body is not None):
            return _failure_response(failure)
        if self.access_token is not None and request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.json_response({"error": meta_error(190)}, status=401)
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return web.json_response({"error": meta_error(100)}, status=400)
        if body.get("status") == "read":
            return web.json_response({"success": True})
        wamid = f"wamid.HBgM{next(self._ids):08d}"
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": body.get("to"), "wa_id": str(body.get("to", "")).lstrip("+")}],
                                  "messages": [{"id": wamid}]})


    async def _templates(self, request: web.Request) -> web.Response:
        self.template_requests.append(dict(request.query))
        if not self._authorised(request):
            return web.json_response({"error": meta_error(190)}, status=401)
        waba = request.match_info["waba_id"]
        if waba not in self.templates:
            return web.json_response({"error": meta_error(100, "Unsupported get request. Object does not exist")},
                                     status=400)
        items = self.templates[waba]
        limit = int(request.query.get("limit", "25"))
        start = int(request.query.get("after", "0"))
        page = items[start:start + limit]
        body: dict[str, Any] = {"data": page, "paging": {"cursors": {"before": str(start), "after": str(start + limit)}}}
        if start + limit < len(items):
            body["paging"]["next"] = f"{self.base_url}{request.path}?limit={limit}&after={start + limit}"
        return web.json_response(body)

    def _authorised(self, request: web.Request) -> bool:
        return self.access_token is None or request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _media_failure(self, request: web.Request, on: str) -> web.Response | None:
        assert self._stopping is not None
        self.media_requests.append(MediaGet(request.path, dict(request.headers), on))
        queue = self.media_failures[on]
        failure = queue.pop(0) if queue else None
        if failure is not None and failure.delay_s:
            try:
                await asyncio.wait_for(self._stopping.wait(), failure.delay_s)
            except TimeoutError:
                pass
        if failure is not None and failure.status >= 400:
            return _failure_response(failure)
        if not self._authorised(request):
            return web.json_response({"error": meta_error(190)}, status=401)
        return None

    async def _media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        refused = await self._media_failure(request, "info")
        if refused is not None:
            return refused
        if media_id not in self.media:
            return web.json_response({"error": meta_error(100, "Unsupported get request. Object does not exist")},
                                     status=404)
        data, mime = self.media[media_id]
        return web.json_response({"messaging_product": "whatsapp", "url": f"{self.base_url}/download/{media_id}",
                                  "mime_type": mime, "sha256": hashlib.sha256(data).hexdigest(),
                                  "file_size": len(data), "id": media_id})

    async def _media_download(self, request: web.Request) -> web.StreamResponse:
        media_id = request.match_info["media_id"]
        refused = await self._media_failure(request, "download")
        if refused is not None:
            return refused
        if media_id not in self.media:
            return web.Response(status=404, text="not found")
        data, mime = self.media[media_id]
        resp = web.StreamResponse(headers={"Content-Type": mime})
        resp.content_length = len(data)
        await resp.prepare(request)
        for i in range(0, len(data), 64 * 1024):
            await resp.write(data[i:i + 64 * 1024])
        await resp.write_eof()
        return resp

    async def _upload(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        fields: dict[str, str] = {}
        filename = content_type = None
        data = b""
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename, content_type = part.filename, part.headers.get("Content-Type")
                data = bytes(await part.read())
            elif part.name:
                fields[part.name] = await part.text()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and (failure.status >= 400 or failure.raw_body is not None):
            return _failure_response(failure)
        if not self._authorised(request):
            return web.json_response({"error": meta_error(190)}, status=401)
        if fields.get("messaging_product") != "whatsapp" or not data:
            return web.json_response({"error": meta_error(100)}, status=400)
        media_id = f"up{next(self._ids):08d}"
        assert self._arrived is not None
        async with self._arrived:
            self.uploads.append(Upload(number, dict(request.headers), fields, filename, content_type, data, media_id))
            self._arrived.notify_all()
        return web.json_response({"id": media_id})


def _failure_response(failure: _Failure) -> web.Response:
    headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
    if failure.raw_body is not None:
        return web.Response(body=failure.raw_body, status=failure.status, headers=headers, content_type="text/html")
    return web.json_response({"error": meta_error(failure.code, failure.message)}, status=failure.status,
                             headers=headers)


# --- webhook payloads ------------------------------------------------------------------------


def _envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DEFAULT_DISPLAY_PHONE, "phone_number_id": phone_number_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}


def _ts(ts: int | None) -> str:
    return str(ts if ts is not None else int(time.time()))


def make_message_webhook(phone_number_id: str, wa_id: str, name: str, wamid: str, message: dict[str, Any],
                         ts: int | None = None) -> dict[str, Any]:
    """A webhook carrying one inbound message; ``message`` holds ``type`` and its object."""
    msg = {"from": wa_id, "id": wamid, "timestamp": _ts(ts), **message}
    return _envelope(phone_number_id, {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [msg]})


def make_identity_webhook(phone_number_id: str, wamid: str, body: str, *, wa_id: str | None = None,
                          bsuid: str | None = None, name: str | None = None, ts: int | None = None) -> dict[str, Any]:
    """A 2026 text webhook whose sender is a number (``from``/``wa_id``), a business-scoped user
    id (``from_user_id``/``user_id``), or both."""
    msg: dict[str, Any] = {"id": wamid, "timestamp": _ts(ts), "type": "text", "text": {"body": body}}
    contact: dict[str, Any] = {"profile": {"name": name}} if name is not None else {}
    if wa_id is not None:
        msg["from"] = contact["wa_id"] = wa_id
    if bsuid is not None:
        msg["from_user_id"] = contact["user_id"] = bsuid
    return _envelope(phone_number_id, {"contacts": [contact], "messages": [msg]})


def make_text_webhook(phone_number_id: str, wa_id: str, name: str, wamid: str, body: str,
                      ts: int | None = None) -> dict[str, Any]:
    return make_message_webhook(phone_number_id, wa_id, name, wamid, {"type": "text", "text": {"body": body}}, ts)


def make_media_webhook(phone_number_id: str, wa_id: str, name: str, wamid: str, kind: str = "image", *,
                       media_id: str = "1234567890", mime_type: str = "image/jpeg", caption: str | None = None,
                       filename: str | None = None, ts: int | None = None) -> dict[str, Any]:
    """An inbound image, video, audio, sticker or document."""
    media: dict[str, Any] = {"mime_type": mime_type, "sha256": "k1jHqbbZ0aEbGTTbqNwA1w==", "id": media_id}
    if caption is not None:
        media["caption"] = caption
    if filename is not None:
        media["filename"] = filename
    return make_message_webhook(phone_number_id, wa_id, name, wamid, {"type": kind, kind: media}, ts)


def make_status_webhook(phone_number_id: str, wamid: str, status: str, recipient_id: str = DEFAULT_RECIPIENT,
                        ts: int | None = None, error_code: int | None = None, *,
                        error_title: str | None = None) -> dict[str, Any]:
    """A delivery status of an outbound message; with ``error_code``, Meta's errors[] entry."""
    st: dict[str, Any] = {"id": wamid, "status": status, "timestamp": _ts(ts), "recipient_id": recipient_id}
    if status in ("sent", "delivered"):
        st["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
        st["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if error_code is not None:
        known_title, details = META_ERRORS.get(error_code, ("Message failed to send", "Unknown error."))
        st["errors"] = [{"code": error_code, "title": error_title or known_title, "message": error_title or known_title,
                         "error_data": {"details": details},
                         "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    return _envelope(phone_number_id, {"statuses": [st]})


def signed_post_headers(app_secret: str, raw: bytes) -> dict[str, str]:
    """The headers Meta sends with a webhook POST of ``raw``."""
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(app_secret, raw)}


def signed_post(app_secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """``payload`` as the raw body Meta would POST, and its signed headers."""
    raw = json.dumps(payload).encode()
    return raw, signed_post_headers(app_secret, raw)
