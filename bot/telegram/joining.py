"""Joining a city in Telegram: personal invitation links (a colleague's too), and everyone else.

Rules of this module:
- A link lets in whom the storage says it may (personal by default: the first account that opens
  it). An account a link does not let in (a link meant for someone else, an expired or withdrawn
  one, a city it was removed from) is told why, and nothing about the city.
- Someone without an invitation learns how to get one and nothing else, at most once per
  `UNINVITED_QUIET` seconds, so a stranger's flood costs one message.
- Colleague links are made by `bot.contact_tools` (/colleague, shared with the console).
- The team's chats are told whenever someone joins, with a Remove button (`bot.telegram.admin`).
"""

from __future__ import annotations

import functools
import time

from telegram import Bot, Update
from telegram.ext import ContextTypes

from bot.service import IntakeService
from bot.settings import Settings
from bot.storage import Redeemed, Redemption, Storage
from bot.telegram import inputs
from bot.telegram.admin import TeamChat, join_notice
from bot.telegram.delivery import ChatDelivery
from conversation.i18n import Translator, get_translator

Context = ContextTypes.DEFAULT_TYPE
UNINVITED_QUIET = 300.0  # seconds: someone without an invitation gets at most one reply in this time


class Joining:
    """Invitation links and the answer to anyone without a city."""

    def __init__(
        self, service: IntakeService, storage: Storage, settings: Settings, delivery: ChatDelivery, team: TeamChat
    ) -> None:
        self.service = service
        self.storage = storage
        self.settings = settings
        self.delivery = delivery
        self.team = team
        # Telegram user id -> monotonic time of the last reply to someone without an invitation.
        self.strangers_answered: dict[int, float] = {}

    async def on_link(self, update: Update, context: Context) -> None:
        """/start with a link's token: bind the user to a city through their personal invitation."""
        message, user = update.message, update.effective_user
        assert message is not None and user is not None
        token = inputs.command_argument(message)
        assert token is not None  # routed here by a CommandHandler with arguments
        tr = get_translator(inputs.language_of(user, self.settings.regional_defaults))
        await self.redeem(update, context, token, tr)

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
            await self.delivery.say(
                context.bot, message.chat_id, refusal_text(result, tr, self.service.survey.contact_email)
            )
            if existing is not None:
                await self.delivery.deliver(context.bot, message.chat_id, (await self.service.begin(existing)).replies)
            return
        city = await self.storage.get_report(contact.report_id)
        if city is not None:  # also when opened again: a crash may have come between joining and this
            await self.service.prefill(contact, city=city.name, country=city.country, joined=city.joined)
        outcome = await self.service.begin(contact)
        await self.delivery.deliver(context.bot, message.chat_id, outcome.replies)
        if city is not None and result.outcome is Redeemed.JOINED:
            await self.team.tell(context, functools.partial(join_notice, result, city))

    async def answer_stranger(self, bot: Bot, chat_id: int, tr: Translator, user_id: int) -> None:
        """Tell someone without an invitation how to get one (unless they were told a moment ago)."""
        if self.may_answer_uninvited(user_id):
            await self.delivery.say(bot, chat_id, uninvited_text(tr, self.service.survey.contact_email))

    def may_answer_uninvited(self, user_id: int) -> bool:
        """Whether someone without an invitation may get a reply now (one per UNINVITED_QUIET seconds),
        so a stranger's flood costs one message, not one per message."""
        now = time.monotonic()
        last = self.strangers_answered.get(user_id)
        if last is not None and now - last < UNINVITED_QUIET:
            return False
        if len(self.strangers_answered) > 10_000:  # forget the quiet ones so memory stays bounded
            self.strangers_answered = {u: t for u, t in self.strangers_answered.items() if now - t < UNINVITED_QUIET}
        self.strangers_answered[user_id] = now
        return True


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
