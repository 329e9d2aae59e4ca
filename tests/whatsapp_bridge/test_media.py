"""Media with the Graph API client: info and download of a contact's file (bounded, retried
before the first byte, the token only to Meta's hosts), uploads, media messages, and the
outbound type and size rules."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from chatcore.errors import TooLarge, UnsupportedType
from tests.fakes.graph_api import GraphApiFake
from tests.whatsapp_bridge.conftest import TOKEN
from whatsapp_bridge.cloud_api import CloudApiClient, CloudApiError
from whatsapp_bridge.media import inbound_media, outbound_kind

PN, TO = "106540352242922", "4917011111"
DATA = bytes(range(256)) * 2000  # 512000 bytes, several chunks


async def _all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


async def test_media_info_and_download_return_metas_url_and_the_exact_bytes(graph: GraphApiFake,
                                                                              client: CloudApiClient) -> None:
    graph.serve_media("M1", DATA, "image/jpeg")
    info = await client.media_info("M1", TOKEN)
    assert (info.mime_type, info.file_size, info.sha256) == ("image/jpeg", len(DATA), hashlib.sha256(DATA).hexdigest())
    assert await _all(client.download_media(info.url, TOKEN, len(DATA))) == DATA
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in graph.media_requests)


async def test_a_download_past_the_bound_stops_with_too_large(graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.serve_media("M2", DATA, "video/mp4")
    info = await client.media_info("M2", TOKEN)
    with pytest.raises(CloudApiError) as err:
        await _all(client.download_media(info.url, TOKEN, len(DATA) - 1))
    assert err.value.state == "too_large"


async def test_a_download_is_retried_on_5xx_before_any_byte_and_an_unknown_media_is_final(
        graph: GraphApiFake, client: CloudApiClient) -> None:
    graph.serve_media("M3", DATA, "audio/ogg")
    info = await client.media_info("M3", TOKEN)
    graph.fail_media_next(503, on="download")
    assert await _all(client.download_media(info.url, TOKEN, len(DATA))) == DATA
    with pytest.raises(CloudApiError) as err:
        await client.media_info("NOPE", TOKEN)
    assert err.value.http_status == 404 and not err.value.retryable
    assert len([r for r in graph.media_requests if r.path.endswith("/NOPE")]) == 1


@pytest.mark.parametrize("url", ["http://evil.example/x", "https://lookaside.fbsbx.com.evil.example/x",
                                 "ftp://lookaside.fbsbx.com/x"])
async def test_the_token_is_never_sent_to_a_media_url_off_metas_hosts(graph: GraphApiFake, client: CloudApiClient,
                                                                      url: str) -> None:
    assert client.media_url_allowed("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1")
    with pytest.raises(CloudApiError) as err:
        await _all(client.download_media(url, TOKEN, 100))
    assert err.value.state == "invalid" and TOKEN not in str(err.value)


async def test_upload_streams_the_bytes_as_multipart_and_send_media_uses_the_media_id(
        graph: GraphApiFake, client: CloudApiClient, session: aiohttp.ClientSession) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(DATA), 65536):
            yield DATA[i:i + 65536]

    graph.fail_next(503)  # a passing failure: the upload is retried with fresh bytes
    media_id = await client.upload_media(PN, TOKEN, "application/pdf", "report.pdf", chunks)
    [up] = graph.uploads
    assert (up.data, up.filename, up.fields["type"], up.media_id) == (DATA, "report.pdf", "application/pdf", media_id)
    await client.send_media(PN, TOKEN, TO, "document", media_id, caption="here", filename="report.pdf")
    await client.send_media(PN, TOKEN, TO, "audio", media_id, caption="dropped", filename="dropped")
    doc, audio = graph.sends()
    assert doc.json["document"] == {"id": media_id, "caption": "here", "filename": "report.pdf"}
    assert audio.json["audio"] == {"id": media_id}  # WhatsApp shows no caption or name on audio


def test_outbound_kinds_follow_whatsapps_supported_types_and_limits() -> None:
    assert outbound_kind("image/png", 5_000_000) == "image"
    assert outbound_kind("application/pdf", 100_000_000) == "document"
    assert outbound_kind("audio/ogg", 10, b"OggS....OpusHead") == "audio"
    for mime in ("image/svg+xml", "image/gif", "image/webp", "application/zip", "text/html"):
        with pytest.raises(UnsupportedType):
            outbound_kind(mime, 10)
    with pytest.raises(UnsupportedType):
        outbound_kind("audio/ogg", 10, b"OggS....\x01vorbis")
    with pytest.raises(TooLarge):
        outbound_kind("image/jpeg", 5_000_001)
    with pytest.raises(TooLarge):
        outbound_kind("video/mp4", 16_000_001)


def test_inbound_media_names_and_captions() -> None:
    voice = inbound_media("audio", {"media_id": "a", "mime_type": "audio/ogg; codecs=opus", "voice": True})
    assert voice is not None and (voice.mime, voice.name, voice.caption) == ("audio/ogg", "voice-note.ogg", "")
    doc = inbound_media("document", {"media_id": "d", "mime_type": "application/pdf", "filename": "a.pdf",
                                     "caption": " scan "})
    assert doc is not None and (doc.name, doc.caption) == ("a.pdf", "scan")
    assert inbound_media("location", {"media_id": "x"}) is None and inbound_media("image", {}) is None
