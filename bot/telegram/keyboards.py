"""Which message in each chat carries the live inline keyboard, remembered across restarts.

Rules of this module:
- Only the newest question keeps live buttons; this ledger says which message that is, per chat,
  so the next reply can retire it, even when that reply comes from a restarted bot.
- A new live keyboard reaches the database lazily: at most one small transaction per `FLUSH_AFTER`
  seconds (none on an answer's own path) and one on `close` when stopping. After a crash the last
  second of them may be missing; a keyboard not retired then is refused as stale when pressed.
- A retirement is written (`forget_now`) before Telegram is asked to remove the keyboard, so a
  replay never asks twice (Telegram refuses an edit that changes nothing).
"""

from __future__ import annotations

import logging

from bot.later import Coalesced
from bot.storage import Storage, StorageUnavailable

logger = logging.getLogger(__name__)

FLUSH_AFTER = 1.0  # seconds


class KeyboardLedger:
    """Chat id → id of the message whose inline keyboard is live."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._live: dict[int, int] = {}
        self._changed: dict[int, int | None] = {}  # not yet in the database; None: no live keyboard
        self._flush_soon = Coalesced(FLUSH_AFTER, self.flush)

    async def load(self) -> None:
        """Read the keyboards the last run left live."""
        self._live = {**await self.storage.live_keyboards(), **self._live}

    def get(self, chat_id: int) -> int | None:
        """The message in this chat whose keyboard is live, if any."""
        return self._live.get(chat_id)

    def set(self, chat_id: int, message_id: int) -> None:
        """This message's keyboard is now the live one of its chat."""
        self._live[chat_id] = message_id
        self._change(chat_id, message_id)

    def pop(self, chat_id: int) -> int | None:
        """Forget the chat's live keyboard (it is being retired) and return its message id."""
        old = self._live.pop(chat_id, None)
        if old is not None:
            self._change(chat_id, None)
        return old

    async def forget_now(self, chat_id: int) -> None:
        """Record at once the chat's live keyboard (none, or the newer one that replaced the keyboard
        being retired): after a crash the next reply must not try to retire the old one again."""
        self._changed.pop(chat_id, None)
        await self.storage.update_keyboards({chat_id: self._live.get(chat_id)})

    def __len__(self) -> int:
        return len(self._live)

    async def flush(self) -> None:
        """Write the changes not yet in the database (when the timer fires; see also `close`)."""
        changes, self._changed = self._changed, {}
        if not changes:
            return
        try:
            await self.storage.update_keyboards(changes)
        except StorageUnavailable as exc:
            logger.warning("live keyboards not recorded (%s); retrying later", exc)
            self._changed = {**changes, **self._changed}
            self._flush_soon.request()

    async def close(self) -> None:
        """Write what is still pending, for good (on stopping)."""
        await self._flush_soon.settle()
        await self.flush()

    def _change(self, chat_id: int, message_id: int | None) -> None:
        self._changed[chat_id] = message_id
        self._flush_soon.request()
