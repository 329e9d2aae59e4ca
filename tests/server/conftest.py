"""Fixtures shared by the chat-server tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.graph_api import GraphApiFake


@pytest.fixture
async def graph() -> AsyncIterator[GraphApiFake]:
    """The fake WhatsApp Graph API the real client talks to."""
    fake = await GraphApiFake().start()
    yield fake
    await fake.stop()
