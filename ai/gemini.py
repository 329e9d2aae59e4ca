"""Gemini through Google's ``google-genai`` SDK (async client, streaming).

The SDK's async client runs on aiohttp (so transport failures are aiohttp's or OSError). Its own
retries are off: the assistant retries with its own bounded backoff so every
attempt is counted and ``Retry-After`` is honoured. ``base_url`` points the SDK at another
endpoint (tests use a local server speaking the same HTTP API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from google import genai
from google.genai import errors, types

from .prompt import summary_request
from .provider import ProviderError, Request, Turn, parse_retry_after
from .settings import AISettings

BLOCKED_REASONS = {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY"}


def _contents(request: Request) -> list[types.Content]:
    # the chat, summary included, is one user turn of quoted data; our rules are the system_instruction
    return [types.Content(role="user", parts=[types.Part(text=request.data)])]


def _retry_after(exc: errors.APIError) -> float | None:
    """``Retry-After`` header, else the ``RetryInfo.retryDelay`` Google puts in 429 bodies."""
    headers = getattr(exc.response, "headers", None)
    if headers is not None and (hint := parse_retry_after(headers.get("Retry-After"))) is not None:
        return hint
    body = exc.details.get("error", exc.details) if isinstance(exc.details, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            return parse_retry_after(detail.get("retryDelay"))
    return None


def _transport_error(exc: Exception) -> ProviderError:
    """The SDK's own HTTP timeout, or the connection refused/reset (worth a retry)."""
    if isinstance(exc, TimeoutError):
        return ProviderError("timeout", "provider timeout")
    return ProviderError("error", f"provider unreachable: {type(exc).__name__}")


def _error(exc: errors.APIError) -> ProviderError:
    code = getattr(exc, "code", None) or 0
    if code == 429:
        return ProviderError("rate_limited", "provider rate limit", retry_after=_retry_after(exc))
    if code in (408, 504):
        return ProviderError("timeout", "provider timeout")
    # 5xx is worth another try; any other 4xx (bad key, unknown model, bad request) is not
    return ProviderError("error", f"provider error {code}", retryable=code >= 500 or code == 0)


class GeminiProvider:
    name = "gemini"
    offline = False

    def __init__(self, settings: AISettings) -> None:
        if not settings.api_key:
            raise ValueError("the gemini provider needs GEMINI_API_KEY")
        self.model = settings.model_name
        self.settings = settings
        options = types.HttpOptions(
            timeout=int(settings.timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
            base_url=settings.base_url,
        )
        self.client = genai.Client(api_key=settings.api_key, http_options=options)

    def _config(self, request: Request) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            system_instruction=request.system,
            temperature=self.settings.temperature,
            max_output_tokens=self.settings.max_output_tokens,
            safety_settings=[
                types.SafetySetting(category=c, threshold=types.HarmBlockThreshold.BLOCK_MEDIUM_AND_ABOVE)
                for c in (
                    types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                    types.HarmCategory.HARM_CATEGORY_HATE_SPEECH,
                    types.HarmCategory.HARM_CATEGORY_SEXUALLY_EXPLICIT,
                    types.HarmCategory.HARM_CATEGORY_DANGEROUS_CONTENT,
                )
            ],
        )

    async def stream_reply(self, request: Request) -> AsyncIterator[str]:
        try:
            stream = await self.client.aio.models.generate_content_stream(
                model=self.model, contents=_contents(request), config=self._config(request)
            )
            async for chunk in stream:
                if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
                    raise ProviderError("blocked", "the prompt was blocked")
                for cand in chunk.candidates or []:
                    reason = cand.finish_reason.name if cand.finish_reason is not None else None
                    if reason in BLOCKED_REASONS:
                        raise ProviderError("blocked", f"the reply was blocked ({reason})")
                text = chunk.text if chunk.candidates else None
                if text:
                    yield text
        except errors.APIError as exc:
            raise _error(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from None

    async def summarise(self, previous_summary: str, messages: list[Turn]) -> str:
        request = summary_request(previous_summary, messages)
        try:
            resp = await self.client.aio.models.generate_content(
                model=self.model,
                contents=_contents(request),
                config=types.GenerateContentConfig(
                    system_instruction=request.system, temperature=0.1, max_output_tokens=400
                ),
            )
        except errors.APIError as exc:
            raise _error(exc) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from None
        if not resp.text:
            raise ProviderError("empty", "empty summary")
        return resp.text.strip()
