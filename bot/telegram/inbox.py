"""The durable inbox: every update received from Telegram is kept in the database until handled.

Rules of this module:
- `accept` commits the updates to the `inbox` table before it returns; only then may Telegram be
  told they were received (the next getUpdates offset, or the webhook's 200). A crash at any moment
  therefore loses no message. (When the database refuses writes, the updates are handled anyway:
  the contacts are asked to try again.)
- The handled-update marks and the message -> answer mapping are pruned at start and every
  `PRUNE_EVERY` seconds while running.
- An update leaves the inbox once its handler has finished, i.e. it is answered. Finished updates
  are forgotten in the transaction that keeps the next updates (or within `FORGET_AFTER` seconds
  when none come), not in one of their own: one write per batch, not two.
- `start` replays what the last run received but did not finish, in update order. An update id is
  started at most once per run, and handlers apply nothing for an update whose changes were
  committed before (`handled_updates`): they are marked in `replays`.
- Handling goes through the application's update processor, so chats run concurrently and each
  chat's updates strictly in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot import metrics
from bot.later import Coalesced
from bot.service import utc_now
from bot.storage import Storage, StorageUnavailable

logger = logging.getLogger(__name__)

MAX_REMEMBERED_IDS = 10_000
# Seconds a finished (answered) update may stay in the inbox when no new one comes. Short: a crash
# inside this window replays the update and shows the contact their question a second time.
FORGET_AFTER = 0.1
PRUNE_EVERY = 3600.0  # seconds between prunings of the per-update and per-message tables while running
HANDLED_KEPT = dt.timedelta(days=2)  # Telegram redelivers within a day; ids may restart after a quiet week


class DurableInbox:
    """Keeps received updates in the database until handled, and hands them to the application."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        storage: Storage,
        replays: dict[int, bool] | None = None,
    ) -> None:
        self.app = app
        self.storage = storage
        # Redelivered updates whose changes were committed before a crash, by id: handed on, but the
        # handlers apply nothing; True when the contact should be shown where they are (their reply
        # may have been lost), False when a later update of the same chat follows and will answer.
        self.replays = replays if replays is not None else {}
        self._started: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._finished: list[int] = []  # handled and answered, still in the inbox
        self._forget = Coalesced(FORGET_AFTER, self._forget_finished)
        self._pruned_at = time.monotonic()

    async def start(self, received: Sequence[Update] = ()) -> None:
        """Replay what the last run kept but did not finish, together with `received` (just fetched)."""
        await self.storage.prune(utc_now() - HANDLED_KEPT)
        self._pruned_at = time.monotonic()
        stored = await self.storage.inbox_pending()
        pending = [Update.de_json(json.loads(payload), self.app.bot) for _, payload in stored]
        if pending:
            logger.info("replaying %d update(s) received before the last stop", len(pending))
        known = {u.update_id for u in pending}
        newly = [u for u in received if u.update_id not in known]
        done = await self._keep(newly) if newly else set()
        done |= await self.storage.handled([u.update_id for u in pending])
        # One pass over both, so a replay knows whether a later message of the same chat follows it.
        first = sorted([*pending, *newly], key=lambda u: u.update_id)
        self._note_replays(first, done)
        for update in first:
            self._spawn(update)

    async def accept(self, updates: Sequence[Update]) -> None:
        """Commit new updates to the inbox, then start handling them (ones already started are skipped)."""
        fresh = [u for u in updates if u.update_id not in self._started]
        if not fresh:
            return
        self._note_replays(fresh, await self._keep(fresh))
        metrics.UPDATES_RECEIVED.inc(len(fresh))
        for update in fresh:
            self._spawn(update)

    async def stop(self, grace: float = 10.0) -> None:
        """Let the updates being handled finish (they stay in the inbox if not), and forget the finished."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        await self._forget.settle()
        await self._forget_finished()

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
            # the contacts to try again shortly, so they are handled (and acknowledged) all the same.
            logger.error("database unavailable, received updates not kept: %s", exc)
            return set()

    def _spawn(self, update: Update) -> None:
        self._started.add(update.update_id)
        if len(self._started) > MAX_REMEMBERED_IDS:
            for old in sorted(self._started)[: MAX_REMEMBERED_IDS // 2]:
                self._started.discard(old)
        self._spawn_task(self._handle(update))
        metrics.INBOX_BACKLOG.inc()

    def _spawn_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, update: Update) -> None:
        processor = self.app.update_processor
        started = time.perf_counter()
        try:
            await processor.process_update(update, self.app.process_update(update))
        finally:
            metrics.INBOX_BACKLOG.dec()
            metrics.observe_handling(started)
            self._finished.append(update.update_id)
            if not self._stopping:
                self._forget.request()
                if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    self._spawn_task(self._prune())

    async def _prune(self) -> None:
        try:
            await self.storage.prune(utc_now() - HANDLED_KEPT)
        except StorageUnavailable as exc:
            logger.warning("pruning postponed: %s", exc)

    async def _forget_finished(self) -> None:
        """Take handled and answered updates out of the inbox (when no new updates came to carry them)."""
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
