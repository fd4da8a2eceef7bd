"""The Bot API side of start-up: the token accepted, an unreachable Bot API waited for.

Rules of this module:
- Every failure is a `StartupError` (one line: what is wrong and what to do). No message ever
  contains the token (python-telegram-bot's own message for a refused token does, so it is never shown).
- An unreachable Bot API at start is retried with exponential backoff, one WARNING line per
  attempt, and given up after `CONNECT_ATTEMPTS`; SIGTERM during the wait stops at once.
- `telegram_failure` imports nothing: the command line calls it for any error, with or without
  python-telegram-bot loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.startup import StartupError

if TYPE_CHECKING:
    from telegram import Bot

logger = logging.getLogger(__name__)

TOKEN_REFUSED = (
    "the Bot API refused BOT_TOKEN (unknown or revoked token); copy the token again from @BotFather into BOT_TOKEN"
)
CONNECT_ATTEMPTS = 8
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


async def connect(
    bot: Bot,
    base_url: str,
    stopping: asyncio.Event | None = None,
    *,
    attempts: int = CONNECT_ATTEMPTS,
    first_delay: float = FIRST_DELAY,
) -> bool:
    """Initialise the bot (getMe), retrying an unreachable Bot API; False if stopped while waiting."""
    from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TelegramError, TimedOut

    host = urlsplit(base_url).netloc or base_url
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            await bot.initialize()
            return True
        except InvalidToken:
            raise StartupError(TOKEN_REFUSED) from None
        except RetryAfter as exc:
            reason = f"flood control ({exc.retry_after} s)"
        except BadRequest as exc:  # a NetworkError subclass, but nothing a retry mends
            raise StartupError(
                f"the Bot API at {host} refused getMe ({_redacted(str(exc), bot.token)}); check BOT_API_BASE_URL"
            ) from None
        except (NetworkError, TimedOut) as exc:  # includes 5xx answers and proxies' error pages
            reason = _redacted(str(exc) or type(exc).__name__, bot.token)
        except TelegramError as exc:
            raise StartupError(
                f"the Bot API at {host} answered getMe with an error ({_redacted(str(exc), bot.token)}); "
                "check BOT_API_BASE_URL"
            ) from None
        if attempt == attempts:
            raise StartupError(
                f"the Bot API at {host} is unreachable after {attempts} attempts ({reason}); "
                "check the network, a proxy, or BOT_API_BASE_URL"
            )
        logger.warning(
            "cannot reach the Bot API at %s (attempt %d of %d: %s); retrying in %.0f s",
            host,
            attempt,
            attempts,
            reason,
            delay,
        )
        if stopping is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            if stopping.is_set():
                return False
        delay = min(delay * 2, MAX_DELAY)
    return False  # not reached: the last attempt raises


def telegram_failure(exc: BaseException, token: str | None) -> str | None:
    """The one line for a python-telegram-bot error that ends a command (None for anything else)."""
    errors = sys.modules.get("telegram.error")
    if errors is None or not isinstance(exc, errors.TelegramError):
        return None
    if isinstance(exc, errors.InvalidToken):
        return TOKEN_REFUSED
    reason = _redacted(str(exc), token) if token else " ".join(str(exc).split())[:200]
    if isinstance(exc, errors.NetworkError) and not isinstance(exc, errors.BadRequest):
        return f"the Bot API is unreachable ({reason}); check the network, a proxy, or BOT_API_BASE_URL"
    return f"the Bot API refused the request ({reason})"


def _redacted(text: str, token: str) -> str:
    """One line without the token."""
    return " ".join(text.replace(token, "<BOT_TOKEN>").split())[:200]
