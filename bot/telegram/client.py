"""A Bot API client for one-shot commands (`invite`, `remind`), outside the running bot.

Rules of this module:
- Built from the same settings as the running bot (token, BOT_API_BASE_URL, BOT_API_FILE_URL).
- getMe runs when the client opens, so a refused token or an unreachable Bot API ends the command
  (the command line turns the error into one line, never showing the token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Bot

from bot.settings import Settings


@asynccontextmanager
async def standalone_bot(settings: Settings) -> AsyncIterator[Bot]:
    """An initialised Bot for the configured token, shut down on exit."""
    assert settings.bot_token is not None
    async with Bot(
        settings.bot_token.get_secret_value(),
        base_url=settings.bot_api_base_url,
        base_file_url=settings.bot_api_file_url,
    ) as bot:
        yield bot


async def bot_username(settings: Settings) -> str:
    """The bot's @username (without the @), asked of the Bot API."""
    async with standalone_bot(settings) as bot:
        return bot.username
