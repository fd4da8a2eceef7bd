"""Builds the python-telegram-bot Application: handlers, per-chat ordering, commands, start-up.

Rules of this module:
- Updates of different chats run concurrently; updates of one chat strictly in order. A chat
  waiting for its turn holds no global slot; a chat's backlog is capped (`MAX_CHAT_BACKLOG`).
- Telegram is asked only for the update types handled here (`ALLOWED_UPDATES`).
- The command menu is registered per language with setMyCommands.
- Long polling by default; a webhook (with Telegram's secret-token header checked) when
  WEBHOOK_URL is set. Both keep every update in the database's inbox before acknowledging it.
- Start-up goes through `bot.telegram.startup` (token checked, an unreachable Bot API retried); on SIGTERM
  or SIGINT receiving stops, handlers in flight get `STOP_GRACE` seconds, the rest stays in the inbox.
- `/healthz` and `/metrics` are on the webhook's server, or on METRICS_PORT when polling.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, Update
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes

from bot import backup, startup
from bot.monitoring import MetricsServer, health_check
from bot.reminders import policy_from, send_due
from bot.service import IntakeService
from bot.settings import Settings
from bot.storage import Storage
from bot.telegram.handlers import TelegramFrontEnd, UpdateContext
from bot.telegram.outputs import broadcaster, call_with_retry
from bot.telegram.polling import DurablePolling
from bot.telegram.startup import connect
from bot.telegram.transport import BotApiRequest
from bot.telegram.webhook import DurableWebhook
from conversation import commands
from conversation.i18n import LANGUAGES, get_translator, pick_language, telegram_language_code
from conversation.model import Survey

logger = logging.getLogger(__name__)

# Hosts send SIGKILL about 10 s after SIGTERM: handlers in flight get this long to finish (the rest
# stay in the inbox for the next start), leaving time to stop the application and close the database.
STOP_GRACE = 7.0


# The update types the handlers below handle; Telegram sends no others (getUpdates / setWebhook).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
# Updates of one chat waiting for their turn; beyond this a chat's new updates are dropped (one notice).
MAX_CHAT_BACKLOG = 10

Overflow = Callable[[Update], Awaitable[None]]


class PerChatSequential(BaseUpdateProcessor):
    """Concurrent across chats, strictly ordered within one chat (FIFO locks per chat).

    A chat's update takes its place in the chat's order *before* it takes one of the global
    `max_concurrent_updates` slots, so updates queued behind their own chat (however many) never
    hold capacity another chat needs. A chat holds at most `max_backlog` updates; beyond that its
    new updates are dropped, and the first one dropped is replaced by `on_overflow` (one polite
    notice, in the chat's order) until the chat's backlog has drained.
    """

    def __init__(self, max_concurrent_updates: int = 256, max_backlog: int = MAX_CHAT_BACKLOG) -> None:
        # PTB's own semaphore (taken before `do_process_update`) must never be what limits, or a
        # chat's queued updates would hold it: its bound is far above any number of queued updates.
        super().__init__(1 << 20)
        self.max_backlog = max_backlog
        self.on_overflow: Overflow | None = None
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}
        self._overflowing: set[int] = set()  # chats that were told their extra updates were dropped
        self._slots = asyncio.BoundedSemaphore(max_concurrent_updates)
        self.dropped = 0
        self.in_flight = 0  # updates handed to this processor and not finished (queued in a chat or running)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's turn, then for a global slot, then run the update."""
        self.in_flight += 1
        try:
            await self._process(update, coroutine)
        finally:
            self.in_flight -= 1

    async def _process(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = _chat_key(update)
        if key is None:
            async with self._slots:
                await coroutine
            return
        if self._waiting.get(key, 0) >= self.max_backlog:
            _close(coroutine)
            self.dropped += 1
            if key in self._overflowing or self.on_overflow is None or not isinstance(update, Update):
                return
            self._overflowing.add(key)
            logger.warning("chat %s sent over %d updates at once; the extra ones are dropped", key, self.max_backlog)
            coroutine = self.on_overflow(update)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:  # forget idle chats so memory stays flat
                del self._waiting[key]
                del self._locks[key]
                self._overflowing.discard(key)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _close(coroutine: Awaitable[Any]) -> None:
    """Discard a coroutine that will never run (without the 'never awaited' warning)."""
    close = getattr(coroutine, "close", None)
    if callable(close):
        close()


def _chat_key(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


def command_menu(language: str) -> list[BotCommand]:
    """The command list shown in Telegram's menu, in one language."""
    tr = get_translator(language)
    return [BotCommand(c.name, tr.gettext(c.description or "")) for c in commands.contact_menu()]


def build_application(
    settings: Settings, survey: Survey, storage: Storage, service: IntakeService | None = None
) -> tuple[Application[Any, Any, Any, Any, Any, Any], TelegramFrontEnd]:
    """The configured Application and the front end whose handlers it runs."""
    assert settings.bot_token is not None
    service = service or IntakeService(
        survey, storage, settings.files_dir, accept_late=settings.accept_late_submissions
    )
    front = TelegramFrontEnd(service, storage, settings)
    request = BotApiRequest(connection_pool_size=64, connect_timeout=10, read_timeout=20, write_timeout=30)
    builder = (
        Application.builder()
        .token(settings.bot_token.get_secret_value())
        .base_url(settings.bot_api_base_url)
        .base_file_url(settings.bot_api_file_url)
        .request(request)
        .get_updates_request(BotApiRequest(connection_pool_size=2, read_timeout=40, connect_timeout=10))
        .concurrent_updates(PerChatSequential())
        .context_types(ContextTypes(context=UpdateContext))
    )
    # Updates arrive through bot.telegram.polling or bot.telegram.webhook (durably), not PTB's Updater.
    app = builder.updater(None).build()
    front.install(app)
    if isinstance(app.update_processor, PerChatSequential):
        app.update_processor.on_overflow = front.on_backlog_overflow
    if app.job_queue is not None and settings.reminders_enabled:
        policy = policy_from(settings, survey)
        send = broadcaster(app.bot)

        async def remind(context: ContextTypes.DEFAULT_TYPE) -> None:
            await send_due(storage, survey, policy, service.clock(), send)

        # The database records what was sent, so a restart simply resumes this schedule.
        app.job_queue.run_repeating(remind, interval=settings.reminder_check_seconds, first=5, name="reminders")
    if app.job_queue is not None and settings.backup_dir is not None:
        backup_dir, keep = settings.backup_dir, settings.backup_keep

        async def take_backup(context: ContextTypes.DEFAULT_TYPE) -> None:
            await backup.scheduled_backup(settings.data_dir, backup_dir, keep)

        every = settings.backup_every_hours * 3600
        app.job_queue.run_repeating(take_backup, interval=every, first=every, name="backups")
    return app, front


async def on_startup(app: Application[Any, Any, Any, Any, Any, Any], front: TelegramFrontEnd) -> None:
    """Register the command menu in every language once the bot is known."""
    await front.service.clean_files()
    await front.keyboards.load()
    await call_with_retry(lambda: app.bot.set_my_commands(command_menu("en")), what="setMyCommands")
    # Telegram keys menus by two-letter code: a language with regional variants (pt_BR, pt_PT) gets
    # the menu of the variant its bare code selects, as a contact with that code would be answered.
    for code in dict.fromkeys(telegram_language_code(language) for language in LANGUAGES):
        language = pick_language(code, front.settings.regional_defaults)
        await call_with_retry(
            functools.partial(app.bot.set_my_commands, command_menu(language), language_code=code),
            what="setMyCommands",
        )
    logger.info("bot @%s ready", app.bot.username)


async def serve_polling(
    app: Application[Any, Any, Any, Any, Any, Any], front: TelegramFrontEnd, storage: Storage, settings: Settings
) -> None:
    """Run the bot with durable long polling until SIGINT or SIGTERM."""
    poller = DurablePolling(app, storage, allowed_updates=ALLOWED_UPDATES, replays=front.replays)
    monitor = MetricsServer(health_check(settings.data_dir, settings.database_path))

    async def start() -> None:
        if settings.metrics_port is not None:
            try:
                monitor.start(settings.metrics_listen, settings.metrics_port)
            except OSError as exc:
                where = settings.metrics_listen
                raise startup.port_in_use("metrics (METRICS_PORT)", where, settings.metrics_port, exc) from None
        await poller.start()

    async def stop() -> None:
        await poller.stop(STOP_GRACE)
        await monitor.stop()

    await _serve(app, front, settings, start, stop)


async def serve_webhook(
    app: Application[Any, Any, Any, Any, Any, Any], front: TelegramFrontEnd, storage: Storage, settings: Settings
) -> None:
    """Run the bot behind a webhook (updates kept before they are acknowledged) until SIGINT or SIGTERM."""
    assert settings.webhook_url is not None
    webhook_url = settings.webhook_url.rstrip("/") + "/telegram"
    # Without a configured secret a random one per start still keeps strangers from posting updates.
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    hook = DurableWebhook(
        app,
        storage,
        secret_token=secret,
        url_path="telegram",
        replays=front.replays,
        health=health_check(settings.data_dir, settings.database_path),
    )

    async def start() -> None:
        await hook.start(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            webhook_url=webhook_url,
            allowed_updates=ALLOWED_UPDATES,
        )

    await _serve(app, front, settings, start, functools.partial(hook.stop, STOP_GRACE))


async def _serve(
    app: Application[Any, Any, Any, Any, Any, Any],
    front: TelegramFrontEnd,
    settings: Settings,
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
) -> None:
    """Initialise the application, start receiving updates, and stop cleanly on SIGINT or SIGTERM.

    On a signal: stop fetching (polling) or accepting (webhook), let the updates being handled
    finish within the grace period (the rest stay in the inbox for the next start), then exit.
    """
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    if not await connect(app.bot, settings.bot_api_base_url, stopping):
        return  # stopped while the Bot API was unreachable
    await app.initialize()
    try:
        await on_startup(app, front)
        await app.start()
        try:
            await start()
            await stopping.wait()
            logger.info("stopping")
        finally:
            await stop()
            await app.stop()
            await front.close()
    finally:
        await app.shutdown()


def run_bot(settings: Settings, survey: Survey, storage: Storage) -> None:
    """Run until interrupted: long polling, or a webhook when WEBHOOK_URL is set."""
    app, front = build_application(settings, survey, storage)
    serve = (
        serve_webhook(app, front, storage, settings)
        if settings.webhook_url
        else serve_polling(app, front, storage, settings)
    )
    asyncio.get_event_loop().run_until_complete(serve)
