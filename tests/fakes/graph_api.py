"""A local server speaking the WhatsApp Cloud API endpoints we use, plus webhook builders.

``GraphApiFake`` records every request and answers with real-shaped bodies; ``fail_next``
queues failures (a status and Meta error code, optionally a delay) for the next requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve
from whatsapp_bridge.signature import sign


@dataclass
class Recorded:
    phone_number_id: str
    headers: dict[str, str]
    json: dict[str, Any]
    at: float


@dataclass
class _Failure:
    status: int
    code: int | None
    delay_s: float = 0.0
    retry_after: str | None = None


@dataclass
class GraphApiFake:
    requests: list[Recorded] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Condition | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, status: int, code: int | None = None, *, times: int = 1, delay_s: float = 0.0,
                  retry_after: str | None = None) -> None:
        self.failures.extend(_Failure(status, code, delay_s, retry_after) for _ in range(times))

    def sends(self) -> list[Recorded]:
        return [r for r in self.requests if r.json.get("type") in ("text", "template")]

    async def wait_for_sends(self, n: int, timeout: float = 10.0) -> list[Recorded]:
        assert self._arrived is not None
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.sends()) >= n), timeout)
        return self.sends()

    async def start(self) -> GraphApiFake:
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/{version}/{number}/messages", self._messages)
        self._runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and failure.delay_s:
            await asyncio.sleep(failure.delay_s)
        assert self._arrived is not None
        async with self._arrived:
            self.requests.append(Recorded(request.match_info["number"], dict(request.headers), body, time.monotonic()))
            self._arrived.notify_all()
        if failure is not None and failure.status >= 400:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
            return web.json_response({"error": {"message": "fake failure", "type": "OAuthException",
                                                "code": failure.code, "fbtrace_id": "x"}},
                                     status=failure.status, headers=headers)
        if body.get("status") == "read":
            return web.json_response({"success": True})
        wamid = f"wamid.OUT{next(self._ids):06d}"
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                                  "messages": [{"id": wamid}]})


def _envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id}, **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}]}


def make_message_webhook(phone_number_id: str, wa_id: str, name: str, wamid: str, message: dict[str, Any],
                         ts: int | None = None) -> dict[str, Any]:
    msg = {"from": wa_id, "id": wamid, "timestamp": str(ts or int(time.time())), **message}
    return _envelope(phone_number_id, {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [msg]})


def make_text_webhook(phone_number_id: str, wa_id: str, name: str, wamid: str, body: str,
                      ts: int | None = None) -> dict[str, Any]:
    return make_message_webhook(phone_number_id, wa_id, name, wamid, {"type": "text", "text": {"body": body}}, ts)


def make_status_webhook(phone_number_id: str, wamid: str, status: str, recipient_id: str = "491700000000",
                        ts: int | None = None, error_code: int | None = None) -> dict[str, Any]:
    st: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(ts or int(time.time())),
                          "recipient_id": recipient_id}
    if error_code is not None:
        st["errors"] = [{"code": error_code, "title": "Message failed", "message": "failed"}]
    return _envelope(phone_number_id, {"statuses": [st]})


def signed_post(app_secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload).encode()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(app_secret, raw)}
