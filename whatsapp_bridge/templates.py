"""Message templates as Meta lists them: their parameters, the components of a send, a preview.

A template's HEADER (format TEXT) and BODY texts hold placeholders, ``{{1}}``, ``{{2}}`` (or
named ones, ``{{first_name}}``, in templates of parameter format NAMED). A send fills them
with ``components`` (``[{"type": "header", "parameters": [...]}, {"type": "body", ...}]``);
a wrong count is refused by Meta (132000), so we count them first and refuse before sending.
Parameters are given as one flat list: the header's first, then the body's.
"""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
PARAM_MAX_CHARS = 1024  # Meta's limit for one body text parameter
FILLED = ("header", "body")  # the components whose text takes parameters, in parameter order


def _text_of(components: Any, kind: str) -> str:
    if not isinstance(components, list):
        return ""
    for c in components:
        if isinstance(c, dict) and str(c.get("type", "")).lower() == kind:
            if kind == "header" and str(c.get("format", "TEXT")).upper() != "TEXT":
                return ""  # a media header takes a media parameter, which campaigns do not send
            text = c.get("text")
            return text if isinstance(text, str) else ""
    return ""


def _placeholders(text: str) -> list[str]:
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text):
        if name not in seen:
            seen.append(name)
    return seen


def param_counts(components: Any) -> dict[str, int]:
    """Distinct placeholders per component: ``{"header": n, "body": n}``."""
    return {kind: len(_placeholders(_text_of(components, kind))) for kind in FILLED}


def send_components(counts: dict[str, int], params: list[str]) -> list[dict[str, Any]]:
    """The ``components`` of a send; ``params`` must hold exactly ``sum(counts)`` values."""
    out: list[dict[str, Any]] = []
    i = 0
    for kind in FILLED:
        n = counts.get(kind, 0)
        if n:
            out.append({"type": kind, "parameters": [{"type": "text", "text": p} for p in params[i:i + n]]})
        i += n
    return out


def render(components: Any, params: list[str]) -> str:
    """The text the contact will read (header and body, placeholders filled): the preview."""
    parts: list[str] = []
    i = 0
    for kind in FILLED:
        text = _text_of(components, kind)
        names = _placeholders(text)
        values = dict(zip(names, params[i:i + len(names)], strict=False))
        i += len(names)
        if text:
            parts.append(_fill(text, values))
    return "\n\n".join(parts)


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
