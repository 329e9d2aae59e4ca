"""X-Hub-Signature-256: only the exact body signed with the app secret passes."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from tests.fakes.graph_api import make_text_webhook, signed_post, signed_post_headers
from whatsapp_bridge.signature import sign, verify_signature

SECRET = "app-secret-1"
RAW = b'{"object":"whatsapp_business_account","entry":[]}'


def test_sign_is_sha256_hex_of_the_body() -> None:
    # Meta's scheme: "sha256=" + hex HMAC-SHA256(app secret, raw body)
    assert sign(SECRET, RAW) == "sha256=" + hmac.new(SECRET.encode(), RAW, hashlib.sha256).hexdigest()


def test_signature_of_the_exact_body_is_accepted() -> None:
    assert verify_signature(SECRET, RAW, sign(SECRET, RAW))


def test_signature_in_upper_case_hex_is_accepted() -> None:
    header = sign(SECRET, RAW)
    assert verify_signature(SECRET, RAW, "sha256=" + header.removeprefix("sha256=").upper())


@pytest.mark.parametrize("position", [0, len(RAW) // 2, len(RAW) - 1])
def test_one_flipped_byte_is_rejected(position: int) -> None:
    header = sign(SECRET, RAW)
    flipped = bytearray(RAW)
    flipped[position] ^= 0x01
    assert not verify_signature(SECRET, bytes(flipped), header)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_rejected(header: str | None) -> None:
    assert not verify_signature(SECRET, RAW, header)


def test_wrong_secret_is_rejected() -> None:
    assert not verify_signature("other-secret", RAW, sign(SECRET, RAW))


def test_empty_app_secret_never_verifies() -> None:
    assert not verify_signature("", RAW, sign("", RAW))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.replace("sha256=", "sha1="),  # other algorithm
        lambda h: h.removeprefix("sha256="),  # no prefix
        lambda h: "sha256=",  # no digest
        lambda h: "sha256=zz",  # not hex, wrong length
        lambda h: h[:-1],  # truncated
        lambda h: h + "0",  # too long
        lambda h: h[:-1] + "g",  # right length, not hex
        lambda h: h[:-1] + "é",  # right length, non-ASCII (compare_digest would raise on it)
        lambda h: "sha256=" + "\u0660" * 64,  # Arabic-Indic digits: str.isdigit() but not hex
    ],
)
def test_malformed_header_is_rejected_without_raising(mangle: Callable[[str], str]) -> None:
    assert not verify_signature(SECRET, RAW, mangle(sign(SECRET, RAW)))


def test_signed_post_helpers_produce_headers_the_check_accepts() -> None:
    raw, headers = signed_post(SECRET, make_text_webhook("PN1", "4917011111", "Ann", "wamid.X", "hi"))
    assert headers == signed_post_headers(SECRET, raw)
    assert headers["Content-Type"] == "application/json"
    assert verify_signature(SECRET, raw, headers["X-Hub-Signature-256"])
