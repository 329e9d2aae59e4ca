"""A local server speaking the Gemini API (``generateContent`` and ``streamGenerateContent``
with SSE) that the real ``google-genai`` SDK is pointed at through ``base_url``.

Scripted: ``script(...)`` queues what the next requests get; otherwise every request streams
``default_reply`` in three chunks. Every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve


@dataclass
class Step:
    """What one request gets. ``status``: an error with that HTTP status (a 429 carries
    ``retry_after`` as the ``Retry-After`` header and as Google's ``RetryInfo.retryDelay``);
    ``delay``: wait ``delay_s``, then the default reply; ``blocked``: finishReason SAFETY."""

    kind: str  # "text" | "status" | "delay" | "blocked" | "empty"
    chunks: list[str] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    retry_after: float | None = None


@dataclass
class Recorded:
    method: str  # generateContent | streamGenerateContent
    model: str
    body: dict[str, Any]

    def user_texts(self) -> list[str]:
        return [p.get("text", "") for c in self.body.get("contents", []) for p in c.get("parts", [])]

    def system_text(self) -> str:
        return " ".join(p.get("text", "") for p in (self.body.get("systemInstruction") or {}).get("parts", []))


class GeminiFake:
    def __init__(self, default_reply: str = "Sure, here is what I know.") -> None:
        self.default_reply = default_reply
        self.steps: list[Step] = []
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at the same moment
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

    async def start(self) -> GeminiFake:
        app = web.Application()
        app.router.add_post("/{version}/models/{tail}", self._handle)
        self._runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _candidate(text: str | None, finish: str | None = None) -> dict[str, Any]:
        cand: dict[str, Any] = {"index": 0, "content": {"role": "model", "parts": [{"text": text}] if text else []}}
        if finish:
            cand["finishReason"] = finish
        return {"candidates": [cand], "modelVersion": "gemini-fake",
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15}}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["tail"].partition(":")
        body = await request.json()
        self.requests.append(Recorded(method, model, body))
        step = self.steps.pop(0) if self.steps else Step("text", self._split(self.default_reply))
        if step.kind == "delay":
            await asyncio.sleep(step.delay_s)
            step = Step("text", self._split(self.default_reply))
        if step.kind == "status":
            error: dict[str, Any] = {"code": step.status, "message": "fake error",
                                     "status": "RESOURCE_EXHAUSTED" if step.status == 429 else "INTERNAL"}
            headers = {}
            if step.retry_after is not None:
                headers["Retry-After"] = f"{step.retry_after:g}"
                error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                     "retryDelay": f"{step.retry_after:g}s"}]
            return web.json_response({"error": error}, status=step.status, headers=headers)
        if method == "generateContent":
            text = "".join(step.chunks) if step.kind == "text" else None
            return web.json_response(self._candidate(text, "STOP" if text else "SAFETY"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if step.kind == "blocked":
            events = [self._candidate(None, "SAFETY")]
        elif step.kind == "empty":
            events = [self._candidate(None, "STOP")]
        else:
            events = [self._candidate(c, "STOP" if i == len(step.chunks) - 1 else None) for i, c in enumerate(step.chunks)]
        for ev in events:
            await resp.write(f"data: {json.dumps(ev)}\r\n\r\n".encode())
        await resp.write_eof()
        return resp

    @staticmethod
    def _split(text: str) -> list[str]:
        third = max(1, len(text) // 3)
        return [text[:third], text[third : 2 * third], text[2 * third :]]
