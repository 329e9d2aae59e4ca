"""Any server that speaks the OpenAI chat completions API (Ollama, vLLM, llama.cpp, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai

from .prompt import summary_request
from .provider import ProviderError, Request, Turn, parse_retry_after
from .settings import AISettings


def _messages(request: Request) -> list[dict[str, Any]]:
    # our rules are the system message; the chat, summary included, is one user message of quoted data
    return [{"role": "system", "content": request.system}, {"role": "user", "content": request.data}]


def _error(exc: openai.APIError) -> ProviderError:
    if isinstance(exc, openai.RateLimitError):
        return ProviderError("rate_limited", "provider rate limit",
                             retry_after=parse_retry_after(exc.response.headers.get("retry-after")))
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "provider timeout")
    if isinstance(exc, openai.APIStatusError):
        # 5xx is worth another try; any other 4xx (bad key, unknown model, bad request) is not
        return ProviderError("error", f"provider error {exc.status_code}", retryable=exc.status_code >= 500)
    return ProviderError("error", f"provider error: {type(exc).__name__}")  # connection refused/reset


class OpenAICompatProvider:
    name = "openai"
    offline = False

    def __init__(self, settings: AISettings) -> None:
        if not settings.base_url:
            raise ValueError("the openai provider needs AI_BASE_URL")
        self.model = settings.model_name
        self.settings = settings
        self.client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "not-needed",  # local servers usually take any key
            timeout=settings.timeout_s,
            max_retries=0,
        )

    async def stream_reply(self, request: Request) -> AsyncIterator[str]:
        try:
            stream = await self.client.chat.completions.create(
                model=self.model,
                messages=_messages(request),  # type: ignore[arg-type]
                temperature=self.settings.temperature,
                max_tokens=self.settings.max_output_tokens,
                stream=True,
            )
            async for chunk in stream:  # type: ignore[union-attr]
                for choice in chunk.choices:
                    if choice.finish_reason == "content_filter":
                        raise ProviderError("blocked", "the reply was filtered")
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        except openai.APIError as exc:
            raise _error(exc) from None

    async def summarise(self, previous_summary: str, messages: list[Turn]) -> str:
        try:
            resp = await self.client.chat.completions.create(
                model=self.model,
                messages=_messages(summary_request(previous_summary, messages)),  # type: ignore[arg-type]
                temperature=0.1,
                max_tokens=400,
            )
        except openai.APIError as exc:
            raise _error(exc) from None
        content = resp.choices[0].message.content if resp.choices else None
        if not content:
            raise ProviderError("empty", "empty summary")
        return content.strip()
