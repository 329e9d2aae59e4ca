"""A local server speaking the OpenAI chat completions API (``POST /v1/chat/completions``, plain
and ``stream=True`` with SSE ``data:`` lines ending in ``[DONE]``), for the real ``openai`` SDK.

Scripted like the Gemini fake: ``script(Step(...))`` queues what the next requests get
(``text`` chunks, ``status`` errors with an OpenAI error body and ``Retry-After``, ``delay``,
``blocked`` = finish_reason ``content_filter``, ``empty``); otherwise every request gets
``chunks``. Every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from tests.fakes import serve
from tests.fakes.gemini import Step


class OpenAIFake:
    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks
        self.steps: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def streamed(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("stream")]

    async def start(self) -> OpenAIFake:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        step = self.steps.pop(0) if self.steps else Step("text", self.chunks)
        if step.kind == "delay":
            await asyncio.sleep(step.delay_s)
            step = Step("text", self.chunks)
        if step.kind == "status":
            headers = {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else {}
            kind = "rate_limit_exceeded" if step.status == 429 else "server_error"
            return web.json_response(
                {"error": {"message": "fake error", "type": kind, "param": None, "code": kind}},
                status=step.status, headers=headers)
        chunks = step.chunks if step.kind == "text" else []
        finish = "content_filter" if step.kind == "blocked" else "stop"
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": finish,
                 "message": {"role": "assistant", "content": "".join(chunks) or None}}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        choices = [{"index": 0, "delta": {"content": c}, "finish_reason": None} for c in chunks]
        choices.append({"index": 0, "delta": {}, "finish_reason": finish})
        for choice in choices:
            await resp.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
