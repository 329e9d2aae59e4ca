"""The verify handshake and webhook parsing: every inbound type, statuses, errors, garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes.graph_api import (
    make_identity_webhook,
    make_media_webhook,
    make_message_webhook,
    make_status_webhook,
    make_text_webhook,
)
from whatsapp_bridge.webhook import WebhookFormatError, parse_webhook, verify_handshake

PN, WA, NAME = "106540352242922", "4917011111", "Ann"
TS = 1_700_000_000
HANDSHAKE = {"hub.mode": "subscribe", "hub.verify_token": "vt-123", "hub.challenge": "1158201444"}


# --- handshake -------------------------------------------------------------------------------


def test_handshake_with_the_right_token_echoes_the_challenge() -> None:
    assert verify_handshake(HANDSHAKE, "vt-123") == "1158201444"


def test_handshake_with_a_wrong_token_is_refused() -> None:
    assert verify_handshake({**HANDSHAKE, "hub.verify_token": "vt-124"}, "vt-123") is None


def test_handshake_without_a_token_is_refused() -> None:
    params = {k: v for k, v in HANDSHAKE.items() if k != "hub.verify_token"}
    assert verify_handshake(params, "vt-123") is None


def test_handshake_with_another_mode_is_refused() -> None:
    assert verify_handshake({**HANDSHAKE, "hub.mode": "unsubscribe"}, "vt-123") is None


def test_handshake_never_matches_an_unset_verify_token() -> None:
    assert verify_handshake({**HANDSHAKE, "hub.verify_token": ""}, "") is None


# --- inbound messages ------------------------------------------------------------------------

LOCATION = {"latitude": 52.52, "longitude": 13.405, "name": "Office", "address": "Main St 1"}
INBOUND_TYPES: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    ({"type": "text", "text": {"body": "hello"}}, "hello", {}),
    ({"type": "image", "image": {"id": "m1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "my bike"}},
     "[image] my bike", {"media_id": "m1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "my bike"}),
    ({"type": "image", "image": {"id": "m1", "mime_type": "image/jpeg"}}, "[image]", {"media_id": "m1"}),
    ({"type": "video", "video": {"id": "m4", "mime_type": "video/mp4", "caption": "the noise"}}, "[video] the noise",
     {"media_id": "m4", "mime_type": "video/mp4"}),
    ({"type": "audio", "audio": {"id": "m2", "mime_type": "audio/ogg; codecs=opus", "voice": True}}, "[audio]",
     {"media_id": "m2", "voice": True}),
    ({"type": "document", "document": {"id": "m3", "filename": "invoice.pdf", "mime_type": "application/pdf"}},
     "[document] invoice.pdf", {"media_id": "m3", "filename": "invoice.pdf"}),
    ({"type": "document", "document": {"id": "m3", "filename": "invoice.pdf", "caption": "march"}},
     "[document] invoice.pdf: march", {"caption": "march"}),
    ({"type": "sticker", "sticker": {"id": "s1", "mime_type": "image/webp", "animated": False}}, "[sticker]",
     {"media_id": "s1", "animated": False}),
    ({"type": "location", "location": LOCATION}, "[location] Office, Main St 1 (52.52, 13.405)", LOCATION),
    ({"type": "location", "location": {"latitude": 1.5, "longitude": -2.25}}, "[location] (1.5, -2.25)",
     {"latitude": 1.5}),
    ({"type": "contacts", "contacts": [{"name": {"formatted_name": "Bo Li"}}, {"name": {"first_name": "X"}}]},
     "[contacts] Bo Li, ?", {}),
    ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}},
     "[reply] Yes", {"reply_type": "button_reply", "reply_id": "yes"}),
    ({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
        "id": "row-2", "title": "Tuesday", "description": "9-12"}}},
     "[reply] Tuesday", {"reply_type": "list_reply", "reply_id": "row-2", "reply_description": "9-12"}),
    ({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": "{\"a\": 1}"}}}, "[form] Sent", {"reply_type": "nfm_reply"}),
    ({"type": "button", "button": {"text": "Yes", "payload": "CONFIRM"}}, "[button] Yes", {"payload": "CONFIRM"}),
    ({"type": "reaction", "reaction": {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"}}, "[reaction] \U0001f44d",
     {"reacted_to": "wamid.OUT1"}),
    ({"type": "reaction", "reaction": {"message_id": "wamid.OUT1"}}, "[reaction removed]", {"reacted_to": "wamid.OUT1"}),
    ({"type": "order", "order": {"catalog_id": "c1", "text": "asap", "product_items": [
        {"product_retailer_id": "p1", "quantity": 2}, {"product_retailer_id": "p2", "quantity": "1"}]}},
     "[order] 3 items: asap", {"catalog_id": "c1"}),
    ({"type": "system", "system": {"body": "Ann changed their number", "type": "user_changed_number",
                                   "new_wa_id": "4917099999"}},
     "[system] Ann changed their number", {"type": "user_changed_number", "new_wa_id": "4917099999"}),
    ({"type": "request_welcome"}, "[opened the chat]", {}),
    ({"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]}, "[unsupported]",
     {"errors": [{"code": 131051, "title": "Message type unknown"}]}),
    ({"type": "ephemeral"}, "[ephemeral]", {"errors": []}),
]


@pytest.mark.parametrize(("message", "text", "meta"), INBOUND_TYPES,
                         ids=[f"{m['type']}-{i}" for i, (m, _, _) in enumerate(INBOUND_TYPES)])
def test_every_inbound_type_becomes_readable_text(message: dict[str, Any], text: str, meta: dict[str, Any]) -> None:
    batch = parse_webhook(make_message_webhook(PN, WA, NAME, "wamid.IN1", message, ts=TS))
    [msg] = batch.messages
    assert (msg.phone_number_id, msg.wa_id, msg.contact_name, msg.wamid) == (PN, WA, NAME, "wamid.IN1")
    assert msg.type == message["type"]
    assert msg.text == text
    assert meta.items() <= msg.meta.items()
    json.dumps(msg.meta)  # meta is stored as JSON downstream


def test_text_webhook_builder_round_trips_with_a_utc_timestamp() -> None:
    [msg] = parse_webhook(make_text_webhook(PN, WA, NAME, "wamid.X", "hi there", ts=TS)).messages
    assert msg.text == "hi there" and msg.type == "text"
    assert msg.timestamp == datetime.fromtimestamp(TS, UTC) and msg.timestamp.tzinfo is not None


def test_media_webhook_builder_keeps_the_media_id() -> None:
    payload = make_media_webhook(PN, WA, NAME, "wamid.M", "document", media_id="77", mime_type="application/pdf",
                                 filename="a.pdf", caption="scan")
    [msg] = parse_webhook(payload).messages
    assert msg.text == "[document] a.pdf: scan" and msg.meta["media_id"] == "77"


def test_a_reply_keeps_its_context_and_an_ad_its_referral() -> None:
    message = {"type": "text", "text": {"body": "this one"}, "context": {"from": "15550001111", "id": "wamid.OUT7"},
               "referral": {"source_type": "ad", "source_id": "123"}}
    [msg] = parse_webhook(make_message_webhook(PN, WA, NAME, "wamid.R", message)).messages
    assert msg.meta["context"]["id"] == "wamid.OUT7" and msg.meta["referral"]["source_id"] == "123"


def test_one_body_with_several_entries_and_messages_yields_all_in_order() -> None:
    first = make_text_webhook(PN, WA, NAME, "wamid.1", "one")
    second_value = make_text_webhook("PN2", "4917022222", "Bo", "wamid.2", "two")["entry"][0]["changes"][0]["value"]
    second_value["messages"].append({**second_value["messages"][0], "id": "wamid.3", "text": {"body": "three"}})
    first["entry"].append({"id": "WABA2", "changes": [{"field": "messages", "value": second_value}]})
    batch = parse_webhook(first)
    assert [(m.phone_number_id, m.contact_name, m.text) for m in batch.messages] == [
        (PN, NAME, "one"), ("PN2", "Bo", "two"), ("PN2", "Bo", "three")]


def test_a_message_without_a_profile_name_has_no_contact_name() -> None:
    payload = make_text_webhook(PN, WA, NAME, "wamid.N", "hi")
    del payload["entry"][0]["changes"][0]["value"]["contacts"]
    [msg] = parse_webhook(payload).messages
    assert msg.contact_name is None and msg.wa_id == WA


def test_a_message_without_an_id_is_skipped_and_its_neighbours_kept() -> None:
    payload = make_text_webhook(PN, WA, NAME, "wamid.OK", "kept")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"].insert(0, {"from": WA, "type": "text", "text": {"body": "no id"}})
    assert [m.wamid for m in parse_webhook(payload).messages] == ["wamid.OK"]


def test_changes_of_other_fields_are_ignored() -> None:
    payload = make_text_webhook(PN, WA, NAME, "wamid.F", "hi")
    payload["entry"][0]["changes"].append(
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}})
    assert [m.wamid for m in parse_webhook(payload).messages] == ["wamid.F"]


# --- statuses and errors ---------------------------------------------------------------------


def test_a_failed_status_carries_its_error_code_title_and_details() -> None:
    [st] = parse_webhook(make_status_webhook(PN, "wamid.OUT1", "failed", recipient_id=WA, ts=TS,
                                             error_code=131047)).statuses
    assert (st.phone_number_id, st.wamid, st.status, st.recipient_id) == (PN, "wamid.OUT1", "failed", WA)
    assert st.timestamp == datetime.fromtimestamp(TS, UTC)
    assert st.error_code == 131047 and st.error_title == "Re-engagement message"
    assert st.error_details is not None and "24 hours" in st.error_details


def test_a_delivered_status_has_no_error() -> None:
    [st] = parse_webhook(make_status_webhook(PN, "wamid.OUT2", "delivered")).statuses
    assert st.status == "delivered" and st.error_code is None and st.error_title is None


def test_an_error_code_sent_as_a_string_becomes_an_int() -> None:
    payload = make_status_webhook(PN, "wamid.OUT3", "failed", error_code=131026)
    payload["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] = "131026"
    [st] = parse_webhook(payload).statuses
    assert st.error_code == 131026


def test_value_level_errors_are_collected() -> None:
    payload = make_status_webhook(PN, "wamid.OUT4", "sent")
    error = {"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}
    payload["entry"][0]["changes"][0]["value"]["errors"] = [error]
    batch = parse_webhook(payload)
    assert batch.errors == [error] and len(batch.statuses) == 1


# --- garbage ---------------------------------------------------------------------------------


def _garble(path: str, value: Any) -> dict[str, Any]:
    payload = make_text_webhook(PN, WA, NAME, "wamid.G", "hi")
    target: Any = payload
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[int(last) if last.isdigit() else last] = value
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "an", "object"],
        "a string",
        None,
        {"object": "page", "entry": []},
        {"object": "whatsapp_business_account"},
        _garble("entry", {"id": "x"}),
        _garble("entry.0", "an entry as text"),
        _garble("entry.0.changes", "nope"),
        _garble("entry.0.changes.0", 42),
        _garble("entry.0.changes.0.value", ["list"]),
        _garble("entry.0.changes.0.value.metadata", None),
        _garble("entry.0.changes.0.value.messages", {"id": "x"}),
        _garble("entry.0.changes.0.value.statuses", "x"),
    ],
    ids=["list", "string", "null", "other-object", "no-entry", "entry-dict", "entry-text", "changes-text",
         "change-int", "value-list", "no-metadata", "messages-dict", "statuses-text"],
)
def test_a_garbled_body_raises_webhook_format_error(payload: Any) -> None:
    with pytest.raises(WebhookFormatError):
        parse_webhook(payload)


def test_webhook_format_error_is_a_value_error() -> None:
    # chat-server answers both a JSON decoding error and a bad envelope with one except clause
    assert issubclass(WebhookFormatError, ValueError)


# --- business-scoped user ids (2026 payloads) ----------------------------------------------------

@pytest.mark.parametrize(("wa_id", "bsuid"), [(None, "US.13491208655302741918"),
                                               (WA, "US.13491208655302741918"), (WA, None)])
def test_a_sender_given_by_number_by_bsuid_or_both_is_parsed_with_its_name(wa_id: str | None,
                                                                           bsuid: str | None) -> None:
    batch = parse_webhook(make_identity_webhook(PN, "wamid.B1", "hi", wa_id=wa_id, bsuid=bsuid, name=NAME))
    [msg] = batch.messages
    assert (msg.wa_id, msg.bsuid, msg.contact_name, msg.text) == (wa_id, bsuid, NAME, "hi")
    assert msg.sender == (wa_id or bsuid)


def test_a_message_with_neither_number_nor_bsuid_is_skipped() -> None:
    assert parse_webhook(make_identity_webhook(PN, "wamid.B2", "hi", name=NAME)).messages == []
