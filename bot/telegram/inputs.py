"""Telegram updates become engine inputs.

Rules of this module:
- The only place that knows which Telegram message kinds exist; the engine sees `Input`s.
- Anything the questionnaire cannot use becomes `UnsupportedInput` (a polite reply), never an error.
- A file's declared `file_size` is passed on so the engine can refuse it before any download.
"""

from __future__ import annotations

import logging

from telegram import Message

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


def message_input(message: Message, bot_username: str | None = None) -> Input:
    """The engine input for one incoming private message."""
    if message.text is not None:
        cmd = command_of(message.text, bot_username)
        if cmd is not None:
            name, arg = cmd
            return CommandInput(name, arg)
        return TextInput(message.text)
    if message.contact is not None:
        own = (
            message.contact.user_id is not None
            and message.from_user is not None
            and (message.contact.user_id == message.from_user.id)
        )
        return ContactInput(message.contact.phone_number, own)
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
    if message.audio is not None:
        a = message.audio
        name = a.file_name or f"audio-{a.file_unique_id}.mp3"
        return FileInput(a.file_id, name, a.mime_type, a.file_size, caption)
    return UnsupportedInput(_kind_of(message))


def _kind_of(message: Message) -> str:
    """A short name for a message kind we do not use (for logs and replies)."""
    for kind in ("sticker", "voice", "video_note", "location", "venue", "poll", "dice", "animation", "game", "story"):
        if getattr(message, kind, None):
            return kind
    return "other"
