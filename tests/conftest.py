"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.bot_api import FakeBotAPI


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    """A fake Bot API on 127.0.0.1 with Telegram's limits on, shut down after the test."""
    fake = FakeBotAPI().start()
    try:
        yield fake
    finally:
        fake.shutdown()
