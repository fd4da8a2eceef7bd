"""No log line, at any level, carries an answer, a token, a phone number or an e-mail address.

Rules of this module:
- One filter on every handler of the root logger sees every record, ours and the libraries'.
- Libraries' records (python-telegram-bot, httpx, httpcore, tornado, apscheduler) keep only their
  plain arguments: numbers, and short strings without spaces (endpoints, URLs, ids). Objects and
  free text become a summary: PTB at DEBUG logs every request's parameters and every update,
  which hold what contacts typed.
- Then, on every formatted line and traceback: the bot token and the webhook secret are replaced
  wherever they appear (httpx and PTB write the token inside URLs), and so is anything shaped like
  a bot token, an invitation token, an e-mail address or an international phone number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.settings import Settings

LIBRARIES = ("telegram", "httpx", "httpcore", "tornado", "apscheduler", "aiosqlite", "asyncio")
_PLAIN = re.compile(r"[\w./:@+=?&%-]{0,200}")
_PATTERNS = (
    (re.compile(r"\d{3,}:[A-Za-z0-9_-]{16,}"), "<bot-token>"),
    (re.compile(r"(start[= ])[A-Za-z0-9_-]{43}\b"), r"\1<invitation-token>"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "<e-mail>"),
    (re.compile(r"\+\d[\d\s().-]{6,}\d"), "<phone>"),
)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with the given secrets and anything token-, e-mail- or phone-shaped replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _summary(value: object) -> object:
    """A library's log argument reduced to what carries no personal data."""
    if value is None or isinstance(value, bool | int | float | type):
        return value
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) else f"<text, {len(value)} characters>"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"  # messages are redacted as text below
    if isinstance(value, Mapping):
        return f"<{', '.join(sorted(map(str, value)))}>"
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, int) for v in value):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return f"<{len(value)} items>"
    update_id = getattr(value, "update_id", None)
    if isinstance(update_id, int):
        return f"<update {update_id}>"
    text = str(value)
    if type(value).__module__.startswith("httpx") and _PLAIN.fullmatch(text):
        return text  # a URL (its token is replaced below)
    return f"<{type(value).__name__}>"


class Redactor(logging.Filter):
    """Rewrites each record so that it carries no secret and no personal data (see module rules)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        if getattr(record, "_redacted", False):
            return True
        args: Any = record.args
        if record.name.startswith(LIBRARIES) and args:
            if isinstance(args, Mapping):
                record.args = {k: _summary(v) for k, v in args.items()}
            else:
                record.args = tuple(_summary(a) for a in args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"<unformattable log message from {record.name}>"
        record.msg = redact_text(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, self.secrets)
        record._redacted = True
        return True


def install_redaction(root: logging.Logger, settings: Settings) -> Redactor:
    """Put one Redactor on every handler of `root` (call after logging is configured)."""
    secrets = [
        secret.get_secret_value()
        for secret in (settings.bot_token, settings.webhook_secret)
        if secret is not None and secret.get_secret_value()
    ]
    redactor = Redactor(secrets)
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
