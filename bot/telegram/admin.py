"""The coordination team in Telegram: their chat commands, join notices with a Remove button, notices.

Rules of this module:
- Only ADMIN_IDS reach the team's commands (routed with python-telegram-bot's `filters.User`) and
  Remove buttons (checked here); nothing here reveals anything to anyone else.
- Notices go only to the team's chats whose user is in the current ADMIN_IDS.
- What a command does is decided in `bot.admin` (transport-free); this module only reads the
  command and sends what came back.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import admin
from bot.service import IntakeService, Unreachable
from bot.settings import Settings
from bot.storage import City, Redemption, Storage
from bot.telegram.inputs import command_argument, language_of
from bot.telegram.outputs import answer_query, call_with_retry, edit_reply, remove_keyboard, send_reply
from conversation import commands
from conversation.i18n import Translator, get_translator, pick_language
from conversation.render import Button, Reply, esc

logger = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
CHAT_COMMANDS = commands.TEAM_COMMANDS
# The payload of a join notice's Remove button: contact id and report id (a stale one removes nothing).
REMOVE_PATTERN = re.compile(r"^rm:(\d{1,18}):(\d{1,18})$")


def remove_payload(contact_id: int, report_id: int) -> str:
    """The Remove button's payload on a join notice."""
    return f"rm:{contact_id}:{report_id}"


def parse_remove(payload: str | None) -> tuple[int, int] | None:
    """(contact id, report id) of a Remove button, or None if the payload is not one."""
    match = REMOVE_PATTERN.fullmatch(payload or "")
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def join_notice(redemption: Redemption, city: City, tr: Translator) -> Reply:
    """The team's message about someone joining a city, with a one-tap Remove button."""
    _ = tr.t
    contact, invitation = redemption.contact, redemption.invitation
    assert contact is not None and invitation is not None
    lines = [
        "👤 "
        + _(
            "{person} joined {city} ({country}).",
            person=admin.person_label(contact.display_name, contact.username),
            city=esc(city.name),
            country=esc(city.country),
        ),
        _("Telegram user id: {id}", id=contact.telegram_user_id),
    ]
    if invitation.name:
        lines.append(_("Invitation made for: {name}", name=esc(invitation.name)))
    if redemption.inviter is not None:
        inviter = admin.person_label(redemption.inviter.display_name, redemption.inviter.username)
        lines.append(_("Invited by {person}, a contact of the city.", person=inviter))
    if invitation.max_uses is None or invitation.max_uses > 1:
        lines.append(admin.link_line(invitation, tr))
    return Reply("\n".join(lines), buttons=((Button(_("Remove"), remove_payload(contact.id, city.id)),),))


def admin_welcome(tr: Translator) -> list[Reply]:
    """What an admin without a city of their own sees."""
    _ = tr.t
    lines = [_("You are a member of the coordination team."), *(c.help_line(tr.gettext) for c in commands.team_help())]
    return [Reply("\n".join(lines))]


class TeamChat:
    """The coordination team's side of the bot: their chats, commands, notices and Remove buttons."""

    def __init__(self, service: IntakeService, storage: Storage, settings: Settings) -> None:
        self.service = service
        self.storage = storage
        self.settings = settings
        self.chats_seen: set[tuple[int, int, str]] = set()  # (user, chat, language) already stored

    def is_member(self, user_id: int | None) -> bool:
        """Whether this Telegram user belongs to the coordination team."""
        return user_id is not None and user_id in self.settings.admin_ids

    async def remember_chat(self, update: Update, context: Context) -> None:
        """Keep the chat (and language) of a team member who writes, so notices can reach them."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        seen = (user.id, chat.id, language_of(user, self.settings.regional_defaults))
        if seen not in self.chats_seen:  # one write per member and chat, not per message
            await self.storage.remember_admin(*seen)
            self.chats_seen.add(seen)

    def command(self, name: str) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
        """The handler of one team command (`invite`, `status`, `reopen`, `export`, `contacts`)."""

        async def run(update: Update, context: Context) -> None:
            await self.run_command(update, context, name)

        return run

    async def run_command(self, update: Update, context: Context, name: str) -> None:
        """Run a team member's command and send what came back (a file first, if any)."""
        message, user = update.message, update.effective_user
        assert message is not None and user is not None
        tr = get_translator(language_of(user, self.settings.regional_defaults))
        result = await admin.team_command(
            self.storage,
            self.service.survey,
            name,
            command_argument(message),
            tr,
            self.service.clock(),
            bot_username=context.bot.username,
            invitation_days=self.settings.invitation_days,
        )
        if result.document is not None:
            document = InputFile(result.document.data, filename=result.document.filename)
            await call_with_retry(
                functools.partial(context.bot.send_document, message.chat_id, document=document), what="sendDocument"
            )
        for reply in result.replies:
            await send_reply(context.bot, message.chat_id, reply)

    async def welcome(self, context: Context, chat_id: int, tr: Translator) -> None:
        """Show a team member without a city of their own what they can do."""
        for reply in admin_welcome(tr):
            await send_reply(context.bot, chat_id, reply)

    async def tell(self, context: Context, make: Callable[[Translator], Reply]) -> None:
        """Send every team chat a notice, in its language; a chat that cannot be reached is skipped."""
        chats = [(chat, language) for user, chat, language in await self.storage.admin_chats() if self.is_member(user)]
        for chat_id, language in chats:
            try:
                await send_reply(context.bot, chat_id, make(get_translator(language)))
            except (TelegramError, Unreachable) as exc:
                logger.info("admin chat %s not notified: %s", chat_id, exc)

    async def on_remove(self, update: Update, context: Context) -> None:
        """A join notice's Remove button: a team member takes the contact out of the city."""
        query = update.callback_query
        assert query is not None
        user = query.from_user
        tr = get_translator(pick_language(user.language_code))
        target = parse_remove(query.data)
        if target is None or not self.is_member(user.id):
            await answer_query(query, tr.t("That button is no longer active."))
            return
        contact_id, report_id = target
        removed = await self.storage.remove_contact(report_id, contact_id=contact_id, now=self.service.clock())
        message = query.message if isinstance(query.message, Message) else None
        if removed is None:
            await answer_query(query, tr.t("This contact was already removed."))
        else:
            await answer_query(query, tr.t("Removed."))
        if message is not None:
            done = tr.t("Removed by {person}.", person=esc(user.full_name)) if removed else ""
            text = message.text_html + ("\n" + done if done else "")
            if not await edit_reply(context.bot, message.chat_id, message.message_id, Reply(text)):
                await remove_keyboard(context.bot, message.chat_id, message.message_id)
