"""The contacts' side of the bot in Telegram: the routing table and one small handler per kind of update.

Rules of this module:
- Routing is python-telegram-bot's: handlers in groups, tried in order (`TelegramFrontEnd.install`).
  First the team's chats are noted; then the entry points that need no contact (other chats, the
  team's commands and Remove buttons, invitation links); then `identify`, once for every other
  update; then one handler per kind of input. A handler that finishes an update stops the groups
  after it (`ApplicationHandlerStop`), and so does a failure (`on_error`).
- Private chats only; the bot leaves groups and channels politely.
- Someone without an invitation learns how to get one and nothing else; so does an account that
  opens a link meant for someone else, an expired link, or a city it was removed from
  (`bot.telegram.joining`).
- A contact removed by the team sees nothing of the city from that moment: an input in flight
  when the removal lands is dropped whole (storage refuses the save).
- A redelivered update already applied before a crash changes nothing (`identify` stops it).
- The answer is committed (inside the service) before any reply is attempted.
- Button payloads are client input: decoded and checked, stale ones change nothing.
- Only the newest question keeps live buttons: the previous keyboard is removed while the
  reply that replaces it is being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Chat, InputFile, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import contact_tools
from bot.contact_tools import ColleagueLinks
from bot.receipt import receipt_filename, render_receipt
from bot.service import FileTooBig, IntakeService, Outcome, Unreachable
from bot.settings import Settings
from bot.storage import Contact, ContactRemoved, Storage, StorageUnavailable
from bot.telegram import inputs
from bot.telegram.admin import CHAT_COMMANDS, REMOVE_PATTERN, TeamChat
from bot.telegram.delivery import ChatDelivery
from bot.telegram.joining import Joining, uninvited_text
from bot.telegram.outputs import answer_query, call_with_retry, edit_reply, remove_keyboard, send_reply
from conversation import callbacks, commands
from conversation.i18n import get_translator
from conversation.render import Reply, esc
from conversation.state import Ask, EditInput, FileInput, Input, Refusal, Rejected, Report, Session, Submitted

logger = logging.getLogger(__name__)

# Commands a contact runs outside the questionnaire.
CONTACT_COMMANDS = commands.CONTACT_TOOLS
# Handler groups, run in this order for every update.
TEAM_CHATS, ENTRY, IDENTIFY, INPUT = -3, -2, -1, 0


@dataclass(frozen=True)
class Sender:
    """The contact an update comes from, with their report and place in it as `identify` read them."""

    contact: Contact
    report: Report
    session: Session


class UpdateContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """python-telegram-bot's context of one update (one per update, shared by its handler groups),
    carrying the sender `identify` found to the handler after it."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id, user_id)
        self._sender: Sender | None = None

    @property
    def sender(self) -> Sender:
        """Who sent the update (the handlers that read it run after `identify`, which sets it)."""
        assert self._sender is not None
        return self._sender

    @sender.setter
    def sender(self, sender: Sender) -> None:
        self._sender = sender


Context = UpdateContext
Callback = Callable[[Update, Context], Coroutine[Any, Any, None]]


def final(callback: Callback) -> Callback:
    """A handler after which no later group sees the update."""

    @functools.wraps(callback)
    async def run(update: Update, context: Context) -> None:
        await callback(update, context)
        raise ApplicationHandlerStop

    return run


def chat_of(update: Update) -> int:
    """The private chat an update belongs to (a button under an inaccessible message: its user's)."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    assert update.effective_user is not None
    return update.effective_user.id


class TelegramFrontEnd:
    """The bot's update handlers, sharing one service and storage."""

    def __init__(self, service: IntakeService, storage: Storage, settings: Settings) -> None:
        self.service = service
        self.storage = storage
        self.settings = settings
        self.team = TeamChat(service, storage, settings)
        self.delivery = ChatDelivery(storage)
        self.keyboards = self.delivery.keyboards  # chat id -> the message whose buttons are live
        # Redelivered updates already applied before a crash (filled by bot.telegram.inbox):
        # update id -> whether to show the contact where they are.
        self.replays: dict[int, bool] = {}
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.joining = Joining(service, storage, settings, self.delivery, self.team)

    async def close(self) -> None:
        """Write what must outlive this run (the live keyboards)."""
        await self.keyboards.close()

    def install(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Register the handlers (the routing table) and remember the application."""
        self.application = application
        private = filters.ChatType.PRIVATE
        new_message = private & filters.UpdateType.MESSAGE
        team = filters.User(user_id=self.settings.admin_ids)
        add = application.add_handler
        add(MessageHandler(new_message & team, self.team.remember_chat), TEAM_CHATS)
        # Entry points that need no contact; each finishes its update.
        add(MessageHandler(~private, final(self.on_not_private)), ENTRY)
        add(ChatMemberHandler(final(self.on_not_private), ChatMemberHandler.MY_CHAT_MEMBER), ENTRY)
        for name in sorted(CHAT_COMMANDS):
            add(CommandHandler(name, final(self.team.command(name)), filters=new_message & team), ENTRY)
        add(CommandHandler("start", final(self.joining.on_link), filters=new_message, has_args=True), ENTRY)
        add(CallbackQueryHandler(final(self.team.on_remove), pattern=REMOVE_PATTERN), ENTRY)
        # Everything else comes from a contact (or is answered and stopped here).
        add(TypeHandler(Update, self.identify), IDENTIFY)
        add(CommandHandler("start", self.on_start, filters=new_message), INPUT)
        for name in sorted(CONTACT_COMMANDS):
            add(CommandHandler(name, functools.partial(self.on_contact_tool, name), filters=new_message), INPUT)
        add(CallbackQueryHandler(self.on_button), INPUT)
        add(MessageHandler(private & filters.UpdateType.EDITED_MESSAGE & inputs.TEXT, self.on_edited), INPUT)
        add(MessageHandler(new_message & inputs.TEXT, self.on_text), INPUT)
        add(MessageHandler(new_message & filters.CONTACT, self.on_contact), INPUT)
        add(MessageHandler(new_message & inputs.FILES, self.on_file), INPUT)
        add(MessageHandler(new_message, self.on_other), INPUT)
        application.add_error_handler(self.on_error)

    # -- helpers

    async def fetch_file(self, context: Context, file: FileInput) -> bytes:
        """Download a file through getFile, refusing one larger than declared limits."""
        tg_file = await call_with_retry(lambda: context.bot.get_file(file.file_id), what="getFile")
        if tg_file.file_size is not None and tg_file.file_size > self.service.survey.uploads.max_file_bytes:
            raise FileTooBig(file.name)
        data = await call_with_retry(tg_file.download_as_bytearray, what="download")
        return bytes(data)

    async def run(
        self,
        context: Context,
        contact: Contact,
        event: Input,
        update_id: int,
        message_id: int | None = None,
        loaded: tuple[Report, Session] | None = None,
    ) -> Outcome:
        """One input through the service, with Telegram's file download."""

        async def fetch(file: FileInput) -> bytes:
            return await self.fetch_file(context, file)

        return await self.service.handle(
            contact, event, fetch=fetch, message_id=message_id, update_id=update_id, loaded=loaded
        )

    async def show(self, context: Context, chat_id: int, contact: Contact, outcome: Outcome) -> None:
        """Send what an input produced; after a submission, the receipt and the team's notice."""
        await self.delivery.deliver(context.bot, chat_id, outcome.replies)
        await self.after_submission(context, contact, outcome)

    # -- who is writing

    async def identify(self, update: Update, context: Context) -> None:
        """Find the contact behind an update, once for every handler after this one.

        Someone without a city is answered here (a team member sees what they can do, anyone else
        how to get an invitation, at most once in a while) and the update goes no further;
        so does an update applied before a crash (the contact is shown where they are).
        """
        user = update.effective_user
        if user is None:
            raise ApplicationHandlerStop
        chat_id = chat_of(update)
        found = await self.storage.contact_with_state(user.id)
        if found is None:
            tr = get_translator(inputs.language_of(user, self.settings.regional_defaults))
            if update.callback_query is not None:
                await answer_query(update.callback_query, tr.t("That button is no longer active."))
            elif update.message is not None:
                if self.team.is_member(user.id):
                    await self.team.welcome(context, chat_id, tr)
                else:
                    await self.joining.answer_stranger(context.bot, chat_id, tr, user.id)
            raise ApplicationHandlerStop
        contact, report, session = found
        if update.message is not None and (contact.blocked or contact.chat_id != chat_id):
            await self.storage.rebind_chat(contact.id, chat_id, now=self.service.clock())
        if update.update_id in self.replays:
            show = self.replays.pop(update.update_id)
            # A replayed button press is not answered: it was answered before the crash, or its
            # query has expired since; Telegram refuses both. A replayed edit shows nothing.
            if show and update.edited_message is None:
                await self.delivery.deliver(context.bot, chat_id, (await self.service.where(contact)).replies)
            raise ApplicationHandlerStop
        context.sender = Sender(contact, report, session)

    # -- a contact's commands outside the questionnaire

    async def on_start(self, update: Update, context: Context) -> None:
        """/start without a link: the introduction, or where the contact is."""
        sender = context.sender
        outcome = await self.service.begin(sender.contact, update_id=update.update_id)
        await self.show(context, chat_of(update), sender.contact, outcome)

    async def on_contact_tool(self, name: str, update: Update, context: Context) -> None:
        """/reminders, /colleague or /mydata (bot/contact_tools.py, shared with the console)."""
        contact = context.sender.contact
        reply = await contact_tools.run(
            name,
            self.storage,
            self.service.survey,
            contact,
            now=self.service.clock(),
            links=ColleagueLinks(context.bot.username, self.settings.invitation_days),
        )
        await self.delivery.deliver(context.bot, chat_of(update), [reply])

    async def after_submission(self, context: Context, contact: Contact, outcome: Outcome) -> None:
        """Send the contact a readable copy of the report and tell the coordination team."""
        if not any(isinstance(e, Submitted) for e in outcome.effects):
            return
        city = await self.storage.get_report(contact.report_id)
        if city is None or contact.chat_id is None:
            return
        now = self.service.clock()
        tr = outcome.translator
        document = render_receipt(self.service.survey, city.name, city.country, outcome.report, tr, generated_at=now)
        try:
            await call_with_retry(
                functools.partial(
                    context.bot.send_document,
                    contact.chat_id,
                    document=InputFile(document, filename=receipt_filename(city.name)),
                    caption=tr.t("A copy of your submitted report."),
                ),
                what="sendDocument",
            )
        except TelegramError as exc:  # the report is stored; the copy can be asked for again with /review
            logger.warning("receipt for report %s not sent: %s", contact.report_id, exc)
        await self.team.tell(
            context,
            lambda admin_tr: Reply(
                admin_tr.t(
                    "✅ {city} ({country}) submitted its Biennial Progress Report.",
                    city=esc(city.name),
                    country=esc(city.country),
                )
            ),
        )

    # -- answers

    async def on_text(self, update: Update, context: Context) -> None:
        """A text message: an answer, or a command of the questionnaire (/skip, /edit, an unknown one)."""
        assert update.message is not None and update.message.text is not None
        await self.answer(update, context, inputs.text_input(update.message.text, context.bot.username))

    async def on_contact(self, update: Update, context: Context) -> None:
        """A shared phone number."""
        assert update.message is not None
        await self.answer(update, context, inputs.contact_input(update.message))

    async def on_file(self, update: Update, context: Context) -> None:
        """A document, photo, video or audio file."""
        assert update.message is not None
        await self.answer(update, context, inputs.file_input(update.message))

    async def on_other(self, update: Update, context: Context) -> None:
        """Any other message (a sticker, a location …): a polite reply, the conversation goes on."""
        assert update.message is not None
        await self.answer(update, context, inputs.unsupported_input(update.message))

    async def answer(self, update: Update, context: Context, event: Input) -> None:
        """One new message's input through the service, then the replies."""
        message, sender = update.message, context.sender
        assert message is not None
        loaded = (sender.report, sender.session)
        outcome = await self.run(context, sender.contact, event, update.update_id, message.message_id, loaded)
        await self.show(context, message.chat_id, sender.contact, outcome)

    async def on_edited(self, update: Update, context: Context) -> None:
        """The contact edited a message they sent: update the answer it carried."""
        message = update.edited_message
        assert message is not None and message.text is not None
        contact = context.sender.contact
        found = await self.storage.answer_message(contact.id, message.message_id)
        if found is None:
            logger.debug("edit of message %s maps to no answer", message.message_id)
            return
        question_id, previous = found
        outcome = await self.run(context, contact, EditInput(question_id, message.text, previous), update.update_id)
        if not any(isinstance(e, Rejected) for e in outcome.effects):
            await self.storage.remember_answer_message(contact.id, message.message_id, question_id, message.text)
        await self.delivery.deliver(context.bot, message.chat_id, outcome.replies)

    # -- buttons

    async def on_button(self, update: Update, context: Context) -> None:
        """A button press: validate, apply, then tidy the keyboard."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        message = query.message if isinstance(query.message, Message) else None
        event = callbacks.decode(query.data)
        if event is None or message is None:
            tr = get_translator(inputs.language_of(user, self.settings.regional_defaults))
            await answer_query(query, tr.t("That button is no longer active."))
            return
        sender = context.sender
        contact, report, session = sender.contact, sender.report, sender.session
        outcome = await self.run(context, contact, event, update.update_id, loaded=(report, session))
        tr = outcome.translator
        stale = [e for e in outcome.effects if isinstance(e, Rejected) and e.reason is Refusal.STALE_BUTTON]
        if stale and len(outcome.effects) == 1:
            await answer_query(query, tr.t("That button is no longer active."))
            if self.keyboards.get(message.chat_id) != message.message_id:
                await remove_keyboard(context.bot, message.chat_id, message.message_id)
            return
        # The spinner stops while the next question is on its way, not before it.
        answering = asyncio.create_task(answer_query(query, None))
        replies = list(outcome.replies)
        first = outcome.effects[0] if outcome.effects else None
        if (
            isinstance(first, Ask)
            and replies
            and replies[0].question_id == first.question_id
            and self.keyboards.get(message.chat_id) == message.message_id
            and getattr(event, "question_id", None) == first.question_id
            and await edit_reply(context.bot, message.chat_id, message.message_id, replies[0])
        ):
            replies = replies[1:]  # the multiple-choice ticks were updated in place
        try:
            retired = await self.delivery.deliver(context.bot, message.chat_id, replies)
        finally:
            await answering
        if message.message_id not in retired and self.keyboards.get(message.chat_id) != message.message_id:
            await remove_keyboard(context.bot, message.chat_id, message.message_id)
        await self.after_submission(context, contact, outcome)

    # -- groups, channels, backlogs and errors

    async def on_not_private(self, update: Update, context: Context) -> None:
        """The bot works only in private chats: say so once and leave."""
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.PRIVATE:
            return
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status in ("left", "kicked"):
            return  # the bot has already left (or was removed): nothing to say
        user = update.effective_user
        tr = get_translator(inputs.language_of(user, self.settings.regional_defaults))
        if chat.type != Chat.CHANNEL:
            with contextlib.suppress(TelegramError):  # flood control is waited out; anything else is not worth more
                await call_with_retry(
                    functools.partial(
                        context.bot.send_message,
                        chat.id,
                        tr.t("This bot works only in private chats. Please write to it directly."),
                    ),
                    what="sendMessage",
                )
        try:
            await context.bot.leave_chat(chat.id)
        except TelegramError as exc:
            logger.info("could not leave chat %s: %s", chat.id, exc)

    async def on_backlog_overflow(self, update: Update) -> None:
        """A chat sent more updates at once than it may queue: tell an invited contact, once, that the
        extra ones were not taken (someone without an invitation is not answered again)."""
        chat = update.effective_chat
        user = update.effective_user
        if chat is None or user is None or chat.type != ChatType.PRIVATE:
            return
        try:
            contact = await self.storage.contact_by_telegram_user(user.id)
            if contact is None:
                return
            _ = get_translator(contact.language).t
            text = _(
                "You sent many messages at once. I took the first ones in order, but not the rest. "
                "Please check with /review and send again what is missing, one message at a time."
            )
            assert self.application is not None
            await send_reply(self.application.bot, chat.id, Reply(text))
        except (TelegramError, Unreachable, StorageUnavailable) as exc:  # a courtesy; nothing is lost without it
            logger.warning("backlog notice to chat %s not sent: %s", chat.id, exc)

    async def on_error(self, update: object, context: Context) -> None:
        """Report a failure (`report_error`); no later handler group sees the update that failed."""
        try:
            await self.report_error(update, context)
        except Exception:  # the report is best effort
            logger.exception("error report failed")
        raise ApplicationHandlerStop

    async def report_error(self, update: object, context: Context) -> None:
        """Log the failure and tell the contact, politely, that their answers are safe."""
        error = context.error
        chat_id = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        user = update.effective_user if isinstance(update, Update) else None
        if isinstance(error, Unreachable):
            logger.info("chat %s blocked the bot", chat_id)
            if user is not None and (contact := await self._contact_quietly(user.id)) is not None:
                await self.storage.mark_blocked(contact.id, now=self.service.clock())
            return
        tr = get_translator(inputs.language_of(user, self.settings.regional_defaults))
        if isinstance(error, ContactRemoved):
            # Removed by the team while this input was on its way: nothing of it was kept.
            logger.info("input from a removed contact dropped (chat %s)", chat_id)
            if chat_id is not None:
                await self.delivery.say(context.bot, chat_id, uninvited_text(tr, self.service.survey.contact_email))
            return
        if isinstance(error, StorageUnavailable):
            logger.error("database unavailable: %s", error)
            text = tr.t("Your answer could not be saved just now. Please try again shortly.")
        elif isinstance(error, NetworkError) and not isinstance(error, BadRequest):  # unreachable through every retry
            logger.warning("update not answered: the Bot API is unreachable (%s)", error)
            text = tr.t("Something went wrong on our side. Your saved answers are safe; please try again.")
        else:
            logger.error("update failed", exc_info=error)
            text = tr.t("Something went wrong on our side. Your saved answers are safe; please try again.")
        if chat_id is not None and isinstance(update, Update) and update.effective_chat.type == ChatType.PRIVATE:  # type: ignore[union-attr]
            try:
                await send_reply(context.bot, chat_id, Reply(text))
            except Exception:  # the error reply is best effort; it was already logged
                logger.debug("error reply failed", exc_info=True)

    async def _contact_quietly(self, user_id: int) -> Contact | None:
        try:
            return await self.storage.contact_by_telegram_user(user_id)
        except StorageUnavailable:
            return None
