"""The WhatsApp bridge library against a local Graph API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tests.fakes.graph_api import GraphApiFake, make_message_webhook, make_status_webhook, make_text_webhook
from whatsapp_bridge.cloud_api import CloudApiClient, CloudApiError, split_text, within_service_window
from whatsapp_bridge.models import status_advances
from whatsapp_bridge.signature import sign, verify_signature
from whatsapp_bridge.webhook import WebhookFormatError, parse_webhook, verify_handshake

SECRET = "app-secret-1"
TOKEN = "EAAG-very-secret-token"


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(graph: GraphApiFake) -> AsyncIterator[CloudApiClient]:
    async with aiohttp.ClientSession() as session:
        yield CloudApiClient(session, base_url=graph.base_url, timeout_s=1.0, max_retries=3, backoff_base_s=0.01)


def test_handshake_echoes_the_challenge_only_for_the_right_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
    assert verify_handshake(params, "vt") == "1158201444"
    assert verify_handshake({**params, "hub.verify_token": "nope"}, "vt") is None
    assert verify_handshake({**params, "hub.mode": "unsubscribe"}, "vt") is None


def test_signature_accepts_the_right_body_and_rejects_tampering() -> None:
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    header = sign(SECRET, raw)
    assert verify_signature(SECRET, raw, header)
    flipped = bytes([raw[0] ^ 1]) + raw[1:]
    assert not verify_signature(SECRET, flipped, header)
    assert not verify_signature(SECRET, raw, None)
    assert not verify_signature("other-secret", raw, header)
    assert not verify_signature(SECRET, raw, header.replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, raw, "sha256=zz")


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"type": "text", "text": {"body": "hello"}}, "hello"),
        ({"type": "image", "image": {"id": "m1", "mime_type": "image/jpeg", "caption": "my bike"}}, "[image] my bike"),
        ({"type": "audio", "audio": {"id": "m2", "mime_type": "audio/ogg"}}, "[audio]"),
        ({"type": "document", "document": {"id": "m3", "filename": "invoice.pdf"}}, "[document] invoice.pdf"),
        ({"type": "location", "location": {"latitude": 52.5, "longitude": 13.4, "name": "Office", "address": "Main St 1"}},
         "[location] Office, Main St 1 (52.5, 13.4)"),
        ({"type": "contacts", "contacts": [{"name": {"formatted_name": "Ann Lee"}}]}, "[contacts] Ann Lee"),
        ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "y", "title": "Yes"}}},
         "[reply] Yes"),
        ({"type": "button", "button": {"text": "Confirm", "payload": "ok"}}, "[button] Confirm"),
        ({"type": "sticker", "sticker": {"id": "s1", "mime_type": "image/webp"}}, "[sticker]"),
        ({"type": "unsupported", "errors": [{"code": 131051}]}, "[unsupported]"),
    ],
)
def test_every_inbound_type_becomes_readable_text(message: dict, text: str) -> None:  # type: ignore[type-arg]
    batch = parse_webhook(make_message_webhook("PN1", "4917011111", "Ann", "wamid.IN1", message))
    [msg] = batch.messages
    assert (msg.phone_number_id, msg.wa_id, msg.contact_name, msg.wamid) == ("PN1", "4917011111", "Ann", "wamid.IN1")
    assert msg.text == text and msg.type == message["type"]


def test_statuses_with_errors_and_garbage_bodies() -> None:
    batch = parse_webhook(make_status_webhook("PN1", "wamid.OUT1", "failed", error_code=131026))
    [st] = batch.statuses
    assert (st.wamid, st.status, st.error_code) == ("wamid.OUT1", "failed", 131026)
    with pytest.raises(WebhookFormatError):
        parse_webhook({"object": "page", "entry": []})
    with pytest.raises(WebhookFormatError):
        parse_webhook(["not", "an", "object"])


def test_status_only_moves_forward() -> None:
    assert status_advances("queued", "sent") and status_advances("sent", "read")
    assert not status_advances("read", "delivered") and not status_advances("delivered", "delivered")
    assert status_advances("sent", "failed") and not status_advances("read", "failed")
    assert not status_advances("failed", "delivered")


def test_split_text_keeps_every_character_and_the_limit() -> None:
    body = ("word " * 2000) + ("x" * 5000)
    parts = split_text(body)
    assert all(len(p) <= 4096 for p in parts) and len(parts) >= 3
    assert "".join(parts).replace(" ", "") == body.replace(" ", "")
    assert split_text("short") == ["short"]


def test_service_window_is_24_hours() -> None:
    now = datetime.now(UTC)
    assert within_service_window(now - timedelta(hours=23, minutes=59), now)
    assert not within_service_window(now - timedelta(hours=24, seconds=1), now)
    assert not within_service_window(None, now)


async def test_send_text_posts_the_real_shape(graph: GraphApiFake, client: CloudApiClient) -> None:
    [res] = await client.send_text("PN1", TOKEN, "4917011111", "hello there")
    [req] = graph.requests
    assert res.wamid.startswith("wamid.")
    assert req.phone_number_id == "PN1" and req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "4917011111",
                        "type": "text", "text": {"body": "hello there", "preview_url": False}}


async def test_long_text_goes_out_in_parts(graph: GraphApiFake, client: CloudApiClient) -> None:
    results = await client.send_text("PN1", TOKEN, "4917011111", "a " * 5000)
    assert len(results) == len(graph.requests) == 3
    assert all(len(r.json["text"]["body"]) <= 4096 for r in graph.requests)


async def test_429_is_retried_then_succeeds(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(429, 130429)
    [res] = await client.send_text("PN1", TOKEN, "4917011111", "hi")
    assert len(graph.requests) == 2 and res.wamid


async def test_outside_window_is_not_retried_and_named(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(400, 131047)
    with pytest.raises(CloudApiError) as info:
        await client.send_text("PN1", TOKEN, "4917011111", "hi")
    assert info.value.state == "outside_window" and len(graph.requests) == 1


async def test_5xx_is_retried_up_to_the_limit(graph: GraphApiFake, client: CloudApiClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    graph.fail_next(500, 1, times=10)
    with pytest.raises(CloudApiError) as info:
        await client.send_text("PN1", TOKEN, "4917011111", "hi")
    assert info.value.state == "server_error" and len(graph.requests) == 4  # 1 + max_retries
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


async def test_a_hanging_api_is_bounded_by_the_timeout(graph: GraphApiFake) -> None:
    graph.fail_next(200, None, times=5, delay_s=2.0)
    async with aiohttp.ClientSession() as session:
        api = CloudApiClient(session, base_url=graph.base_url, timeout_s=0.2, max_retries=1, backoff_base_s=0.01)
        with pytest.raises(CloudApiError) as info:
            await api.send_text("PN1", TOKEN, "4917011111", "hi")
    assert info.value.state == "network"


async def test_sends_of_one_number_are_paced(graph: GraphApiFake) -> None:
    async with aiohttp.ClientSession() as session:
        api = CloudApiClient(session, base_url=graph.base_url, min_interval_s=0.1)
        for _ in range(3):
            await api.send_text("PN1", TOKEN, "4917011111", "hi")
    gaps = [b.at - a.at for a, b in zip(graph.requests, graph.requests[1:], strict=False)]
    assert all(g >= 0.09 for g in gaps)


def test_text_webhook_builder_round_trips() -> None:
    batch = parse_webhook(make_text_webhook("PN1", "4917011111", "Ann", "wamid.X", "hi"))
    assert batch.messages[0].text == "hi"
