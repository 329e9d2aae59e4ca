"""A local server speaking the OpenAI chat completions API (streaming), for the real ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes import serve


class OpenAIFake:
    def __init__(self, chunks: list[str]) -> None:
        self.chunks = chunks
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

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
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "".join(self.chunks)}}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, c in enumerate(self.chunks):
            choice = {"index": 0, "delta": {"content": c}, "finish_reason": "stop" if i == len(self.chunks) - 1 else None}
            await resp.write(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
