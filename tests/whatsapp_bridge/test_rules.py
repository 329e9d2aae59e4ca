"""Sending rules: the 4096-character split, the 24-hour window, the OTP template shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsapp_bridge.cloud_api import otp_template_components, split_text, within_service_window

LIMIT = 4096


def assert_preserves(body: str, parts: list[str]) -> None:
    """``body`` is the parts in order with only whitespace between them (what a cut may drop)."""
    pos = 0
    for part in parts:
        while not body.startswith(part, pos):
            assert body[pos].isspace(), f"non-whitespace {body[pos]!r} lost at {pos}"
            pos += 1
        pos += len(part)
    assert body[pos:].strip() == ""


def test_a_short_text_is_one_unchanged_part() -> None:
    assert split_text("  short\n") == ["  short\n"]
    assert split_text("x" * LIMIT) == ["x" * LIMIT]
    assert split_text("") == []


@pytest.mark.parametrize(
    "body",
    [
        "word " * 2000,
        "x" * 10_000,  # no boundary at all: hard cuts
        ("para graph " * 300 + "\n\n") * 5,
        ("line of text\n" * 700),
        "start" + " " * 9000 + "end",  # whitespace across a whole window
        " " * 5000 + "x" * 5000,  # a first window of only whitespace
        "a" * 4095 + " " + "b" * 4095 + "\n\n" + "c" * 100,  # boundaries right at the limit
        ("\U0001f469\u200d\U0001f4bb" * 3000),  # ZWJ emoji sequences, no spaces
        ("e\u0301" * 3000),  # combining accents, no spaces
    ],
    ids=["words", "one-long-word", "paragraphs", "lines", "whitespace-run", "whitespace-window", "at-the-limit", "zwj-emoji",
         "combining"],
)
def test_split_keeps_the_limit_and_every_character(body: str) -> None:
    parts = split_text(body)
    assert len(parts) >= 2
    assert all(0 < len(p) <= LIMIT for p in parts)
    assert_preserves(body, parts)


def test_split_prefers_paragraphs_to_lines_to_words() -> None:
    first = ("alpha " * 400).strip()  # ~2400 chars: past half the limit
    body = first + "\n\n" + "beta gamma\n" * 100 + "delta " * 400
    parts = split_text(body)
    assert parts[0] == first  # the paragraph break wins over the later line breaks and spaces


def test_split_does_not_break_an_emoji_sequence_or_an_accent() -> None:
    zwj = "\U0001f469\u200d\U0001f4bb"
    for part in split_text(zwj * 3000):
        assert not part.startswith("\u200d") and not part.endswith("\u200d")
    for part in split_text("e\u0301" * 3000):
        assert not part.startswith("\u0301")


def test_split_honours_a_smaller_limit() -> None:
    parts = split_text("one two three four five six", limit=10)
    assert parts == ["one two", "three four", "five six"]


def test_service_window_is_open_for_24_hours_after_the_last_inbound_message() -> None:
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert within_service_window(now - timedelta(hours=23, minutes=59, seconds=59), now)
    assert not within_service_window(now - timedelta(hours=24), now)
    assert not within_service_window(now - timedelta(days=3), now)


def test_service_window_is_closed_without_any_inbound_message() -> None:
    assert not within_service_window(None, datetime.now(UTC))


def test_otp_components_put_the_code_in_the_body_and_the_copy_code_button() -> None:
    assert otp_template_components("123456") == [
        {"type": "body", "parameters": [{"type": "text", "text": "123456"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "123456"}]},
    ]


@pytest.mark.parametrize("code", ["", "1" * 16])
def test_otp_components_refuse_codes_meta_would_refuse(code: str) -> None:
    with pytest.raises(ValueError):
        otp_template_components(code)
