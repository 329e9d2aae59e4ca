"""Local HTTP servers standing in for the true externals (Gemini, OpenAI-compatible servers, the
WhatsApp Graph API): the real SDKs and clients talk to them by base URL."""

from __future__ import annotations

from aiohttp import web

from tests.services.base import free_port


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Run ``app`` on 127.0.0.1 and a free port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port
