"""Long polling on top of the durable inbox (`bot.telegram.inbox`): no fetched update is ever lost.

Rules of this module:
- getUpdates' offset tells Telegram to forget every update below it, so the offset moves past a
  batch only once `DurableInbox.accept` has committed the batch.
- At start-up the webhook is removed (polling and a webhook exclude each other), and what the last
  run kept but did not finish is replayed together with what Telegram still holds.
- Errors of the Bot API are retried with backoff; a refused token stops polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.error import Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.storage import Storage
from bot.telegram.inbox import DurableInbox

logger = logging.getLogger(__name__)


class DurablePolling:
    """Fetches updates with getUpdates and hands them to the application, durably."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        storage: Storage,
        *,
        allowed_updates: list[str] | None = None,
        poll_timeout: int = 10,
        replays: dict[int, bool] | None = None,
    ) -> None:
        self.app = app
        self.inbox = DurableInbox(app, storage, replays)
        self.replays = self.inbox.replays
        self.allowed_updates = allowed_updates
        self.poll_timeout = poll_timeout
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Replay what the last run fetched but did not handle, then start polling."""
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        try:
            waiting: tuple[Update, ...] = await self.app.bot.get_updates(
                timeout=0, allowed_updates=self.allowed_updates
            )
        except (NetworkError, TimedOut, RetryAfter, Conflict) as exc:
            logger.warning("first getUpdates failed (%s); polling will retry", exc)
            waiting = ()
        await self.inbox.start(waiting)
        offset = waiting[-1].update_id + 1 if waiting else None
        self._loop_task = asyncio.create_task(self._poll(offset), name="durable-polling")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching and let the updates being handled finish (they stay in the inbox if not)."""
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self.inbox.stop(grace)

    async def _poll(self, offset: int | None) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                updates = await self.app.bot.get_updates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=self.allowed_updates
                )
            except (InvalidToken, Forbidden):
                logger.critical("the Bot API refused the token; polling stops")
                raise
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except Conflict:
                logger.error("another instance is polling with this token (or a webhook is set); retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            except (NetworkError, TimedOut) as exc:
                logger.warning("getUpdates failed (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            delay = 1.0
            if updates:
                await self.inbox.accept(updates)  # committed before the next getUpdates confirms them
                offset = updates[-1].update_id + 1


def _seconds(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else 1.0
