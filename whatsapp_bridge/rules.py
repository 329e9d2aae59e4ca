"""WhatsApp's sending rules, as pure functions the client and chat-server share.

- a text message holds at most 4096 characters: ``split_text`` cuts longer ones at paragraph,
  line or word boundaries;
- free-form messages may only be sent within 24 hours of the contact's last message (the
  customer service window): ``within_service_window``; outside it, only templates;
- login codes go out as an authentication template: ``otp_template_components``.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Any

TEXT_LIMIT = 4096  # characters in text.body
SERVICE_WINDOW = timedelta(hours=24)
OTP_MAX_LEN = 15  # Meta's limit for the code parameter of an authentication template
_SEPARATORS = ("\n\n", "\n", " ")  # best first: paragraph, line, word
_JOINERS = frozenset("\u200d\ufe0e\ufe0f")  # zero-width joiner, variation selectors


def split_text(body: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Parts of at most ``limit`` characters that keep every non-whitespace character in order.

    Cuts at the last paragraph break in the window, else the last line break, else the last
    space, as long as that keeps the part at least half full; a run of text with no boundary
    there (a long URL) is cut hard, never inside an emoji sequence or before a combining mark.
    Only the whitespace at a cut is dropped. A body within the limit comes back unchanged.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    if len(body) <= limit:
        return [body] if body else []
    parts: list[str] = []
    rest = body
    while len(rest) > limit:
        cut = _cut_at(rest, limit)
        part = rest[:cut].rstrip()
        if part:  # a window of only whitespace yields nothing
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _cut_at(rest: str, limit: int) -> int:
    for sep in _SEPARATORS:
        # a separator may start right at ``limit``: the part before it still fits
        pos = rest.rfind(sep, 0, limit + len(sep))
        if pos >= limit // 2:
            return pos
    cut = limit
    # never split a grapheme: step back over combining marks and joined emoji
    while cut > limit // 2 and (unicodedata.combining(rest[cut]) or rest[cut] in _JOINERS
                                or rest[cut - 1] in _JOINERS):
        cut -= 1
    return cut


def within_service_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether free-form messages may be sent: the contact wrote within the last 24 hours.

    Both datetimes must be timezone-aware. No inbound message at all means only templates.
    """
    return last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW


def otp_template_components(code: str) -> list[dict[str, Any]]:
    """The components of an authentication template: the code in the body and the copy-code button.

    Meta's authentication templates take the code twice: as the body parameter and as the
    parameter of the button (``sub_type: url``, index 0), which copies it or autofills it.
    """
    if not code or len(code) > OTP_MAX_LEN:
        raise ValueError(f"a one-time code has 1 to {OTP_MAX_LEN} characters")
    return [
        {"type": "body", "parameters": [{"type": "text", "text": code}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": code}]},
    ]
