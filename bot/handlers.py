"""Thin Telegram callbacks: translate the update, run the service, send what it rendered.

Rules of this module:
- Private chats only; the bot leaves groups and channels politely.
- Someone without an invitation learns how to get one and nothing else; so does an account that
  opens a link meant for someone else, an expired link, or a city it was removed from.
- A contact removed by the team sees nothing of the city from that moment: an input in flight
  when the removal lands is dropped whole (storage refuses the save).
- The answer is committed (inside the service) before any reply is attempted.
- Button payloads are client input: decoded and checked, stale ones change nothing.
- Only the newest question keeps live buttons: the previous keyboard is removed while the
  reply that replaces it is being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telegram import CallbackQuery, Chat, InputFile, Message, Update, User
from telegram.constants import ChatType
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes

from bot import admin, privacy
from bot.exports import export_reports
from bot.inputs import command_of, message_input
from bot.keyboards import KeyboardLedger
from bot.outputs import call_with_retry, edit_reply, remove_keyboard, send_reply
from bot.receipt import receipt_filename, render_receipt
from bot.service import Blocked, FileTooBig, IntakeService, Outcome
from bot.settings import Settings
from bot.storage import Contact, ContactRemoved, Redeemed, Redemption, Storage, StorageUnavailable, TooManyLinks
from conversation import callbacks
from conversation.i18n import Translator, get_translator, pick_language
from conversation.render import Reply, esc
from conversation.state import Ask, EditInput, FileInput, Input, Notice, Rejected, Report, Session

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
# Commands a contact runs outside the questionnaire.
CONTACT_COMMANDS = frozenset({"reminders", "colleague", "mydata"})
# Unused colleague links one contact may hold at a time (each is single-use and expires).
COLLEAGUE_LINK_CAP = 5
UNINVITED_QUIET = 300.0  # seconds: someone without an invitation gets at most one reply in this time


class TelegramFrontEnd:
    """The bot's update handlers, sharing one service and storage."""

    def __init__(self, service: IntakeService, storage: Storage, settings: Settings) -> None:
        self.service = service
        self.storage = storage
        self.settings = settings
        # chat id -> id of the newest message with inline buttons (to retire stale keyboards)
        self.keyboards = KeyboardLedger(storage)
        # chats whose "share my phone number" keyboard is showing
        self.contact_keyboards: set[int] = set()
        self.bot_username: str | None = None
        self.admins_seen: set[tuple[int, int, str]] = set()
        # Redelivered updates already applied before a crash (filled by bot.polling.DurablePolling):
        # update id -> whether to show the contact where they are.
        self.replays: dict[int, bool] = {}
        self.application: Application[Any, Any, Any, Any, Any, Any] | None = None
        # Telegram user id -> monotonic time of the last reply to someone without an invitation.
        self.uninvited_replied: dict[int, float] = {}

    async def close(self) -> None:
        """Write what must outlive this run (the live keyboards)."""
        await self.keyboards.close()

    def attach(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Remember the application (for jobs and the bot's username)."""
        self.application = application

    # -- helpers

    def user_language(self, user: User | None) -> str:
        """The language a Telegram user's `language_code` selects, with the team's regional defaults."""
        return pick_language(user.language_code if user else None, self.settings.regional_defaults)

    def is_admin(self, user_id: int | None) -> bool:
        """Whether this Telegram user belongs to the coordination team."""
        return user_id is not None and user_id in self.settings.admin_ids

    async def team_chats(self) -> list[tuple[int, str]]:
        """(chat id, language) of the team's chats, only for users in the current ADMIN_IDS."""
        return [(chat, language) for user, chat, language in await self.storage.admin_chats() if self.is_admin(user)]

    async def tell_team(self, context: Context, make: Callable[[Translator], Reply]) -> None:
        """Send every team chat a notice, in its language; a chat that cannot be reached is skipped."""
        for chat_id, language in await self.team_chats():
            try:
                await send_reply(context.bot, chat_id, make(get_translator(language)))
            except (TelegramError, Blocked) as exc:
                logger.info("admin chat %s not notified: %s", chat_id, exc)

    async def deliver(self, context: Context, chat_id: int, replies: tuple[Reply, ...] | list[Reply]) -> set[int]:
        """Send replies in order, retiring the previous keyboard when a new one appears; return the
        ids of the messages whose keyboards were retired."""
        bot = context.bot
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

    async def retire_keyboard(self, bot: Any, chat_id: int, message_id: int) -> None:
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

    async def say(self, context: Context, chat_id: int, text: str) -> None:
        """Send one plain notice."""
        await self.deliver(context, chat_id, [Reply(text)])

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

    async def replayed(self, context: Context, update: Update, contact: Contact, chat_id: int) -> bool:
        """A redelivered update already applied before a crash: show where the contact is, apply nothing."""
        if update.update_id not in self.replays:
            return False
        show = self.replays.pop(update.update_id)
        # A replayed button press is not answered: it was answered before the crash, or its query
        # has expired since; Telegram refuses both.
        if show:
            await self.deliver(context, chat_id, (await self.service.where(contact)).replies)
        return True

    # -- messages

    async def on_message(self, update: Update, context: Context) -> None:
        """A new message in a private chat."""
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None:
            return
        chat_id = message.chat_id
        tr = get_translator(self.user_language(user))
        cmd = command_of(message.text or "", context.bot.username)
        if self.is_admin(user.id):
            if (user.id, chat_id, tr.language) not in self.admins_seen:  # one write per admin and chat, not per message
                await self.storage.remember_admin(user.id, chat_id, tr.language)
                self.admins_seen.add((user.id, chat_id, tr.language))
            if cmd is not None and cmd[0] in admin.CHAT_COMMANDS:
                await self.deliver(context, chat_id, await admin.chat_command(self, chat_id, cmd[0], cmd[1], tr))
                return
        if cmd is not None and cmd[0] == "start" and cmd[1]:
            await self.redeem(update, context, cmd[1], tr)
            return
        found = await self.storage.contact_with_state(user.id)
        if found is None:
            if self.is_admin(user.id):
                await self.deliver(context, chat_id, admin.admin_welcome(self, tr))
                return
            if self.may_answer_uninvited(user.id):
                await self.say(context, chat_id, uninvited_text(tr, self.service.survey.contact_email))
            return
        contact, report, session = found
        if contact.blocked or contact.chat_id != chat_id:
            await self.storage.rebind_chat(contact.id, chat_id, now=self.service.clock())
        if await self.replayed(context, update, contact, chat_id):
            return
        event = message_input(message, context.bot.username)
        if cmd is not None and cmd[0] == "start":
            outcome = await self.service.begin(contact, update_id=update.update_id)
        elif cmd is not None and cmd[0] in CONTACT_COMMANDS:
            await self.contact_command(context, contact, chat_id, cmd[0])
            return
        else:
            outcome = await self.run(context, contact, event, update.update_id, message.message_id, (report, session))
        await self.deliver(context, chat_id, outcome.replies)
        await self.after_submission(context, contact, outcome)

    async def contact_command(self, context: Context, contact: Contact, chat_id: int, name: str) -> None:
        """/reminders, /colleague or /mydata."""
        if name == "reminders":
            await self.toggle_reminders(context, contact, chat_id)
        elif name == "colleague":
            await self.colleague_link(context, contact, chat_id)
        else:
            city = await self.storage.get_report(contact.report_id)
            data = await self.storage.personal_data(contact.id)
            reply = privacy.my_data(data, city, get_translator(contact.language), self.service.survey.contact_email)
            await self.deliver(context, chat_id, [reply])

    async def colleague_link(self, context: Context, contact: Contact, chat_id: int) -> None:
        """/colleague: a personal, single-use link to this contact's city for one colleague."""
        tr = get_translator(contact.language)
        now = self.service.clock()
        expires = now + dt.timedelta(days=self.settings.invitation_days)
        try:
            ((token, _id),) = await self.storage.create_invitations(
                [(contact.report_id, None, None)],
                now,
                max_uses=1,
                expires_at=expires,
                invited_by=contact.id,
                colleague_cap=COLLEAGUE_LINK_CAP,
            )
        except TooManyLinks:
            text = tr.t(
                "You already have {count} colleague links that nobody has used yet. "
                "Please wait until they are used or expire.",
                count=COLLEAGUE_LINK_CAP,
            )
            await self.say(context, chat_id, text)
            return
        city = await self.storage.get_report(contact.report_id)
        link = admin.deep_link(self.bot_username or context.bot.username, token)
        text = tr.t(
            "Send this personal link to one colleague of {city}. It works for one Telegram account "
            "and until {date}; the coordination team sees that you invited them:",
            city=esc(city.name if city else ""),
            date=tr.format_date(expires.date()),
        )
        await self.say(context, chat_id, f"{text}\n{esc(link)}")

    def may_answer_uninvited(self, user_id: int) -> bool:
        """Whether someone without an invitation may get a reply now (one per UNINVITED_QUIET seconds),
        so a stranger's flood costs one message, not one per message."""
        now = time.monotonic()
        last = self.uninvited_replied.get(user_id)
        if last is not None and now - last < UNINVITED_QUIET:
            return False
        if len(self.uninvited_replied) > 10_000:  # forget the quiet ones so memory stays bounded
            self.uninvited_replied = {u: t for u, t in self.uninvited_replied.items() if now - t < UNINVITED_QUIET}
        self.uninvited_replied[user_id] = now
        return True

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
        except (TelegramError, Blocked, StorageUnavailable) as exc:  # a courtesy; nothing is lost without it
            logger.warning("backlog notice to chat %s not sent: %s", chat.id, exc)

    async def toggle_reminders(self, context: Context, contact: Contact, chat_id: int) -> None:
        """/reminders: pause or resume deadline reminders for this contact."""
        paused = not contact.reminders_paused
        await self.storage.set_reminders_paused(contact.id, paused, now=self.service.clock())
        _ = get_translator(contact.language).t
        text = (
            _("Deadline reminders are paused. Send /reminders again to resume them.")
            if paused
            else _("Deadline reminders are on again.")
        )
        await self.say(context, chat_id, text)

    async def after_submission(self, context: Context, contact: Contact, outcome: Outcome) -> None:
        """Send the contact a readable copy of the report and tell the coordination team."""
        if not any(isinstance(e, Notice) and e.code == "submitted" for e in outcome.effects):
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
        await self.tell_team(
            context,
            lambda admin_tr: Reply(
                admin_tr.t(
                    "✅ {city} ({country}) submitted its Biennial Progress Report.",
                    city=esc(city.name),
                    country=esc(city.country),
                )
            ),
        )

    async def send_export(self, chat_id: int, tr: Translator) -> Reply:
        """Send the coordination team every report as a spreadsheet, in the chat."""
        assert self.application is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gnlc-reports.xlsx"
            count = await export_reports(self.storage, self.service.survey, "xlsx", path, header_language=tr.language)
            data = path.read_bytes()
        await call_with_retry(
            functools.partial(
                self.application.bot.send_document,
                chat_id,
                document=InputFile(data, filename="gnlc-reports.xlsx"),
            ),
            what="sendDocument",
        )
        return Reply(tr.n("{count} report exported.", "{count} reports exported.", count))

    async def redeem(self, update: Update, context: Context, token: str, tr: Translator) -> None:
        """Bind the user to a city through their personal invitation link."""
        message = update.effective_message
        user = update.effective_user
        assert message is not None and user is not None
        result = await self.storage.redeem(
            token,
            telegram_user_id=user.id,
            chat_id=message.chat_id,
            display_name=user.full_name,
            language=tr.language,
            now=self.service.clock(),
            username=user.username,
        )
        contact = result.contact
        if contact is None:
            existing = await self.storage.contact_by_telegram_user(user.id)
            await self.say(context, message.chat_id, refusal_text(result, tr, self.service.survey.contact_email))
            if existing is not None:
                await self.deliver(context, message.chat_id, (await self.service.begin(existing)).replies)
            return
        city = await self.storage.get_report(contact.report_id)
        if city is not None:  # also when opened again: a crash may have come between joining and this
            await self.service.prefill(contact, city=city.name, country=city.country, joined=city.joined)
        outcome = await self.service.begin(contact)
        await self.deliver(context, message.chat_id, outcome.replies)
        if city is not None and result.outcome is Redeemed.JOINED:
            await self.tell_team(context, functools.partial(admin.join_notice, result, city))

    async def remove_from_notice(self, context: Context, query: CallbackQuery, target: tuple[int, int]) -> None:
        """A join notice's Remove button, pressed by a member of the team."""
        user = query.from_user
        tr = get_translator(pick_language(user.language_code))
        contact_id, report_id = target
        removed = await self.storage.remove_contact(report_id, contact_id=contact_id, now=self.service.clock())
        message = query.message if isinstance(query.message, Message) else None
        if removed is None:
            await self.answer(query, tr.t("This contact was already removed."))
        else:
            await self.answer(query, tr.t("Removed."))
        if message is not None:
            done = tr.t("Removed by {person}.", person=esc(user.full_name)) if removed else ""
            text = message.text_html + ("\n" + done if done else "")
            if not await edit_reply(context.bot, message.chat_id, message.message_id, Reply(text)):
                await remove_keyboard(context.bot, message.chat_id, message.message_id)

    async def on_edited(self, update: Update, context: Context) -> None:
        """The contact edited a message they sent: update the answer it carried."""
        message = update.edited_message
        user = update.effective_user
        if message is None or user is None or message.text is None:
            return
        contact = await self.storage.contact_by_telegram_user(user.id)
        if contact is None:
            return
        found = await self.storage.answer_message(contact.id, message.message_id)
        if found is None:
            logger.debug("edit of message %s maps to no answer", message.message_id)
            return
        question_id, previous = found
        if self.replays.pop(update.update_id, None) is not None:
            return  # this edit was applied before the crash
        outcome = await self.run(context, contact, EditInput(question_id, message.text, previous), update.update_id)
        if not any(isinstance(e, Rejected) for e in outcome.effects):
            await self.storage.remember_answer_message(contact.id, message.message_id, question_id, message.text)
        await self.deliver(context, message.chat_id, outcome.replies)

    # -- buttons

    async def on_callback(self, update: Update, context: Context) -> None:
        """A button press: validate, apply, then tidy the keyboard."""
        query = update.callback_query
        user = update.effective_user
        if query is None or user is None:
            return
        tr = get_translator(self.user_language(user))
        message = query.message if isinstance(query.message, Message) else None
        target = admin.parse_remove(query.data)
        if target is not None and self.is_admin(user.id):
            await self.remove_from_notice(context, query, target)
            return
        event = callbacks.decode(query.data)
        found = await self.storage.contact_with_state(user.id)
        if event is None or found is None or message is None:
            await self.answer(query, tr.t("That button is no longer active."))
            return
        contact, report, session = found
        if await self.replayed(context, update, contact, message.chat_id):
            return
        outcome = await self.run(context, contact, event, update.update_id, loaded=(report, session))
        tr = outcome.translator
        stale = [e for e in outcome.effects if isinstance(e, Rejected) and e.code == "stale_button"]
        if stale and len(outcome.effects) == 1:
            await self.answer(query, tr.t("That button is no longer active."))
            if self.keyboards.get(message.chat_id) != message.message_id:
                await remove_keyboard(context.bot, message.chat_id, message.message_id)
            return
        # The spinner stops while the next question is on its way, not before it.
        answering = asyncio.create_task(self.answer(query, None))
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
            retired = await self.deliver(context, message.chat_id, replies)
        finally:
            await answering
        if message.message_id not in retired and self.keyboards.get(message.chat_id) != message.message_id:
            await remove_keyboard(context.bot, message.chat_id, message.message_id)
        await self.after_submission(context, contact, outcome)

    async def answer(self, query: CallbackQuery, text: str | None) -> None:
        """Stop the button's spinner (waiting out flood control); a too-old query is not worth failing over."""
        try:
            await call_with_retry(lambda: query.answer(text[:200] if text else None), what="answerCallbackQuery")
        except TelegramError as exc:
            logger.debug("answerCallbackQuery failed: %s", exc)

    # -- groups, channels and errors

    async def on_not_private(self, update: Update, context: Context) -> None:
        """The bot works only in private chats: say so once and leave."""
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.PRIVATE:
            return
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status in ("left", "kicked"):
            return  # the bot has already left (or was removed): nothing to say
        user = update.effective_user
        tr = get_translator(self.user_language(user))
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

    async def on_error(self, update: object, context: Context) -> None:
        """Log the failure and tell the contact, politely, that their answers are safe."""
        error = context.error
        chat_id = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        user = update.effective_user if isinstance(update, Update) else None
        if isinstance(error, Blocked):
            logger.info("chat %s blocked the bot", chat_id)
            if user is not None and (contact := await self._contact_quietly(user.id)) is not None:
                await self.storage.mark_blocked(contact.id, now=self.service.clock())
            return
        tr = get_translator(self.user_language(user))
        if isinstance(error, ContactRemoved):
            # Removed by the team while this input was on its way: nothing of it was kept.
            logger.info("input from a removed contact dropped (chat %s)", chat_id)
            if chat_id is not None:
                await self.say(context, chat_id, uninvited_text(tr, self.service.survey.contact_email))
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


def refusal_text(result: Redemption, tr: Translator, email: str) -> str:
    """What an account is told when a link does not let it in (nothing about the city)."""
    _ = tr.t
    if result.outcome is Redeemed.USED:
        return _(
            "This invitation link has already been used by another Telegram account: invitation links are "
            "personal. If you need access to a report, please write to the UNESCO GNLC Coordination Team: {email}",
            email=email,
        )
    if result.outcome is Redeemed.EXPIRED:
        return _(
            "This invitation link has expired. Please ask the UNESCO GNLC Coordination Team for a new one: {email}",
            email=email,
        )
    if result.outcome is Redeemed.REMOVED:
        return _(
            "This Telegram account no longer has access to this report. If you think this is a mistake, "
            "please write to the UNESCO GNLC Coordination Team: {email}",
            email=email,
        )
    return _(
        "This invitation link is not valid (it may have been replaced or withdrawn). "
        "Please ask the UNESCO GNLC Coordination Team for a new one: {email}",
        email=email,
    )


def uninvited_text(tr: Translator, email: str) -> str:
    """What someone without an invitation is told."""
    return tr.t(
        "This bot collects the Biennial Progress Reports of UNESCO Global Network of Learning Cities members. "
        "It works with a personal invitation link sent to each city's contact person. "
        "If you are one and have no link, please write to {email}.",
        email=email,
    )
