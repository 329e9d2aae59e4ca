"""The Graph API client against a local Graph API server: shapes, retries, errors, pacing."""

from __future__ import annotations

import asyncio
import itertools
import logging
import traceback
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from tests.fakes.graph_api import GraphApiFake
from tests.services.base import free_port
from tests.whatsapp_bridge.conftest import MAX_RETRIES, TOKEN
from whatsapp_bridge.cloud_api import (
    CloudApiClient,
    CloudApiError,
    backoff_delay,
    otp_template_components,
    parse_retry_after,
)

PN, TO = "106540352242922", "4917011111"

# --- request shapes --------------------------------------------------------------------------


async def test_send_text_posts_meta_shape_with_bearer_token(graph: GraphApiFake, client: CloudApiClient) -> None:
    [res] = await client.send_text(PN, TOKEN, TO, "hello there")
    [req] = graph.requests
    assert (req.version, req.phone_number_id) == ("v21.0", PN)
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.json == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO,
                        "type": "text", "text": {"body": "hello there", "preview_url": False}}
    assert res.wamid.startswith("wamid.") and res.to == TO


async def test_api_version_and_base_url_are_configurable(graph: GraphApiFake, session: aiohttp.ClientSession) -> None:
    api = CloudApiClient(session, base_url=graph.base_url + "/", api_version="v22.0")
    await api.send_text(PN, TOKEN, TO, "hi")
    assert graph.requests[0].version == "v22.0"


async def test_long_text_goes_out_in_parts_of_at_most_4096(graph: GraphApiFake, client: CloudApiClient) -> None:
    body = "a " * 5000
    results = await client.send_text(PN, TOKEN, TO, body)
    bodies = [r.json["text"]["body"] for r in graph.requests]
    assert len(results) == len(bodies) == 3 and len({r.wamid for r in results}) == 3
    assert all(len(b) <= 4096 for b in bodies)
    assert " ".join(bodies).split() == body.split()


async def test_a_reply_context_goes_on_the_first_part_only(graph: GraphApiFake, client: CloudApiClient) -> None:
    await client.send_text(PN, TOKEN, TO, "b " * 3000, context_wamid="wamid.IN9")
    assert [r.json.get("context") for r in graph.requests] == [{"message_id": "wamid.IN9"}, None]


async def test_an_empty_text_is_refused_before_any_request(graph: GraphApiFake, client: CloudApiClient) -> None:
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "  \n ")
    assert info.value.state == "invalid" and graph.requests == []


async def test_send_template_posts_name_language_and_components(graph: GraphApiFake, client: CloudApiClient) -> None:
    res = await client.send_template(PN, TOKEN, TO, "login_code", "en_US", otp_template_components("123456"))
    [req] = graph.requests
    assert req.json["type"] == "template" and req.json["to"] == TO
    assert req.json["template"] == {"name": "login_code", "language": {"code": "en_US"},
                                    "components": otp_template_components("123456")}
    assert res.wamid.startswith("wamid.")


async def test_mark_read_posts_a_read_status(graph: GraphApiFake, client: CloudApiClient) -> None:
    await client.mark_read(PN, TOKEN, "wamid.IN1")
    [req] = graph.requests
    assert req.json == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}


# --- retries ---------------------------------------------------------------------------------


async def test_429_is_retried_then_succeeds(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(429, 130429)
    [res] = await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 2 and res.wamid.startswith("wamid.")
    assert graph.requests[0].json == graph.requests[1].json


async def test_outside_window_131047_is_not_retried(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(400, 131047)
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    err = info.value
    assert len(graph.requests) == 1
    assert (err.http_status, err.code, err.state) == (400, 131047, "outside_window")
    assert "Re-engagement" in err.title and err.details is not None and "24 hours" in err.details
    assert not err.retryable


@pytest.mark.parametrize(
    ("status", "code", "state"),
    [(400, 131026, "undeliverable"), (400, 100, "invalid"), (401, 190, "auth"), (400, 130429, "rate_limited"),
     (400, 131056, "rate_limited"), (400, 80007, "rate_limited"), (403, 10, "permission"),
     (404, None, "failed"), (400, 131051, "unsupported_type")],
)
async def test_other_4xx_are_final_with_a_readable_state(graph: GraphApiFake, client: CloudApiClient,
                                                         status: int, code: int | None, state: str) -> None:
    graph.fail_next(status, code)
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 1
    assert (info.value.http_status, info.value.code, info.value.state) == (status, code, state)


async def test_5xx_is_retried_up_to_max_retries_then_raised(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(500, 1, times=10)
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 1 + MAX_RETRIES
    assert (info.value.http_status, info.value.state, info.value.retryable) == (500, "server_error", True)


async def test_a_5xx_then_success_is_one_result(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(503, 2, times=2)
    [res] = await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 3 and res.wamid


async def test_a_proxy_error_page_is_retried_and_raised_as_server_error(graph: GraphApiFake,
                                                                        client: CloudApiClient) -> None:
    graph.fail_next(502, raw_body=b"<html><body>Bad Gateway</body></html>", times=10)
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 1 + MAX_RETRIES
    assert (info.value.http_status, info.value.code, info.value.state) == (502, None, "server_error")


async def test_a_success_without_message_id_is_not_retried(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(200, raw_body=b'{"messaging_product": "whatsapp"}')
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    assert info.value.state == "bad_response" and len(graph.requests) == 1  # it may have gone out


async def test_a_failed_part_reports_the_parts_already_sent(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.pass_next()
    graph.fail_next(400, 131047)
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "c " * 5000)
    assert len(graph.requests) == 2 and len(info.value.sent) == 1
    assert info.value.sent[0].wamid.startswith("wamid.")


async def test_retry_after_is_honoured(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(429, 130429, retry_after="1")
    await client.send_text(PN, TOKEN, TO, "hi")
    first, second = graph.requests
    # the client's own backoff is 10 ms here: a gap of about a second is the header's doing
    assert second.at - first.at >= 0.9


async def test_a_retry_after_beyond_the_cap_is_raised_at_once(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.fail_next(429, 130429, retry_after="3600")
    with pytest.raises(CloudApiError) as info:
        await client.send_text(PN, TOKEN, TO, "hi")
    assert len(graph.requests) == 1
    assert (info.value.state, info.value.retry_after_s) == ("rate_limited", 3600.0)


async def test_network_errors_are_retried_then_raised(session: aiohttp.ClientSession,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="whatsapp_bridge")
    api = CloudApiClient(session, base_url=f"http://127.0.0.1:{free_port()}", max_retries=2, backoff_base_s=0.01)
    with pytest.raises(CloudApiError) as info:
        await api.send_text(PN, TOKEN, TO, "hi")
    assert (info.value.http_status, info.value.state, info.value.code) == (0, "network", None)
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


async def test_a_hanging_api_is_bounded_by_the_timeout(graph: GraphApiFake, session: aiohttp.ClientSession) -> None:
    graph.delay_next(600.0, times=10)  # far beyond the test: only the client's timeout can end the call
    api = CloudApiClient(session, base_url=graph.base_url, timeout_s=0.5, max_retries=2, backoff_base_s=0.01)
    with pytest.raises(CloudApiError) as info:
        await asyncio.wait_for(api.send_text(PN, TOKEN, TO, "hi"), 60)
    assert (info.value.http_status, info.value.state, info.value.retryable) == (0, "timeout", True)
    assert len(graph.requests) == 3  # each attempt timed out, then the call gave up


# --- the access token ------------------------------------------------------------------------


async def test_access_token_is_not_in_exceptions_or_logs(graph: GraphApiFake, client: CloudApiClient,
                                                         session: aiohttp.ClientSession,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[CloudApiError] = []
    graph.fail_next(500, 1, times=1 + MAX_RETRIES)  # retried: logged on every attempt
    graph.fail_next(400, 100, message=f"Invalid OAuth access token {TOKEN}")  # Meta echoing it back
    for _ in range(2):
        with pytest.raises(CloudApiError) as info:
            await client.send_text(PN, TOKEN, TO, "hi")
        errors.append(info.value)
    graph.failures.clear()
    offline = CloudApiClient(session, base_url=f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_base_s=0.01)
    with pytest.raises(CloudApiError) as info:
        await offline.send_text(PN, TOKEN, TO, "hi")
    errors.append(info.value)
    assert [e.state for e in errors] == ["server_error", "invalid", "network"]
    assert "[redacted]" in errors[1].title
    for err in errors:
        text = str(err) + repr(err) + err.title + (err.details or "") + "".join(traceback.format_exception(err))
        assert TOKEN not in text
    assert caplog.records and TOKEN not in caplog.text


async def test_a_wrong_token_gets_meta_auth_error(session: aiohttp.ClientSession) -> None:
    graph = await GraphApiFake(access_token=TOKEN).start()
    try:
        api = CloudApiClient(session, base_url=graph.base_url, backoff_base_s=0.01)
        with pytest.raises(CloudApiError) as info:
            await api.send_text(PN, "EAAG-expired", TO, "hi")
        assert (info.value.http_status, info.value.code, info.value.state) == (401, 190, "auth")
        assert len(graph.requests) == 1
    finally:
        await graph.stop()


# --- pacing ----------------------------------------------------------------------------------


async def test_sends_of_one_number_are_paced(graph: GraphApiFake, session: aiohttp.ClientSession) -> None:
    api = CloudApiClient(session, base_url=graph.base_url, min_interval_s=0.3)
    await asyncio.gather(*(api.send_text(PN, TOKEN, TO, f"hi {i}") for i in range(3)))
    arrivals = [r.at for r in graph.requests]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 2 and all(g >= 0.25 for g in gaps)  # 0.3 s apart, less loopback jitter
    assert [r.json["text"]["body"] for r in graph.requests] == ["hi 0", "hi 1", "hi 2"]  # in call order


async def test_a_paced_number_does_not_hold_up_another(graph: GraphApiFake, session: aiohttp.ClientSession) -> None:
    api = CloudApiClient(session, base_url=graph.base_url, min_interval_s=600)
    await api.send_text(PN, TOKEN, TO, "first")
    waiting = asyncio.create_task(api.send_text(PN, TOKEN, TO, "second"))  # must wait 600 s
    try:
        await asyncio.wait_for(api.send_text("PN-OTHER", TOKEN, TO, "other number"), 30)
        assert [r.phone_number_id for r in graph.requests] == [PN, "PN-OTHER"]
        assert not waiting.done()
    finally:
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting


# --- backoff arithmetic ----------------------------------------------------------------------


def test_backoff_grows_exponentially_and_is_capped() -> None:
    lows = [backoff_delay(a, 0.5, 30.0, rand=lambda: 0.0) for a in range(10)]
    highs = [backoff_delay(a, 0.5, 30.0, rand=lambda: 1.0) for a in range(10)]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0] and highs[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(highs) == 30.0 and max(lows) == 15.0  # jitter never exceeds the cap


def test_backoff_never_waits_less_than_retry_after() -> None:
    assert backoff_delay(0, 0.5, 30.0, retry_after_s=7.0, rand=lambda: 0.0) == 7.0
    assert backoff_delay(6, 0.5, 30.0, retry_after_s=1.0, rand=lambda: 1.0) == 30.0


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0 and parse_retry_after(None) is None
    assert parse_retry_after("soon") is None and parse_retry_after("-5") == 0.0
    later = now + timedelta(seconds=90)
    assert parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now=now) == 90.0


async def test_a_token_with_control_characters_is_an_auth_failure_before_any_request(
        graph: GraphApiFake, client: CloudApiClient) -> None:
    with pytest.raises(CloudApiError) as err:
        await client.list_templates("123", "EAAG\r\nX-Injected: yes")
    assert err.value.state == "auth" and not err.value.retryable
    assert graph.template_requests == [] and graph.requests == []


async def test_list_templates_follows_the_paging_cursor(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.set_templates("123", [{"name": f"t{i}", "language": "en", "status": "APPROVED"} for i in range(5)])
    found = await client.list_templates("123", TOKEN, page_size=2)
    assert [t["name"] for t in found] == ["t0", "t1", "t2", "t3", "t4"]
    assert [q.get("after") for q in graph.template_requests] == [None, "2", "4"]
