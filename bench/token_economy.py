"""Token economy of the assistant's context: naive full history vs rolling summary + last K.

A synthetic 500-message conversation; at every 50th message the assistant is asked a
question. For each reply we count prompt tokens (about four characters a token, the same
estimate the assistant uses) for:

- naive: the request (``ai.prompt.reply_request``) with every message so far;
- ours: the request with the cached summary + the messages after it (``ai.assistant.Assistant``'s
  own ``context``), plus the input tokens of the summary refreshes made since the previous reply
  (their cost amortised over the replies that use them).

Run: ``.venv/bin/python -m bench.token_economy``; prints a Markdown table and writes
``bench/results/token_economy-<date>.md`` and ``.json``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai.assistant import Assistant
from ai.context import prompt_tokens
from ai.offline import OfflineProvider
from ai.prompt import read_data_block, reply_request, summary_request
from ai.provider import Request, Turn
from ai.settings import AISettings
from chatcore.events import MessageRecord

WORDS = ("deploy migration database schema review release customer ticket invoice design meeting budget "
         "deadline server latency alert rollback feature branch test coverage sprint roadmap").split()
REPLY_EVERY, TOTAL = 50, 500


class CountingProvider(OfflineProvider):
    """The offline provider, counting the input tokens of every summary request."""

    def __init__(self) -> None:
        super().__init__()
        self.summary_input_tokens = 0

    async def summarise(self, previous_summary: str, messages: list[Turn]) -> str:
        self.summary_input_tokens += prompt_tokens(summary_request(previous_summary, messages))
        return await super().summarise(previous_summary, messages)

    async def stream_reply(self, request: Request) -> AsyncIterator[str]:
        yield "ok"


class MemorySource:
    def __init__(self) -> None:
        self.msgs: list[MessageRecord] = []

    async def latest(self, room_id: int, limit: int) -> list[MessageRecord]:
        return self.msgs[-limit:]

    async def between(self, room_id: int, after_seq: int, upto_seq: int) -> list[MessageRecord]:
        return [m for m in self.msgs if after_seq < m.seq <= upto_seq]


class DictRedis:
    """Enough of a key-value store for the summary cache in a pure computation."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.data.get(key)

    async def set(self, key: str, value: Any, **_: Any) -> bool:
        self.data[key] = value
        return True


def conversation(n: int, seed: int = 7) -> list[MessageRecord]:
    rnd = random.Random(seed)
    people = ["Ana", "Ben", "Chen", "Dara"]
    now = datetime.now(UTC)
    return [MessageRecord(id=i, room_id=1, seq=i, author_id=1, author_kind="user", author_name=rnd.choice(people),
                          body=" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 30))).capitalize() + ".",
                          created_at=now) for i in range(1, n + 1)]


async def run() -> list[dict[str, Any]]:
    settings = AISettings(provider="offline", quota_summaries_per_room_per_hour=None)  # no Redis here
    provider = CountingProvider()
    source = MemorySource()
    assistant = Assistant(settings, provider, DictRedis(), source, sink=None, key_prefix="bench:")  # type: ignore[arg-type]
    rows = []
    spent = 0
    for msg in conversation(TOTAL):
        source.msgs.append(msg)
        if msg.seq % REPLY_EVERY:
            continue
        request = await assistant.context(1, msg)
        refresh = provider.summary_input_tokens - spent
        spent = provider.summary_input_tokens
        naive_turns = [Turn("user", m.author_name or "", m.body) for m in source.msgs]
        naive = prompt_tokens(reply_request(settings.system_prompt, "", naive_turns))
        ours = prompt_tokens(request)
        turns = [r for r in read_data_block(request.data) if "text" in r]
        rows.append({"message": msg.seq, "naive": naive, "ours": ours, "refresh": refresh,
                     "ours_total": ours + refresh, "ratio": round(naive / (ours + refresh), 2),
                     "turns": len(turns)})
    return rows


def main() -> None:
    rows = asyncio.run(run())
    s = AISettings(provider="offline")
    lines = [f"Token economy (K={s.recent_k}, summary threshold={s.summary_threshold}, ~4 chars/token)", "",
             "| message | naive prompt | summary + tail | refresh input since last reply | ours total | naive / ours |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['message']} | {r['naive']} | {r['ours']} ({r['turns']} msgs) | {r['refresh']} | {r['ours_total']} | "
              f"{r['ratio']}x |" for r in rows]
    total_naive, total_ours = sum(r["naive"] for r in rows), sum(r["ours_total"] for r in rows)
    lines += ["", f"At message {rows[-1]['message']}: {rows[-1]['ratio']}x fewer prompt tokens; over all "
              f"{len(rows)} replies: {round(total_naive / total_ours, 2)}x (summary refreshes included)."]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    (out / f"token_economy-{stamp}.md").write_text(text + "\n\nCommand: `.venv/bin/python -m bench.token_economy`\n")
    (out / f"token_economy-{stamp}.json").write_text(json.dumps(rows, indent=1))
    if rows[-1]["ratio"] < 5:
        sys.exit("target missed: fewer than 5x tokens at the last reply")


if __name__ == "__main__":
    main()
