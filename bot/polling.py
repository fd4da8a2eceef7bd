"""Long polling that never loses a fetched update: each is kept in the database until handled.

Rules of this module:
- getUpdates' offset tells Telegram to forget every update below it. Before moving the offset
  past a batch, the batch is committed to the `inbox` table; an update leaves the inbox only
  after its handler has finished. A crash at any moment therefore loses no message. (When the
  database refuses writes, the batch is handled anyway: the contacts are asked to try again.)
- Finished updates leave the inbox in the transaction that keeps the next batch (or within
  `FORGET_AFTER` seconds when none comes), not in one of their own: one write per batch, not two.
- At start-up the inbox is replayed in order before polling resumes. Telegram may also resend
  updates that were fetched but not yet confirmed; an update id is started at most once per run,
  and handlers apply nothing for an update whose changes were committed before (`handled_updates`).
- Handling goes through the application's update processor, so chats run concurrently and
  each chat's updates strictly in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any

from telegram import Update
from telegram.error import Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

from bot.service import utc_now
from bot.storage import Storage, StorageUnavailable

logger = logging.getLogger(__name__)

MAX_REMEMBERED_IDS = 10_000
FORGET_AFTER = 1.0  # seconds a finished update may stay in the inbox when no new batch comes


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
        self.storage = storage
        self.allowed_updates = allowed_updates
        self.poll_timeout = poll_timeout
        self._started: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._finished: list[int] = []  # handled and answered, still in the inbox
        self._forget_later: asyncio.TimerHandle | None = None
        self._forgetting: set[asyncio.Task[None]] = set()
        # Redelivered updates whose changes were committed before a crash, by id: handed on, but the
        # handlers apply nothing; True when the contact should be shown where they are (their reply
        # may have been lost), False when a later update of the same chat follows and will answer.
        self.replays = replays if replays is not None else {}

    async def start(self) -> None:
        """Replay what the last run fetched but did not handle, then start polling."""
        await self.app.bot.delete_webhook(drop_pending_updates=False)
        await self.storage.forget_handled_before(utc_now() - dt.timedelta(days=2))
        stored = await self.storage.inbox_pending()
        pending = [Update.de_json(json.loads(payload), self.app.bot) for _, payload in stored]
        if pending:
            logger.info("replaying %d update(s) fetched before the last stop", len(pending))
        # What Telegram still holds comes in the same first pass, so a replay knows whether a later
        # message of the same chat follows it.
        try:
            waiting: tuple[Update, ...] = await self.app.bot.get_updates(
                timeout=0, allowed_updates=self.allowed_updates
            )
        except (NetworkError, TimedOut, RetryAfter, Conflict) as exc:
            logger.warning("first getUpdates failed (%s); polling will retry", exc)
            waiting = ()
        known = {u.update_id for u in pending}
        newly = [u for u in waiting if u.update_id not in known]
        done = await self._keep(newly) if newly else set()
        done |= await self.storage.handled([u.update_id for u in pending])
        offset = waiting[-1].update_id + 1 if waiting else None
        first = sorted([*pending, *newly], key=lambda u: u.update_id)
        self._note_replays(first, done)
        for update in first:
            self._spawn(update)
        self._loop_task = asyncio.create_task(self._poll(offset), name="durable-polling")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching and let the updates being handled finish (they stay in the inbox if not)."""
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        if self._forget_later is not None:
            self._forget_later.cancel()
        if self._forgetting:
            await asyncio.wait(set(self._forgetting))
        await self._forget_finished()

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
            if not updates:
                continue
            fresh = [u for u in updates if u.update_id not in self._started]
            if fresh:
                # Committed before the next getUpdates tells Telegram to forget them.
                self._note_replays(fresh, await self._keep(fresh))
            offset = updates[-1].update_id + 1
            for update in fresh:
                self._spawn(update)

    def _note_replays(self, updates: list[Update], done: set[int]) -> None:
        """Mark redelivered updates whose changes were committed before a crash (see `replays`)."""
        if not done:
            return
        logger.info("updates %s were handled before the last stop; not applied again", sorted(done))
        last_of_chat = {_chat_of(u): u.update_id for u in updates}
        for update in updates:
            if update.update_id in done:
                self.replays[update.update_id] = last_of_chat[_chat_of(update)] == update.update_id

    async def _keep(self, updates: list[Update]) -> set[int]:
        """Commit the updates to the inbox (forgetting finished ones); return the ids already handled."""
        payloads = [(u.update_id, json.dumps(u.to_dict(), ensure_ascii=False)) for u in updates]
        finished, self._finished = self._finished, []
        try:
            return await self.storage.inbox_add(payloads, utc_now(), done=finished)
        except StorageUnavailable as exc:
            self._finished.extend(finished)
            # The database refuses writes: the handlers cannot save these answers either and will ask
            # the contacts to try again shortly, so they are handled (and confirmed) all the same.
            logger.error("database unavailable, fetched updates not kept: %s", exc)
            return set()

    def _spawn(self, update: Update) -> None:
        self._started.add(update.update_id)
        if len(self._started) > MAX_REMEMBERED_IDS:
            for old in sorted(self._started)[: MAX_REMEMBERED_IDS // 2]:
                self._started.discard(old)
        task = asyncio.create_task(self._handle(update))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, update: Update) -> None:
        processor = self.app.update_processor
        try:
            await processor.process_update(update, self.app.process_update(update))
        finally:
            self._finished.append(update.update_id)
            if self._forget_later is None and not self._stopping.is_set():
                self._forget_later = asyncio.get_running_loop().call_later(FORGET_AFTER, self._forget_soon)

    def _forget_soon(self) -> None:
        self._forget_later = None
        if self._finished:
            task = asyncio.create_task(self._forget_finished())
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)

    async def _forget_finished(self) -> None:
        """Take handled and answered updates out of the inbox (when no new batch came to carry them)."""
        finished, self._finished = self._finished, []
        if not finished:
            return
        try:
            await self.storage.inbox_done(finished)
        except StorageUnavailable:
            logger.warning("updates %s stay in the inbox; they will be replayed", finished)


def _chat_of(update: Update) -> int | None:
    chat = update.effective_chat
    return chat.id if chat is not None else None


def _seconds(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else 1.0
