"""Value objects the engine consumes and produces: saved state, inputs and effects.

Rules of this module:
- Everything here is frozen; the engine returns new objects, never mutates.
- State is keyed by stable question ids; it serialises to JSON for storage.
- Inputs are transport-free: the Telegram and console front ends build them.
- Effects say *what* to show, not *how*; `render` turns them into text and buttons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum, StrEnum

from pydantic import BaseModel, ConfigDict, field_validator

from conversation.i18n import current_language

# An answer: free text / choice id / "YYYY-MM" / e-mail / E.164 phone as str;
# multiple choice as a tuple of choice ids; the upload question stores "done".
AnswerValue = str | tuple[str, ...]


class ReportStatus(StrEnum):
    """Where a city's report stands."""

    OPEN = "open"
    SUBMITTED = "submitted"
    EXEMPT = "exempt"


class Mode(StrEnum):
    """What a contact's next message means."""

    INTRO = "intro"  # welcome shown, waiting for the contact to begin
    ASKING = "asking"  # `cursor` is the question being answered
    ADDING_MORE = "adding_more"  # a text answer is saved; more text is appended to it
    EDIT_MENU = "edit_menu"  # choosing a section or question to change
    CONFIRM_SUBMIT = "confirm_submit"  # asked "submit with these gaps?"
    DONE = "done"  # every applicable question visited; waiting for review/submit


class Attachment(BaseModel):
    """A supporting file stored for a report."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    name: str
    mime_type: str | None
    size: int
    caption: str | None = None  # what the contact wrote with the file, kept as its description


class Report(BaseModel):
    """A city's report: shared by every contact of that city."""

    model_config = ConfigDict(frozen=True)

    answers: dict[str, AnswerValue] = {}
    status: ReportStatus = ReportStatus.OPEN
    attachments: tuple[Attachment, ...] = ()
    submitted_at: dt.datetime | None = None
    # Which stored state this was read from (the storage raises it on every change); the engine
    # carries it along unchanged, so a save can check the report is still what the step decided on.
    version: int = 0


class Session(BaseModel):
    """One contact's place in the questionnaire."""

    model_config = ConfigDict(frozen=True)

    language: str = "en"
    mode: Mode = Mode.INTRO
    cursor: str | None = None
    # Question ids visited, newest last, for /back.
    history: tuple[str, ...] = ()
    # The multi-choice selection being built before "Done" is pressed.
    picked: tuple[str, ...] = ()
    # Optional questions the contact chose to skip; not asked again on the way forward.
    skipped: tuple[str, ...] = ()

    @field_validator("language")
    @classmethod
    def _current_language(cls, value: str) -> str:
        # Sessions saved before "pt" was split into pt_BR and pt_PT used the Brazilian catalog.
        return current_language(value)


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class TextInput:
    """A typed message."""

    text: str


@dataclass(frozen=True)
class ChoiceInput:
    """A choice button pressed for a specific question."""

    question_id: str
    choice_id: str


@dataclass(frozen=True)
class CommandInput:
    """A command (/back, /skip …) or a navigation button; `arg` is optional."""

    name: str
    arg: str | None = None


@dataclass(frozen=True)
class FileInput:
    """A file the contact sent; its size is known before any download."""

    file_id: str
    name: str
    mime_type: str | None
    size: int | None
    caption: str | None = None


@dataclass(frozen=True)
class ContactInput:
    """A shared contact card; `own` is true when it is the sender's own number."""

    phone: str
    own: bool


@dataclass(frozen=True)
class EditInput:
    """The contact edited the message that answered `question_id`."""

    question_id: str
    text: str
    previous_text: str | None = None


@dataclass(frozen=True)
class UnsupportedInput:
    """Something the questionnaire cannot use (sticker, voice, location …)."""

    what: str


Input = TextInput | ChoiceInput | CommandInput | FileInput | ContactInput | EditInput | UnsupportedInput


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class Progress:
    """Where a question sits: "Section 3 of 10 · question 12 of 41"."""

    section_number: int
    section_count: int
    question_number: int
    question_count: int
    answered: int
    required_missing: int


@dataclass(frozen=True)
class Ask:
    """Show a question (with its current answer, if any)."""

    question_id: str
    progress: Progress
    current: AnswerValue | None = None
    picked: tuple[str, ...] = ()
    new_section: bool = False


# ------------------------------------------------- notices and refusals
# Each is a member of an enum (nothing to add) or its own small dataclass (with its details);
# `render` matches them exhaustively, so one it does not word is a mypy error.


class Note(Enum):
    """A notice with nothing to add."""

    NOT_EXEMPT = "not_exempt"  # the corrected joining date makes the city due in this cycle
    ALREADY_SUBMITTED = "already_submitted"
    HELP = "help"
    LANGUAGE_SET = "language_set"
    SEND_MORE = "send_more"  # the contact asked to add text to their answer


@dataclass(frozen=True)
class AllVisited:
    """Every applicable question has been through; what is still missing."""

    missing_required: tuple[str, ...]
    unanswered: int


@dataclass(frozen=True)
class ProgressSummary:
    """How far the report is (/progress)."""

    progress: Progress


@dataclass(frozen=True)
class Submitted:
    """The report was submitted at this moment."""

    at: dt.datetime


@dataclass(frozen=True)
class Exempt:
    """The joining date makes the city exempt this cycle (it joined in `joined_from`, "YYYY-MM", or later)."""

    joined_from: str


@dataclass(frozen=True)
class EditSaved:
    """An edited message changed the answer to this question."""

    question_id: str


Notice = Note | AllVisited | ProgressSummary | Submitted | Exempt | EditSaved


class Refusal(Enum):
    """Why an input was not accepted, when there is nothing to add."""

    EMPTY = "empty"
    BAD_MONTH = "bad_month"
    BAD_EMAIL = "bad_email"
    BAD_PHONE = "bad_phone"
    NOT_INTERNATIONAL = "not_international"  # a phone number without + and the country code
    BAD_URL = "bad_url"
    BAD_NAME = "bad_name"
    UNKNOWN_CHOICE = "unknown_choice"
    EXPECTED_FILE = "expected_file"
    STALE_BUTTON = "stale_button"
    READ_ONLY = "read_only"  # the report is submitted
    EDIT_NOT_APPLICABLE = "edit_not_applicable"
    FILES_NOT_ACCEPTED = "files_not_accepted"
    UNEXPECTED_CONTACT = "unexpected_contact"
    NOT_OWN_CONTACT = "not_own_contact"
    NOT_EXPECTED_TEXT = "not_expected_text"
    UNKNOWN_COMMAND = "unknown_command"
    NOTHING_TO_SKIP = "nothing_to_skip"
    REQUIRED = "required"  # a required question cannot be skipped
    AT_START = "at_start"  # nothing to go back to
    NOT_APPLICABLE = "not_applicable"  # the question does not apply given earlier answers
    DEADLINE_PASSED = "deadline_passed"
    UNSUPPORTED = "unsupported"  # a sticker, voice message, location …


@dataclass(frozen=True)
class TooLong:
    """A long answer over its limit: `count` words (or characters) where `limit` are allowed.

    `characters`: the character cap (see validation.char_limit) rather than the word limit.
    `combined`: the limit was passed by an addition to an answer already saved (which is kept).
    """

    count: int
    limit: int
    characters: bool = False
    combined: bool = False

    @property
    def excess(self) -> int:
        """How many words (or characters) too many."""
        return self.count - self.limit


@dataclass(frozen=True)
class TooManyChars:
    """A short answer over its character limit."""

    count: int
    limit: int


@dataclass(frozen=True)
class TooOld:
    """A month before the earliest year accepted."""

    earliest: int


@dataclass(frozen=True)
class FutureMonth:
    """A month after the current one ("YYYY-MM")."""

    latest: str


@dataclass(frozen=True)
class TooManyFiles:
    """The report already has `limit` files (named)."""

    limit: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class FileTooLarge:
    """A file of `size` bytes where at most `limit` are accepted."""

    size: int
    limit: int
    name: str


@dataclass(frozen=True)
class MissingRequired:
    """The report cannot be submitted: these required questions have no answer."""

    questions: tuple[str, ...]


Reason = Refusal | TooLong | TooManyChars | TooOld | FutureMonth | TooManyFiles | FileTooLarge | MissingRequired


@dataclass(frozen=True)
class Rejected:
    """The input was not accepted, and why; `question_id` is the question it was meant for."""

    reason: Reason
    question_id: str | None = None


@dataclass(frozen=True)
class OfferMore:
    """A text answer was saved; offer to add more or continue."""

    question_id: str
    words: int
    limit: int | None


@dataclass(frozen=True)
class ShowIntro:
    """The survey's welcome and introduction."""

    started: bool


@dataclass(frozen=True)
class ShowReview:
    """A summary of every answer by section."""


@dataclass(frozen=True)
class ShowEditMenu:
    """Pick a section (section_id None) or a question of one section."""

    section_id: str | None = None


@dataclass(frozen=True)
class ConfirmSubmit:
    """Ask to confirm submission; lists the optional questions left unanswered."""

    unanswered_optional: tuple[str, ...]


@dataclass(frozen=True)
class ShowFiles:
    """The attachments list, with a way to remove each."""


@dataclass(frozen=True)
class ChooseLanguage:
    """Offer one button per supported language."""


@dataclass(frozen=True)
class StoreFile:
    """The front end must download and store this file (size already checked)."""

    file: FileInput


@dataclass(frozen=True)
class RemoveFile:
    """The front end must remove the attachment with this hash."""

    sha256: str


Effect = (
    Ask
    | Note
    | AllVisited
    | ProgressSummary
    | Submitted
    | Exempt
    | EditSaved
    | Rejected
    | OfferMore
    | ShowIntro
    | ShowReview
    | ShowEditMenu
    | ConfirmSubmit
    | ShowFiles
    | ChooseLanguage
    | StoreFile
    | RemoveFile
)


@dataclass(frozen=True)
class Step:
    """The engine's answer to one input."""

    report: Report
    session: Session
    effects: tuple[Effect, ...]
