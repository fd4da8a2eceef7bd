"""Telegram updates become engine inputs.

Rules of this module:
- The only place that knows which Telegram message kinds exist; the engine sees `Input`s. The
  handlers route each kind here with python-telegram-bot's filters (`FILES` for files).
- Anything the questionnaire cannot use becomes `UnsupportedInput` (a polite reply), never an error.
- A file's declared `file_size` is passed on so the engine can refuse it before any download.
"""

from __future__ import annotations

import logging

from telegram import Message, User
from telegram.ext import filters

from conversation.i18n import pick_language
from conversation.state import (
    CommandInput,
    ContactInput,
    FileInput,
    Input,
    TextInput,
    UnsupportedInput,
)
from conversation.validation import clean_text

logger = logging.getLogger(__name__)


OTHER_BOT = "other_bot"  # a command addressed to another bot: answered as an unknown command


def language_of(user: User | None, regional_defaults: dict[str, str] | None = None) -> str:
    """The language a Telegram user's `language_code` selects, with the team's regional defaults."""
    return pick_language(user.language_code if user else None, regional_defaults)


def command_of(text: str, bot_username: str | None) -> tuple[str, str | None] | None:
    """ "/skip", "/edit@gnlc_bot q" → ("skip", None), ("edit", "q"); None for ordinary text."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    name, _, target = head.partition("@")
    name = name.lower()
    if not name or not name.replace("_", "").isalnum():
        return None
    if target and bot_username and target.lower() != bot_username.lower():
        return OTHER_BOT, None  # never stored as an answer
    return name, (rest.strip() or None)


def command_argument(message: Message) -> str | None:
    """The text after a command routed by a `CommandHandler` ("/invite Lyon | France" → "Lyon | France"),
    None if there is none. The command is the `bot_command` entity at offset 0 (ASCII, so its UTF-16
    length is its length here)."""
    command = message.entities[0]
    return (message.text or "")[command.length :].strip() or None


def text_input(text: str, bot_username: str | None = None) -> Input:
    """A text message: a command (`/skip`, `/edit q`, an unknown one) or an answer."""
    cmd = command_of(text, bot_username)
    if cmd is not None:
        name, arg = cmd
        return CommandInput(name, arg)
    return TextInput(text)


def contact_input(message: Message) -> ContactInput:
    """A shared phone number, and whether it is the sender's own."""
    assert message.contact is not None
    own = (
        message.contact.user_id is not None
        and message.from_user is not None
        and (message.contact.user_id == message.from_user.id)
    )
    return ContactInput(message.contact.phone_number, own)


def file_input(message: Message) -> FileInput:
    """A document, photo, video or audio file (see `FILES`), with its caption."""
    caption = clean_text(message.caption or "") or None
    if message.document is not None:
        d = message.document
        name = d.file_name or f"document-{d.file_unique_id}"
        return FileInput(d.file_id, name, d.mime_type, d.file_size, caption)
    if message.photo:
        p = message.photo[-1]  # the largest size Telegram offers
        return FileInput(p.file_id, f"photo-{p.file_unique_id}.jpg", "image/jpeg", p.file_size, caption)
    if message.video is not None:
        vid = message.video
        name = vid.file_name or f"video-{vid.file_unique_id}.mp4"
        return FileInput(vid.file_id, name, vid.mime_type, vid.file_size, caption)
    assert message.audio is not None
    a = message.audio
    name = a.file_name or f"audio-{a.file_unique_id}.mp3"
    return FileInput(a.file_id, name, a.mime_type, a.file_size, caption)


class _Text(filters.MessageFilter):
    """Messages with a text, even an empty one (`filters.TEXT` skips those): Telegram sends none, but
    a broken or forged update may, and it is an (empty) answer, refused politely by the engine."""

    def filter(self, message: Message) -> bool:
        return message.text is not None


# The messages `text_input` reads.
TEXT = _Text(name="inputs.TEXT")
# The messages `file_input` reads.
FILES = filters.Document.ALL | filters.PHOTO | filters.VIDEO | filters.AUDIO


def unsupported_input(message: Message) -> UnsupportedInput:
    """Any other message: the questionnaire cannot use it (a polite reply)."""
    return UnsupportedInput(_kind_of(message))


def _kind_of(message: Message) -> str:
    """A short name for a message kind we do not use (for logs and replies)."""
    for kind in ("sticker", "voice", "video_note", "location", "venue", "poll", "dice", "animation", "game", "story"):
        if getattr(message, kind, None):
            return kind
    return "other"
