"""Button payloads: what a pressed button means, encoded in at most 64 bytes.

Rules of this module:
- Telegram's callback_data is client input: `decode` validates everything and returns
  None for anything forged, malformed or unknown, never raises.
- Payloads carry stable ids (question, choice, section, command), never positions.
- A button may carry only the commands `conversation.commands` declares as buttons.
"""

from __future__ import annotations

import re

from conversation.commands import BUTTON_COMMANDS
from conversation.state import ChoiceInput, CommandInput

MAX_BYTES = 64
_ID = r"[a-z][a-z0-9_]{0,29}"
_CHOICE_RE = re.compile(rf"^a:({_ID}):({_ID})$")
_COMMAND_RE = re.compile(r"^c:([a-z_]{1,20})(?::([A-Za-z0-9_:\-]{1,40}))?$")


def choice(question_id: str, choice_id: str) -> str:
    """The payload of a choice button."""
    return _checked(f"a:{question_id}:{choice_id}")


def command(name: str, arg: str | None = None) -> str:
    """The payload of a navigation button."""
    return _checked(f"c:{name}" if arg is None else f"c:{name}:{arg}")


def _checked(payload: str) -> str:
    if len(payload.encode()) > MAX_BYTES:
        raise ValueError(f"callback payload over {MAX_BYTES} bytes: {payload!r}")
    return payload


def decode(payload: str | None) -> ChoiceInput | CommandInput | None:
    """The input a payload stands for, or None when it is not one of ours."""
    if not payload or len(payload.encode("utf-8", "replace")) > MAX_BYTES:
        return None
    if m := _CHOICE_RE.fullmatch(payload):
        return ChoiceInput(m.group(1), m.group(2))
    if (m := _COMMAND_RE.fullmatch(payload)) and m.group(1) in BUTTON_COMMANDS:
        return CommandInput(m.group(1), m.group(2))
    return None
