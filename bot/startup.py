"""Start-up checks of the bot: DATA_DIR writable and locked, the Bot API reachable, the token accepted.

Rules of this module:
- Every failure is a `StartupError` whose message is one line saying what is wrong and what to
  do; `python -m bot` prints it on standard error and exits non-zero. No message ever contains
  the token (python-telegram-bot's own message for a refused token does, so it is never shown).
- One bot per DATA_DIR: the first takes an exclusive lock on `DATA_DIR/bot.lock` (held until the
  process ends, released by the system even after SIGKILL) and writes who it is into the file;
  a second instance refuses to start, naming the first.
- An unreachable Bot API at start is retried with exponential backoff, one WARNING line per
  attempt, and given up after `CONNECT_ATTEMPTS`; SIGTERM during the wait stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from telegram import Bot

logger = logging.getLogger(__name__)

LOCK_NAME = "bot.lock"
TOKEN_REFUSED = (
    "the Bot API refused BOT_TOKEN (unknown or revoked token); copy the token again from @BotFather into BOT_TOKEN"
)
CONNECT_ATTEMPTS = 8
FIRST_DELAY = 1.0
MAX_DELAY = 30.0


class StartupError(Exception):
    """The bot cannot start; the message is one line naming the problem and the remedy."""


def check_writable(data_dir: Path) -> None:
    """Create DATA_DIR if needed and make sure files can be written in it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise StartupError(
            f"DATA_DIR {data_dir} is not writable ({exc.strerror or exc}); "
            "give the bot a writable persistent directory (set DATA_DIR)"
        ) from None


class DataDirLock:
    """An exclusive lock on DATA_DIR for the life of the process."""

    def __init__(self, data_dir: Path, purpose: str = "bot") -> None:
        self.path = data_dir / LOCK_NAME
        self.purpose = purpose
        self._fh: IO[str] | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise `StartupError` naming the process that holds it."""
        import fcntl

        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StartupError(
                f"DATA_DIR {self.path.parent} is in use by {holder}; stop that instance first "
                "(one bot per data directory)"
            ) from None
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        fh.seek(0)
        fh.truncate()
        fh.write(f"{self.purpose} pid {os.getpid()} on {socket.gethostname()} since {started}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Give the lock up (the system does it anyway when the process ends)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.seek(0)
                self._fh.truncate()
            self._fh.close()  # closing the descriptor releases the flock
            self._fh = None


def prepare_data_dir(data_dir: Path, purpose: str = "bot") -> DataDirLock:
    """DATA_DIR checked writable and locked for this process."""
    check_writable(data_dir)
    return DataDirLock(data_dir, purpose).acquire()


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


def port_in_use(what: str, listen: str, port: int, exc: OSError) -> StartupError:
    """The one line for a server port that cannot be opened."""
    return StartupError(
        f"cannot listen on {listen}:{port} for {what} ({exc.strerror or exc}); "
        "another program uses that port: stop it or choose another port"
    )
