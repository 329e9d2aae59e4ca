"""Fixtures for the WhatsApp bridge: the local Graph API server and a client pointed at it.

The client uses tiny backoff steps so retry tests take milliseconds; pacing and Retry-After
tests build their own client with the settings they prove.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.graph_api import GraphApiFake
from whatsapp_bridge.cloud_api import CloudApiClient

TOKEN = "EAAG-test-access-token-0123456789"  # a fake, but treated like a real secret
MAX_RETRIES = 3


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def client(graph: GraphApiFake, session: aiohttp.ClientSession) -> CloudApiClient:
    return CloudApiClient(session, base_url=graph.base_url, timeout_s=2.0, max_retries=MAX_RETRIES,
                          backoff_base_s=0.01)
