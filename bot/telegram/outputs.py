"""Replies become Bot API calls: the one small adapter that talks to Telegram.

Rules of this module:
- HTML parse mode; texts come from `render`, where contact text is already escaped.
- A text over 4096 characters is split at paragraph, then line, then word boundaries,
  never inside a tag or an entity.
- 429 is honoured (`retry_after`); a call that certainly did not run (no connection made,
  500/502/503 from Telegram) is retried with back-off. A *send* that may have run (the request
  went out, the answer never came back) is never sent again: Telegram may have delivered it,
  and a second copy would show twice. Reads and edits are safe to repeat and are retried.
  403 (the contact blocked the bot) is reported as `Unreachable`, never retried.
- Sending happens after the answer is committed; a failed send loses nothing.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.service import Unreachable
from conversation.render import Reply

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096
MAX_ATTEMPTS = 5
# Failures after which the request certainly never reached Telegram.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Server errors (500, 502, 503: their description or HTTP phrase) answered when the call was not
# carried out; 504 (the proxy gave up waiting) may follow an executed call, like a lost answer.
_RETRIED_SERVER_ERRORS = ("Internal Server Error", "Bad Gateway", "Service Unavailable")
_TAG_RE = re.compile(r"</?[a-z]+[^>]*>|&[a-z]+;|&#\d+;")


class Pacer:
    """Spaces calls to stay under a rate; a 429 pauses every caller for its retry_after.

    Used for broadcasts (reminders): Telegram allows about 30 messages per second overall.
    """

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self.next_slot = 0.0
        self.paused_until = 0.0

    async def wait(self) -> None:
        """Wait for this caller's turn."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            slot = max(now, self.next_slot, self.paused_until)
            self.next_slot = slot + self.interval
            await asyncio.sleep(slot - now)
            if loop.time() >= self.paused_until:  # not overtaken by a 429 while waiting
                return

    def pause(self, seconds: float) -> None:
        """Telegram asked everyone to wait (429 retry_after)."""
        self.paused_until = max(self.paused_until, asyncio.get_running_loop().time() + seconds)


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB warns about the int/timedelta change on access
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return float(value) if isinstance(value, int | float) else value.total_seconds()


class MaybeSent(NetworkError):
    """A send whose request went out but whose answer never came back: it may have been delivered."""


def certainly_not_run(exc: NetworkError) -> bool:
    """Whether Telegram certainly did not carry out the call that failed with `exc`."""
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):  # no HTTP answer: only a failed connection is certain
        return isinstance(cause, _NOT_SENT)
    if isinstance(exc, TimedOut):
        return "Pool timeout" in exc.message  # PTB says so when the request was not sent
    # Telegram (or its proxy) answered with an HTTP error status.
    return exc.message.startswith(_RETRIED_SERVER_ERRORS)


def is_send(what: str) -> bool:
    """Whether the call creates a new message (a repeat would show it twice); reads and edits do not."""
    return what.startswith("send")


async def call_with_retry(
    make_call: Callable[[], Awaitable[T]], *, what: str = "call", pacer: Pacer | None = None
) -> T:
    """Run a Bot API call, honouring 429 retry_after and retrying failures where it is safe.

    A send that may already have reached Telegram raises `MaybeSent` instead of being repeated.
    """
    delay = 0.5
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if pacer is not None:
            await pacer.wait()
        try:
            return await make_call()
        except RetryAfter as exc:
            wait = _retry_after_seconds(exc)
            logger.info("%s: flood control, retrying after %s s", what, wait)
            if pacer is not None:
                pacer.pause(wait)
            else:
                await asyncio.sleep(wait)
        except Forbidden as exc:
            raise Unreachable(str(exc)) from exc
        except BadRequest:
            raise
        except NetworkError as exc:  # TimedOut included
            if is_send(what) and not certainly_not_run(exc):
                raise MaybeSent(f"{what}: no answer from Telegram ({exc.message}); not sent again") from exc
            if attempt == MAX_ATTEMPTS:
                raise
            logger.warning("%s: %s; retry %d in %.1f s", what, exc, attempt, delay)  # transient: one line
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8)
    return await make_call()


def visible_length(text: str) -> int:
    """Characters Telegram counts: the text once tags are parsed and entities decoded."""
    return len(html.unescape(re.sub(r"</?[a-z]+[^>]*>", "", text)))


def split_html(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split a message at sensible boundaries so each part stays within Telegram's limit."""
    if visible_length(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for para in text.split("\n\n"):
        candidate = f"{current}\n\n{para}" if current else para
        if visible_length(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        if visible_length(para) <= limit:
            current = para
            continue
        for piece in _split_long(para, limit):
            parts.append(piece)
    if current:
        parts.append(current)
    return parts


def _split_long(para: str, limit: int) -> list[str]:
    """Split one paragraph by lines, then by words (tags are only used on short lines)."""
    out: list[str] = []
    current = ""
    tokens = [t for line in para.split("\n") for t in [*_words(line), "\n"]][:-1]
    for token in tokens:
        candidate = current + token
        if visible_length(candidate) > limit and current:
            out.append(current.rstrip())
            current = token.lstrip()
        else:
            current = candidate
        while visible_length(current) > limit:  # one enormous word: cut between entities
            cut = _safe_cut(current, limit)
            out.append(current[:cut])
            current = current[cut:]
    if current.strip():
        out.append(current.rstrip())
    return out


def _words(line: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", line) or [line]


def _safe_cut(text: str, limit: int) -> int:
    """An index at most `limit` characters in that does not fall inside a tag or an entity."""
    cut = min(limit, len(text))
    for m in _TAG_RE.finditer(text):
        if m.start() < cut < m.end():
            return m.start() or m.end()
    return cut


def markup(reply: Reply) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """The reply's keyboard: its inline buttons, else the 'share my phone number' keyboard."""
    if reply.buttons:
        return InlineKeyboardMarkup(
            [[InlineKeyboardButton(b.label, callback_data=b.payload) for b in row] for row in reply.buttons]
        )
    return contact_keyboard(reply)


def contact_keyboard(reply: Reply) -> ReplyKeyboardMarkup | None:
    """The 'share my phone number' keyboard, if the reply asks for it."""
    if not reply.request_contact_label:
        return None
    return ReplyKeyboardMarkup(
        [[KeyboardButton(reply.request_contact_label, request_contact=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def send_reply(
    bot: Bot, chat_id: int, reply: Reply, *, remove_reply_keyboard: bool = False, pacer: Pacer | None = None
) -> Message | None:
    """Send one reply (split if needed); returns the message carrying its keyboard.

    A message has one keyboard: a question with inline buttons that also offers "share my phone
    number" gets that reply keyboard on a short second message. None when Telegram never
    answered for that message (`MaybeSent`): it may be on the contact's screen, so it is not
    sent again; the bot's answer to the contact's next message shows where they are.
    """
    chunks = split_html(reply.text)
    last: Message | None = None
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        keyboard: InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None = (
            markup(reply) if final else None
        )
        if keyboard is None and remove_reply_keyboard and index == 0:
            keyboard = ReplyKeyboardRemove()
        last = await _send_once(
            functools.partial(
                bot.send_message,
                chat_id,
                chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                disable_web_page_preview=True,
            ),
            chat_id=chat_id,
            pacer=pacer,
        )
    if reply.buttons and (share := contact_keyboard(reply)) is not None:
        await _send_once(
            functools.partial(
                bot.send_message, chat_id, "📱 " + html.escape(reply.request_contact_label or ""), reply_markup=share
            ),
            chat_id=chat_id,
            pacer=pacer,
        )
    return last


async def _send_once(
    make_call: Callable[[], Awaitable[Message]], *, chat_id: int, pacer: Pacer | None
) -> Message | None:
    """sendMessage with the retries that are safe; None (one warning) if it may or may not have arrived."""
    try:
        return await call_with_retry(make_call, what="sendMessage", pacer=pacer)
    except MaybeSent as exc:
        logger.warning("chat %s: %s", chat_id, exc)
        return None


async def edit_reply(bot: Bot, chat_id: int, message_id: int, reply: Reply) -> bool:
    """Replace a message's text and buttons in place (multi-choice ticks); False if it cannot be."""
    if visible_length(reply.text) > MAX_TEXT or reply.request_contact_label:
        return False
    keyboard = markup(reply)
    assert keyboard is None or isinstance(keyboard, InlineKeyboardMarkup)
    try:
        await call_with_retry(
            lambda: bot.edit_message_text(
                reply.text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                disable_web_page_preview=True,
            ),
            what="editMessageText",
        )
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return True
        logger.info("could not edit message %s: %s", message_id, exc)
        return False
    return True


async def remove_keyboard(bot: Bot, chat_id: int, message_id: int) -> None:
    """Take the buttons off an answered question so they cannot be pressed again."""
    try:
        await call_with_retry(
            lambda: bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None),
            what="editMessageReplyMarkup",
        )
    except BadRequest as exc:  # already removed, or the message is gone: nothing to do
        logger.debug("keyboard of %s not removed: %s", message_id, exc)


async def answer_query(query: CallbackQuery, text: str | None) -> None:
    """Stop a button's spinner (waiting out flood control); a too-old query is not worth failing over."""
    try:
        await call_with_retry(lambda: query.answer(text[:200] if text else None), what="answerCallbackQuery")
    except TelegramError as exc:
        logger.debug("answerCallbackQuery failed: %s", exc)


# Telegram allows about 30 messages per second overall; a little under leaves room for jitter.
BROADCAST_RATE = 29.0


def broadcaster(bot: Bot, per_second: float = BROADCAST_RATE) -> Callable[[int, Reply], Awaitable[Message | None]]:
    """A sender for messages to many chats (reminders): paced, with 429 pauses shared by all calls."""
    pacer = Pacer(per_second)

    async def send(chat_id: int, reply: Reply) -> Message | None:
        return await send_reply(bot, chat_id, reply, pacer=pacer)

    return send
