"""Every command, declared once: who may use it, who handles it, whether it changes the report.

Rules of this module:
- A command is declared here and nowhere else. The engine's handler table and its read-only check,
  the button payloads `callbacks` accepts, the Telegram command menus, /help, the console and the
  coordination team's chat commands all derive from `COMMANDS`.
- Texts are English msgids marked with `N_` (extracted into the catalogs); they are translated
  where they are shown.
- Pure data: nothing here knows Telegram, the console or the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum


def N_(message: str) -> str:  # gettext's conventional name for "marked for extraction only"
    """Mark a msgid for extraction; it is translated where it is shown."""
    return message


class HandledBy(Enum):
    """Who carries a command out."""

    ENGINE = "engine"  # conversation.engine: a step of the questionnaire
    CONTACT_TOOLS = "contact tools"  # the bot (both front ends): the contact's own settings and data
    TEAM = "team"  # the bot, for the coordination team (ADMIN_IDS) in Telegram only


@dataclass(frozen=True)
class Command:
    """One command.

    Attributes:
        name: What is typed after the slash, and what a button payload carries.
        handled_by: Who carries it out (and so who may use it: `TEAM` commands only the team).
        writes: It changes the report, so it is refused once the report is submitted.
        button: A button may send it (its callback payload is accepted).
        typed: People type it: it is shown in the command menu.
        description: What it does (a msgid), for the menu and /help.
        in_help: Listed in /help (contact commands) or the team's welcome (team commands).
        arguments: The description starts with the arguments ("City — …"), so no dash is put before it.
    """

    name: str
    handled_by: HandledBy = HandledBy.ENGINE
    writes: bool = False
    button: bool = False
    typed: bool = False
    description: str | None = None
    in_help: bool = False
    arguments: bool = False

    def help_line(self, gettext: Callable[[str], str]) -> str:
        """ "/back — go back to the previous question", its description translated by `gettext`."""
        text = gettext(self.description) if self.description else ""
        return f"/{self.name} {text}" if self.arguments else f"/{self.name} — {text}"


_E, _C, _T = HandledBy.ENGINE, HandledBy.CONTACT_TOOLS, HandledBy.TEAM

# Contact commands in the order of the menu and of /help.
START = Command("start", typed=True, description=N_("begin or continue the report"))
HELP = Command("help", button=True, typed=True, description=N_("how to use this bot"))
BACK = Command(
    "back", writes=True, button=True, typed=True, description=N_("go back to the previous question"), in_help=True
)
SKIP = Command(
    "skip", writes=True, button=True, typed=True, description=N_("leave an optional question for now"), in_help=True
)
EDIT = Command("edit", writes=True, button=True, typed=True, description=N_("change any answer"), in_help=True)
REVIEW = Command("review", button=True, typed=True, description=N_("see all your answers"), in_help=True)
PROGRESS = Command("progress", typed=True, description=N_("how far you are"), in_help=True)
FILES = Command("files", button=True, typed=True, description=N_("your supporting files"), in_help=True)
SUBMIT = Command(
    "submit", writes=True, button=True, typed=True, description=N_("send the finished report"), in_help=True
)
LANGUAGE = Command("language", typed=True, description=N_("change the language"), in_help=True)
REMINDERS = Command("reminders", _C, typed=True, description=N_("pause or resume deadline reminders"))
COLLEAGUE = Command("colleague", _C, typed=True, description=N_("invite a colleague of your city"), in_help=True)
MYDATA = Command("mydata", _C, typed=True, description=N_("what is stored about you"), in_help=True)

# Sent by buttons (typing them works too, but no menu shows them).
BEGIN = Command("begin", button=True)
KEEP = Command("keep", writes=True, button=True)
NEXT = Command("next", writes=True, button=True)
MORE = Command("more", writes=True, button=True)
CANCEL = Command("cancel", button=True)
CONFIRM_SUBMIT = Command("confirm_submit", writes=True, button=True)
REMOVE_FILE = Command("remove_file", writes=True, button=True)
SET_LANGUAGE = Command("set_language", button=True)

# The coordination team's chat commands, in the order of their welcome message.
INVITE = Command(
    "invite",
    _T,
    typed=True,
    description=N_("City | Country | YYYY-MM — create a personal invitation link"),
    in_help=True,
    arguments=True,
)
STATUS = Command("status", _T, typed=True, description=N_("progress of every city"), in_help=True)
EXPORT = Command("export", _T, typed=True, description=N_("all reports as a spreadsheet"), in_help=True)
REOPEN = Command(
    "reopen",
    _T,
    typed=True,
    description=N_("City — allow a submitted report to be changed again"),
    in_help=True,
    arguments=True,
)
CONTACTS = Command(
    "contacts",
    _T,
    typed=True,
    description=N_("[City] — who is in each city, with the links still open"),
    in_help=True,
    arguments=True,
)

COMMANDS: tuple[Command, ...] = (
    START,
    HELP,
    REVIEW,
    EDIT,
    BACK,
    SKIP,
    PROGRESS,
    FILES,
    SUBMIT,
    LANGUAGE,
    REMINDERS,
    COLLEAGUE,
    MYDATA,
    BEGIN,
    KEEP,
    NEXT,
    MORE,
    CANCEL,
    CONFIRM_SUBMIT,
    REMOVE_FILE,
    SET_LANGUAGE,
    INVITE,
    STATUS,
    EXPORT,
    REOPEN,
    CONTACTS,
)

BY_NAME: Mapping[str, Command] = {c.name: c for c in COMMANDS}
assert len(BY_NAME) == len(COMMANDS), "a command is declared twice"

#: What a button payload may carry; anything else in a payload is forged.
BUTTON_COMMANDS = frozenset(c.name for c in COMMANDS if c.button)
#: The contact's own settings and data, handled by the bot in both front ends.
CONTACT_TOOLS = frozenset(c.name for c in COMMANDS if c.handled_by is _C)
#: The coordination team's chat commands.
TEAM_COMMANDS = frozenset(c.name for c in COMMANDS if c.handled_by is _T)


def find(name: str) -> Command | None:
    """The command with this name, or None."""
    return BY_NAME.get(name)


def contact_menu() -> tuple[Command, ...]:
    """The commands a contact types, in menu order (Telegram's command menu)."""
    return tuple(c for c in COMMANDS if c.typed and c.handled_by is not _T)


def contact_help() -> tuple[Command, ...]:
    """The commands /help lists."""
    return tuple(c for c in COMMANDS if c.in_help and c.handled_by is not _T)


def team_help() -> tuple[Command, ...]:
    """The commands the team's welcome lists."""
    return tuple(c for c in COMMANDS if c.in_help and c.handled_by is _T)
