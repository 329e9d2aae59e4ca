"""The offline provider: no network, no model.

Replies come from a knowledge base (YAML: a list of ``{questions: [...], answer: ...}``) by
TF-IDF-weighted word overlap with the question; below a threshold it says it does not know, and
offers a person only where one is told (a WhatsApp conversation: ``Request.handoff_possible``;
in team rooms nobody is).
It takes the same ``Request`` a model gets and reads the question back from its data block, so
it sees exactly what a model would. Summaries are extractive. Replies are labelled offline in
their metadata.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from .prompt import ROLE_NAMES, read_data_block
from .provider import Request, Turn

WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an the i me my we you your he she it they them is are was were be been am do does did "
    "how what where when why who which can could would should will to of in on at for with and "
    "or but if so this that there here please hi hello hey assistant".split()
)
MATCH_THRESHOLD = 0.35
HANDOFF_REPLY = (
    "[HANDOFF] I'm not sure I can answer that well. I've asked a person from the team to take "
    "over; they will reply here."
)
DONT_KNOW_REPLY = (
    "I don't know the answer to that. I can help with using this chat: rooms, direct messages, "
    "invites, editing messages, your account and password."
)
SUMMARY_MAX_CHARS = 1200
DEFAULT_KB = Path(__file__).with_name("knowledge_base.yaml")


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True)
class Entry:
    questions: tuple[str, ...]
    answer: str


def load_entries(path: Path | None) -> list[Entry]:
    text = (path or DEFAULT_KB).read_text()
    data = yaml.safe_load(text) or []
    if not isinstance(data, list):
        raise ValueError("the knowledge base must be a list of {questions, answer} entries")
    entries = []
    for item in data:
        qs, ans = item.get("questions"), item.get("answer")
        if not isinstance(qs, list) or not isinstance(ans, str):
            raise ValueError("each knowledge base entry needs questions (a list) and answer (a string)")
        entries.append(Entry(tuple(str(q) for q in qs), ans.strip()))
    return entries


class OfflineProvider:
    name = "offline"
    offline = True

    def __init__(self, knowledge_base: Path | None = None, model: str = "faq") -> None:
        self.model = model
        self.entries = load_entries(knowledge_base)
        docs = [Counter(w for q in e.questions for w in words(q)) for e in self.entries]
        df = Counter(w for d in docs for w in d)
        n = len(docs) or 1
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        self.vectors = [{w: self.idf[w] for w in d} for d in docs]

    def best(self, question: str) -> tuple[Entry | None, float]:
        q = set(words(question))
        if not q:
            return None, 0.0
        best, best_score = None, 0.0
        for entry, vec in zip(self.entries, self.vectors, strict=True):
            overlap = sum(vec.get(w, 0.0) for w in q)
            norm = math.sqrt(sum(self.idf.get(w, 1.0) ** 2 for w in q)) * math.sqrt(sum(v * v for v in vec.values()))
            score = overlap * overlap / norm if norm else 0.0
            if score > best_score:
                best, best_score = entry, score
        return best, best_score

    def answer(self, question: str, handoff_possible: bool = False) -> str:
        entry, score = self.best(question)
        if entry is not None and score >= MATCH_THRESHOLD:
            return entry.answer
        return HANDOFF_REPLY if handoff_possible else DONT_KNOW_REPLY

    async def stream_reply(self, request: Request) -> AsyncIterator[str]:
        records = read_data_block(request.data)
        question = next((r["text"] for r in reversed(records) if r.get("role") == ROLE_NAMES["user"]), "")
        text = self.answer(question, request.handoff_possible)
        # a few chunks, so clients see the same streaming as with a model
        parts = re.findall(r"\S+\s*", text)
        for i in range(0, len(parts), 4):
            yield "".join(parts[i : i + 4])

    async def summarise(self, previous_summary: str, messages: list[Turn]) -> str:
        """Extractive: the first sentence of the most informative messages (those sharing the
        most words with the rest of the batch, i.e. on topic), in conversation order, after the
        newest part of the previous summary; bounded to ``SUMMARY_MAX_CHARS``."""
        firsts: list[tuple[int, str, set[str]]] = []
        for i, t in enumerate(messages):
            if t.role == "system-note":
                continue
            first = re.split(r"(?<=[.!?])\s", t.text.strip(), maxsplit=1)[0][:160]
            vocab = set(words(first))
            if len(vocab) >= 3:  # skip "ok", "thanks!", ...
                firsts.append((i, f"{t.author}: {first}", vocab))
        df = Counter(w for _, _, vocab in firsts for w in vocab)
        # ties (rounded, as set order changes float sums) go to the newer message
        ranked = sorted(firsts, key=lambda f: (-round(sum(math.log1p(df[w]) for w in f[2]), 6), -f[0]))
        picked: list[tuple[int, str]] = []
        budget = SUMMARY_MAX_CHARS // 2
        for i, line, _ in ranked:
            if len(line) + 1 > budget:
                continue
            picked.append((i, line))
            budget -= len(line) + 1
        new = " ".join(line for _, line in sorted(picked))
        keep = SUMMARY_MAX_CHARS - len(new) - 1
        old = previous_summary
        if len(old) > keep:  # the oldest part goes first, cut at a word boundary
            old = old[-keep:].split(" ", 1)[-1] if keep > 0 else ""
        return " ".join(filter(None, [old, new]))
