"""Runs the real bot (python-telegram-bot Application, real HTTP) against the fake Bot API.

`running_bot` starts the fake server on 127.0.0.1, the bot over a real SQLite file, and yields
a `Harness`; `Person` plays one Telegram user: sends messages, presses buttons, waits for replies.

The fake runs with Telegram's limits on (flood control, callback expiry); a test that needs one
off passes `api_settings` (or its own `FakeBotAPI`) and says why. Waiting is always for a
condition: a reply's text, a specific call, a specific callback's answer, or `Harness.quiet()`
(nothing left to do) before a check that something did *not* happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import admin
from bot.service import IntakeService, utc_now
from bot.settings import Settings
from bot.storage import Contact, Storage
from bot.telegram.app import build_application, on_startup
from bot.telegram.polling import DurablePolling
from conversation.loader import load_survey
from conversation.model import Survey
from tests.fakes.bot_api import BotMessage, FakeBotAPI

SURVEY = load_survey()
TIMEOUT = 15.0


@dataclass
class Harness:
    """A running bot and the fake server it talks to."""

    api: FakeBotAPI
    app: Any
    storage: Storage
    survey: Survey
    front: Any

    async def quiet(self, timeout: float = TIMEOUT) -> None:
        """Wait until the bot has nothing left to do: every update fetched and handled, every call answered.

        For checks that something did *not* happen: they are made once the bot is idle, not after a
        guessed sleep. (Idle twice in a row: PTB hands a fetched update to a task one loop turn later.)
        """

        def idle() -> bool:
            return (
                not self.api.pending_updates()
                and self.app.update_queue.empty()
                and self.app.update_processor.in_flight == 0
                and all(
                    r.status is not None or r.fault is not None
                    for r in self.api.call_records
                    if r.method != "getUpdates"
                )
            )

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        streak = 0
        while streak < 3:
            if loop.time() > end:
                raise AssertionError(f"the bot did not become idle within {timeout} s")
            streak = streak + 1 if idle() else 0
            await asyncio.sleep(0.02)

    async def invite(self, city: str = "Hamburg", country: str = "Germany", joined: str | None = None) -> str:
        """A fresh deep-link token for the city."""
        _, link = await admin.invite(
            self.storage, self.survey, "gnlc_test_bot", city, country, joined, dt.datetime.now(dt.UTC)
        )
        return link.rsplit("start=", 1)[1]

    async def contact(self, user_id: int) -> Contact:
        """The stored contact of a Telegram user (who must be one)."""
        found = await self.storage.contact_by_telegram_user(user_id)
        assert found is not None, f"user {user_id} is not a contact"
        return found

    def person(self, user_id: int, language_code: str = "en") -> Person:
        """A Telegram user of this test."""
        return Person(self, user_id, language_code)


class Person:
    """One Telegram user talking to the bot in a private chat."""

    def __init__(self, harness: Harness, user_id: int, language_code: str) -> None:
        self.h = harness
        self.api = harness.api
        self.user_id = user_id
        self.language_code = language_code

    def texts_since(self, mark: int) -> str:
        """Everything the bot sent this user since `mark`, as one text."""
        return "\n".join(m.shown_text or "" for m in self.api.messages_since(mark, self.user_id))

    async def expect(self, mark: int, *wanted: str, timeout: float = TIMEOUT) -> list[BotMessage]:
        """Wait until every `wanted` text has arrived since `mark`; return the new messages."""

        def arrived() -> list[BotMessage] | None:
            msgs = self.api.messages_since(mark, self.user_id)
            text = "\n".join(m.shown_text or "" for m in msgs)
            return msgs if msgs and all(w in text for w in wanted) else None

        try:
            return await self.api.async_wait_until(arrived, timeout)
        except TimeoutError:
            raise AssertionError(f"waited for {wanted}; got:\n{self.texts_since(mark)}") from None

    async def document(self, mark: int, timeout: float = TIMEOUT) -> BotMessage:
        """Wait until a document arrives in this chat after `mark`; return it (name and bytes included)."""

        def arrived() -> BotMessage | None:
            return next((m for m in self.api.messages_since(mark, self.user_id) if m.kind == "document"), None)

        try:
            return await self.api.async_wait_until(arrived, timeout)
        except TimeoutError:
            raise AssertionError(f"no document reached {self.user_id}; got:\n{self.texts_since(mark)}") from None

    async def send(self, text: str, *wanted: str) -> list[BotMessage]:
        """Type a message and wait for the replies containing `wanted`."""
        mark = self.api.mark()
        self.api.send_text(self.user_id, text, language_code=self.language_code)
        return await self.expect(mark, *wanted)

    async def act(self, action: Callable[[], object], *wanted: str) -> list[BotMessage]:
        """Do something through the fake server and wait for the replies containing `wanted`."""
        mark = self.api.mark()
        action()
        return await self.expect(mark, *wanted)

    def keyboard_message(self, label: str) -> tuple[BotMessage, str]:
        """The newest bot message showing a button that starts with `label`, and the exact label."""
        for message in reversed(self.api.messages(self.user_id)):
            for button in message.buttons():
                text = str(button.get("text", ""))
                if "callback_data" in button and (text == label or text.startswith(label)):
                    return message, text
        raise AssertionError(f"no button {label!r} on screen")

    async def press(self, label: str, *wanted: str) -> list[BotMessage]:
        """Press an inline button by (the start of) its label and wait for `wanted`."""
        message, exact = self.keyboard_message(label)
        mark = self.api.mark()
        query = self.api.press(self.user_id, message.message_id, button_text=exact)
        replies = await self.expect(mark, *wanted) if wanted else []
        await self.spinner_stopped(query)
        return replies

    async def spinner_stopped(self, query_id: str) -> dict[str, Any]:
        """Wait until the bot answered this callback query (the fake refuses answers after 15 s)."""
        try:
            return await self.api.async_wait_until(lambda: self.api.callback_answer(query_id), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"callback query {query_id} was never answered") from None

    async def answered(self, question_id: str, timeout: float = TIMEOUT) -> object:
        """Wait until the question has a stored answer (of this user's report) and return it."""
        contact = await self.h.storage.contact_by_telegram_user(self.user_id)
        assert contact is not None

        async def stored() -> object:
            return (await self.h.storage.answers_of(contact.report_id)).get(question_id)

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            value = await stored()
            if value is not None:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"{question_id} was never stored")


@contextlib.asynccontextmanager
async def running_bot(
    data_dir: Path,
    *,
    api: FakeBotAPI | None = None,
    admin_ids: frozenset[int] = frozenset(),
    clock: Callable[[], dt.datetime] | None = None,
    allowed_updates: list[str] | None = None,
    api_settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """Start the fake Bot API (unless given; with `api_settings`, see FakeBotAPI) and the bot; stop both afterwards."""
    own_api = api is None
    api = api or FakeBotAPI(**(api_settings or {})).start()
    settings = Settings(
        bot_token=api.token,
        bot_api_base_url=api.base_url,
        bot_api_file_url=api.base_file_url,
        data_dir=data_dir,
        admin_ids=admin_ids,
        reminders_enabled=False,
        **overrides,
    )
    storage = await Storage.open(settings.database_path)
    service = IntakeService(SURVEY, storage, settings.files_dir, clock or utc_now)
    app, front = build_application(settings, SURVEY, storage, service)
    await app.initialize()
    await on_startup(app, front)
    await app.start()
    poller = DurablePolling(
        app,
        storage,
        allowed_updates=allowed_updates or ["message", "edited_message", "callback_query", "my_chat_member"],
        poll_timeout=1,
        replays=front.replays,
    )
    await poller.start()
    try:
        yield Harness(api, app, storage, SURVEY, front)
    finally:
        await poller.stop()
        await app.stop()
        await front.close()
        await app.shutdown()
        await storage.close()
        if own_api:
            api.shutdown()
