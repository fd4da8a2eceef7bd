"""Replies into one chat, keeping only the newest question's keyboard alive.

Rules of this module:
- Replies are sent in order. Only the newest question keeps live buttons: the previous keyboard is
  removed while the reply that replaces it is being sent, once the database knows it is gone (so a
  replay after a crash never asks Telegram to remove it again).
- The "share my phone number" keyboard can only be removed by a message without inline buttons:
  a short acknowledgement goes before the next question.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot

from bot.storage import Storage, StorageUnavailable
from bot.telegram.keyboards import KeyboardLedger
from bot.telegram.outputs import remove_keyboard, send_reply
from conversation.i18n import get_translator
from conversation.render import Reply

logger = logging.getLogger(__name__)


class ChatDelivery:
    """Sends replies to chats and retires stale keyboards."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        # chat id -> id of the newest message with inline buttons (to retire stale keyboards)
        self.keyboards = KeyboardLedger(storage)
        # chats whose "share my phone number" keyboard is showing
        self.contact_keyboards: set[int] = set()

    async def deliver(self, bot: Bot, chat_id: int, replies: tuple[Reply, ...] | list[Reply]) -> set[int]:
        """Send replies in order, retiring the previous keyboard when a new one appears; return the
        ids of the messages whose keyboards were retired."""
        moving_on = any(r.buttons for r in replies) and not any(r.request_contact_label for r in replies)
        if chat_id in self.contact_keyboards and moving_on:
            # The "share my phone number" keyboard can only be removed by a message without inline
            # buttons: acknowledge with a short one before the next question.
            tr = get_translator(await self._language_of(chat_id))
            await send_reply(bot, chat_id, Reply(tr.t("Thank you.")), remove_reply_keyboard=True)
            self.contact_keyboards.discard(chat_id)
        retiring: dict[int, asyncio.Task[None]] = {}
        try:
            for reply in replies:
                sending = asyncio.ensure_future(send_reply(bot, chat_id, reply))
                if reply.buttons or reply.request_contact_label:
                    old = self.keyboards.pop(chat_id)
                    if old is not None:
                        # Started once the reply's request is on its way (the contact waits for the
                        # reply, not for this), and awaited below, so it overlaps the reply's round trip.
                        retiring[old] = asyncio.create_task(self.retire_keyboard(bot, chat_id, old))
                sent = await sending
                if reply.request_contact_label:
                    self.contact_keyboards.add(chat_id)
                if reply.buttons and sent is not None:  # None: Telegram never said whether it arrived
                    self.keyboards.set(chat_id, sent.message_id)
        finally:
            if retiring:
                await asyncio.gather(*retiring.values(), return_exceptions=True)
        return set(retiring)

    async def retire_keyboard(self, bot: Bot, chat_id: int, message_id: int) -> None:
        """Remove a message's keyboard once the database knows it is gone, so a replay after a crash
        never asks Telegram to remove it again (Telegram refuses: the message is not modified)."""
        try:
            await self.keyboards.forget_now(chat_id)
        except StorageUnavailable as exc:
            logger.warning("keyboard of chat %s not retired (%s)", chat_id, exc)
            return
        await remove_keyboard(bot, chat_id, message_id)

    async def _language_of(self, chat_id: int) -> str:
        """The language of the contact in this private chat (English if unknown)."""
        contact = await self.storage.contact_by_telegram_user(chat_id)
        return contact.language if contact is not None else "en"

    async def say(self, bot: Bot, chat_id: int, text: str) -> None:
        """Send one plain notice."""
        await self.deliver(bot, chat_id, [Reply(text)])
