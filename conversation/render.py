"""Rendering: engine effects become transport-free replies (translated HTML text + buttons).

Rules of this module:
- Pure: a translator is passed in; nothing here knows Telegram or the console.
- Text is Telegram's HTML subset (<b>, <i>); everything the contact wrote is escaped.
- Every user-visible string goes through `_` / `ngettext` with named placeholders.
- A question's reply carries its question id so front ends can map messages to questions.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from babel import Locale

from conversation import callbacks, commands
from conversation.engine import applies, is_answered, progress
from conversation.i18n import LANGUAGES, Translator
from conversation.model import Heading, Kind, Question, Survey
from conversation.state import (
    AllVisited,
    AnswerValue,
    Ask,
    ChooseLanguage,
    ConfirmSubmit,
    EditSaved,
    Effect,
    Exempt,
    FileTooLarge,
    FutureMonth,
    MissingRequired,
    Note,
    Notice,
    OfferMore,
    Progress,
    ProgressSummary,
    Refusal,
    Rejected,
    RemoveFile,
    Report,
    ReportStatus,
    Session,
    ShowEditMenu,
    ShowFiles,
    ShowIntro,
    ShowReview,
    StoreFile,
    Submitted,
    TooLong,
    TooManyChars,
    TooManyFiles,
    TooOld,
)
from conversation.validation import parse_month_value

REVIEW_EXCERPT_WORDS = 40


@dataclass(frozen=True)
class Button:
    """One button: its label and the payload it sends back."""

    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    """One message to show: HTML text, inline buttons, and what it asks."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    question_id: str | None = None
    request_contact_label: str | None = None


def language_label(code: str) -> str:
    """A language named in itself: Français, Español, العربية …"""
    name = Locale.parse(code).display_name or code
    return name[:1].upper() + name[1:]


def esc(text: object) -> str:
    """Escape contact-provided text for Telegram HTML."""
    return html.escape(str(text), quote=False)


def format_size(tr: Translator, size: int) -> str:
    """A byte count for people: 10 MiB, 512 KiB."""
    _ = tr.t
    if size >= 1024 * 1024:
        return _("{size} MiB", size=tr.format_number(round(size / (1024 * 1024), 1)))
    if size >= 1024:
        return _("{size} KiB", size=tr.format_number(round(size / 1024)))
    return tr.n("{count} byte", "{count} bytes", size)


def format_progress(tr: Translator, p: Progress) -> str:
    """ "Section 3 of 10 · question 12 of 41"."""
    _ = tr.t
    return _(
        "Section {section} of {sections} · question {number} of {total}",
        section=p.section_number,
        sections=p.section_count,
        number=p.question_number,
        total=p.question_count,
    )


def progress_summary(tr: Translator, p: Progress) -> str:
    """ "12 of 41 questions answered. 2 required questions are missing." """
    text = tr.n(
        "{count} of {total} questions answered.",
        "{count} of {total} questions answered.",
        p.answered,
        total=p.question_count,
    )
    if p.required_missing:
        text += " " + tr.n(
            "{count} required question is missing.", "{count} required questions are missing.", p.required_missing
        )
    return text


def format_answer(survey: Survey, report: Report, q: Question, value: AnswerValue | None, tr: Translator) -> str:
    """An answer as the contact would read it (escaped HTML)."""
    _ = tr.t
    if q.kind == Kind.FILE_UPLOAD:
        names = [a.name for a in report.attachments]
        return esc(", ".join(names)) if names else _("no files")
    if value is None or value in ("", ()):
        return _("(not answered)")
    if q.kind == Kind.YES_NO:
        return _("Yes") if value == "yes" else _("No")
    if q.kind == Kind.MONTH_YEAR and isinstance(value, str) and (month := parse_month_value(value)) is not None:
        return esc(tr.format_month(*month))
    if q.choices:
        ids = value if isinstance(value, tuple) else (value,)
        labels = [tr.gettext(c.label) for i in ids if (c := q.choice(i)) is not None]
        return esc(", ".join(labels))
    return esc(value)


def excerpt(text: str, words: int = REVIEW_EXCERPT_WORDS) -> str:
    """The first words of a long answer."""
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]) + " …"


class Renderer:
    """Turns effects into replies for one survey."""

    def __init__(self, survey: Survey) -> None:
        self.survey = survey

    def render(self, effects: Sequence[Effect], report: Report, session: Session, tr: Translator) -> list[Reply]:
        """Replies for a sequence of effects (effects the front end acts on yield nothing)."""
        replies: list[Reply] = []
        for effect in effects:
            replies.extend(self.one(effect, report, session, tr))
        return replies

    def one(self, effect: Effect, report: Report, session: Session, tr: Translator) -> list[Reply]:
        """Replies for one effect."""
        match effect:
            case Ask():
                return self.ask(effect, report, tr)
            case OfferMore():
                return [self.offer_more(effect, tr)]
            case Rejected():
                return [self.rejected(effect, tr)]
            case Note() | AllVisited() | ProgressSummary() | Submitted() | Exempt() | EditSaved():
                return [self.notice(effect, tr)]
            case ShowIntro():
                return [self.intro(effect, report, tr)]
            case ShowReview():
                return [self.review(report, tr)]
            case ShowEditMenu():
                return [self.edit_menu(effect, report, tr)]
            case ConfirmSubmit():
                return [self.confirm_submit(effect, report, tr)]
            case ShowFiles():
                return [self.files(report, tr)]
            case ChooseLanguage():
                return [self.languages(tr)]
            case StoreFile() | RemoveFile():
                return []
            case _:
                assert_never(effect)

    # -- questions

    def question_text(self, q: Question, tr: Translator) -> str:
        """The question's own words, translated."""
        return tr.gettext(q.text)

    def ask(self, effect: Ask, report: Report, tr: Translator) -> list[Reply]:
        _ = tr.t
        q = self.survey.question(effect.question_id)
        assert q is not None
        section = self.survey.section_of(q.id)
        lines: list[str] = []
        if effect.new_section:
            if section.heading is not None:
                lines.extend(self.heading_lines(section.heading, tr))
            lines.append(f"<b>{esc(tr.gettext(section.title))}</b>")
            if section.intro:
                lines.append(esc(tr.gettext(section.intro)))
            lines.append("")
        lines.append(f"<i>{esc(format_progress(tr, effect.progress))}</i>")
        lines.append(f"<b>{esc(self.question_text(q, tr))}</b>")
        if q.help:
            lines.append(f"<i>{esc(tr.gettext(q.help))}</i>")
        lines.append(self.kind_hint(q, tr))
        if q.required:
            lines.append(_("This question is required."))
        else:
            lines.append(_("Optional: /skip to leave it for now."))
        if effect.current is not None and q.kind != Kind.MULTI_CHOICE:
            lines.append("")
            lines.append(
                _("Current answer: {answer}", answer=format_answer(self.survey, report, q, effect.current, tr))
            )
        buttons = list(self.answer_buttons(q, effect, report, tr))
        nav: list[Button] = [Button("⬅ " + _("Back"), callbacks.command("back"))]
        if effect.current is not None and q.kind not in (Kind.MULTI_CHOICE,):
            nav.append(Button(_("Keep"), callbacks.command("keep")))
        if not q.required:
            nav.append(Button(_("Skip"), callbacks.command("skip")))
        buttons.append(tuple(nav))
        contact = _("Share my phone number") if q.kind == Kind.PHONE else None
        return [Reply("\n".join(lines), tuple(buttons), question_id=q.id, request_contact_label=contact)]

    def heading_lines(self, heading: Heading, tr: Translator) -> list[str]:
        """A heading over several sections (the form's capitals) and its instruction."""
        lines = [f"<b>{esc(tr.gettext(heading.title).upper())}</b>"]
        if heading.intro:
            lines.append(esc(tr.gettext(heading.intro)))
        lines.append("")
        return lines

    def kind_hint(self, q: Question, tr: Translator) -> str:
        """How to answer this kind of question."""
        _ = tr.t
        limits = self.survey.uploads
        match q.kind:
            case Kind.LONG_TEXT if q.max_words:
                return tr.n(
                    "Maximum {count} word. You may send your answer in several messages.",
                    "Maximum {count} words. You may send your answer in several messages.",
                    q.max_words,
                )
            case Kind.LONG_TEXT:
                return _("You may send your answer in several messages.")
            case Kind.YES_NO:
                return _("Choose Yes or No.")
            case Kind.SINGLE_CHOICE | Kind.GENDER:
                return _("Choose one option, or type it.")
            case Kind.MULTI_CHOICE:
                return _("Choose all that apply, then press Done. You can also type them, separated by commas.")
            case Kind.MONTH_YEAR:
                return _("Month and year, for example 03/2019 or March 2019.")
            case Kind.EMAIL:
                return _("An e-mail address, for example name@city.org.")
            case Kind.PHONE:
                return _("A phone number in international form, for example +49 40 123456, or share your number.")
            case Kind.URL:
                return _("A web address, for example www.city.org.")
            case Kind.PERSON_NAME:
                return _("First name and surname.")
            case Kind.FILE_UPLOAD:
                return tr.n(
                    "Send up to {count} file (documents, photos, videos or audio), each at most {size}. "
                    "Press Done when finished.",
                    "Send up to {count} files (documents, photos, videos or audio), each at most {size}. "
                    "Press Done when finished.",
                    limits.max_files,
                    size=format_size(tr, limits.max_file_bytes),
                )
            case _:
                return _("Type your answer.")

    def answer_buttons(self, q: Question, effect: Ask, report: Report, tr: Translator) -> list[tuple[Button, ...]]:
        _ = tr.t
        if q.kind == Kind.YES_NO:
            return [(Button(_("Yes"), callbacks.choice(q.id, "yes")), Button(_("No"), callbacks.choice(q.id, "no")))]
        if q.kind in (Kind.SINGLE_CHOICE, Kind.GENDER):
            return [(Button(tr.gettext(c.label), callbacks.choice(q.id, c.id)),) for c in q.choices]
        if q.kind == Kind.MULTI_CHOICE:
            rows: list[tuple[Button, ...]] = [
                (
                    Button(
                        ("✅ " if c.id in effect.picked else "▫️ ") + tr.gettext(c.label), callbacks.choice(q.id, c.id)
                    ),
                )
                for c in q.choices
            ]
            rows.append((Button(_("Done"), callbacks.command("next")),))
            return rows
        if q.kind == Kind.FILE_UPLOAD:
            return [(Button(_("Done"), callbacks.command("next")),)]
        return []

    def offer_more(self, effect: OfferMore, tr: Translator) -> Reply:
        _ = tr.t
        if effect.limit:
            counted = tr.n(
                "Saved ({count} word of {limit}).",
                "Saved ({count} words of {limit}).",
                effect.words,
                limit=effect.limit,
            )
        else:
            counted = tr.n("Saved ({count} word).", "Saved ({count} words).", effect.words)
        text = counted + "\n" + _("Send more text to add to this answer, or continue to the next question.")
        buttons = (
            (
                Button(_("Add more"), callbacks.command("more")),
                Button(_("Next question") + " ➡", callbacks.command("next")),
            ),
        )
        return Reply(text, buttons)

    # -- mistakes

    def rejected(self, effect: Rejected, tr: Translator) -> Reply:
        _ = tr.t
        reason = effect.reason
        text: str
        match reason:
            case TooLong():
                if reason.characters:  # the character cap (see validation.char_limit)
                    text = tr.n(
                        "Your answer has {count} character; the limit is {limit}.",
                        "Your answer has {count} characters; the limit is {limit}.",
                        reason.count,
                        limit=reason.limit,
                    )
                    text += " " + tr.n(
                        "Please remove {count} character.", "Please remove {count} characters.", reason.excess
                    )
                else:
                    text = tr.n(
                        "Your answer has {count} word; the limit is {limit}.",
                        "Your answer has {count} words; the limit is {limit}.",
                        reason.count,
                        limit=reason.limit,
                    )
                    text += " " + tr.n("Please remove {count} word.", "Please remove {count} words.", reason.excess)
                if reason.combined:
                    text += " " + _("The part you sent earlier is kept; send a shorter addition, or continue.")
                else:
                    text += " " + _("It was not saved. Send a shorter version, or edit the message you sent.")
            case TooManyFiles():
                names = "\n".join(f"• {esc(n)}" for n in reason.names)
                text = tr.n(
                    "You have already sent {count} file, the maximum.",
                    "You have already sent {count} files, the maximum.",
                    reason.limit,
                )
                text += "\n" + names + "\n" + _("Use /files to remove one before sending another.")
            case FileTooLarge():
                text = _(
                    "This file is {size}; the limit is {limit}. For larger files, please write to {email}.",
                    size=format_size(tr, reason.size),
                    limit=format_size(tr, reason.limit),
                    email=self.survey.contact_email,
                )
            case MissingRequired():
                qs = [self.survey.question(i) for i in reason.questions]
                listed = "\n".join(f"• {esc(self.question_text(q, tr))}" for q in qs if q is not None)
                text = _("The report cannot be submitted yet. These required questions have no answer:") + "\n" + listed
                text += "\n" + _("Use /edit to answer them.")
            case TooManyChars():
                text = _("That answer is too long for this question. Please shorten it.")
            case TooOld():
                text = _("That date is too far in the past. Please check the year.")
            case FutureMonth():
                text = _("That date is in the future. Please give a month that has already passed.")
            case Refusal():
                text = self.refusal(reason, tr)
            case _:
                assert_never(reason)
        return Reply("⚠️ " + text)

    def refusal(self, refusal: Refusal, tr: Translator) -> str:
        """One-line explanations of ordinary mistakes."""
        _ = tr.t
        match refusal:
            case Refusal.EMPTY:
                return _("The answer is empty. Please type your answer.")
            case Refusal.BAD_MONTH:
                return _("I could not read that date. Please give the month and year, for example 03/2019.")
            case Refusal.BAD_EMAIL:
                return _("That does not look like an e-mail address. Please check it, for example name@city.org.")
            case Refusal.BAD_PHONE:
                return _("That phone number is not valid. Please check it.")
            case Refusal.NOT_INTERNATIONAL:
                return _("Please give the number in international form, starting with + and the country code.")
            case Refusal.BAD_URL:
                return _("That does not look like a web address. Please check it, for example www.city.org.")
            case Refusal.BAD_NAME:
                return _("Please type a name (letters, not a link or an e-mail address).")
            case Refusal.UNKNOWN_CHOICE:
                return _("That is not one of the options. Please press a button or type one of the options.")
            case Refusal.EXPECTED_FILE:
                return _("This question expects files. Send a file, press Done, or /skip.")
            case Refusal.STALE_BUTTON:
                return _("That button is no longer active.")
            case Refusal.READ_ONLY:
                return _(
                    "The report has been submitted and can no longer be changed. "
                    "Please contact the coordination team if something must be corrected."
                )
            case Refusal.EDIT_NOT_APPLICABLE:
                return _("That edit could not be applied to any answer.")
            case Refusal.FILES_NOT_ACCEPTED:
                return _("This questionnaire does not accept files.")
            case Refusal.UNEXPECTED_CONTACT:
                return _("A contact card is only needed for the phone question.")
            case Refusal.NOT_OWN_CONTACT:
                return _("This is someone else's contact card. Please type the number or share your own.")
            case Refusal.NOT_EXPECTED_TEXT:
                return _("No question is waiting for an answer right now.")
            case Refusal.UNKNOWN_COMMAND:
                return _("I do not know that command. /help lists what I understand.")
            case Refusal.NOTHING_TO_SKIP:
                return _("There is no question to skip right now.")
            case Refusal.REQUIRED:
                return _("This question is required and cannot be skipped.")
            case Refusal.AT_START:
                return _("There is no earlier question to go back to.")
            case Refusal.NOT_APPLICABLE:
                return _("That question does not apply given your earlier answers.")
            case Refusal.DEADLINE_PASSED:
                return _(
                    "The deadline has passed and reports can no longer be submitted here. "
                    "Please contact the coordination team."
                )
            case Refusal.UNSUPPORTED:
                return _("I cannot use this kind of message here. Please send text, a button choice or a file.")
            case _:
                assert_never(refusal)

    # -- notices

    def notice(self, notice: Notice, tr: Translator) -> Reply:
        _ = tr.t
        match notice:
            case AllVisited():
                text = _("You have been through every question.")
                if notice.missing_required:
                    text += " " + tr.n(
                        "{count} required question still has no answer.",
                        "{count} required questions still have no answer.",
                        len(notice.missing_required),
                    )
                else:
                    text += " " + _("Use /review to check your answers and /submit to send the report.")
                buttons = (
                    (
                        Button(_("Review"), callbacks.command("review")),
                        Button(_("Submit"), callbacks.command("submit")),
                    ),
                )
                return Reply(text, buttons)
            case ProgressSummary():
                return Reply(progress_summary(tr, notice.progress))
            case Submitted():
                return Reply(
                    "✅ "
                    + _("Thank you. Your report has been submitted to the UNESCO GNLC Coordination Team.")
                    + "\n"
                    + _("Use /review to read it again.")
                )
            case Exempt():
                return Reply(
                    _(
                        "Cities that joined the network in {month} or later will be asked to submit their report "
                        "next year. You may still complete and submit this report now if you wish. "
                        "If the joining date is wrong, use /edit to correct it.",
                        month=self.month_words(notice.joined_from, tr),
                    )
                )
            case EditSaved():
                q = self.survey.question(notice.question_id)
                name = esc(self.question_text(q, tr)) if q else ""
                return Reply("✏️ " + _("Your edited answer has been saved: {question}", question=name))
            case Note.NOT_EXEMPT:
                return Reply(_("With this joining date your city is due to report in this cycle."))
            case Note.ALREADY_SUBMITTED:
                return Reply(_("Your report has been submitted. Use /review to read it."))
            case Note.HELP:
                return Reply(self.help_text(tr))
            case Note.LANGUAGE_SET:
                return Reply(_("The language is now {language}.", language=tr.language_name()))
            case Note.SEND_MORE:
                return Reply(_("Please send the text to add."))
            case _:
                assert_never(notice)

    def month_words(self, value: str, tr: Translator) -> str:
        """ "2020-09" as "September 2020" in the contact's language."""
        month = parse_month_value(value)
        return value if month is None else tr.format_month(*month)

    def help_text(self, tr: Translator) -> str:
        """The list of commands."""
        _ = tr.t
        lines = [
            _("Answer each question by typing or by pressing a button. Your answers are saved as you go."),
            "",
            *(command.help_line(tr.gettext) for command in commands.contact_help()),
            "",
            _("Questions? Write to {email}.", email=self.survey.contact_email),
        ]
        return "\n".join(lines)

    # -- overviews

    def intro(self, effect: ShowIntro, report: Report, tr: Translator) -> Reply:
        _ = tr.t
        s = self.survey
        if effect.started:
            return Reply(_("Welcome back. Here is where you stopped."))
        deadline = tr.format_date(s.deadline)
        lines = [
            f"<b>{esc(tr.gettext(s.title))}</b>",
            f"<i>{esc(tr.gettext(s.reporting_period))}</i>",
            "<b>" + esc(_("Submission deadline: {date}", date=deadline)) + "</b>",
            "",
            # The introduction names the deadline as `{deadline}`, so a changed deadline reads right.
            esc(tr.gettext(s.intro).strip().replace("{deadline}", deadline)),
            "",
            _(
                "I will ask the questions one by one; every answer is saved as soon as you send it. "
                "/help lists the commands."
            ),
        ]
        city_q, country_q = self.survey.prefilled("city"), self.survey.prefilled("country")
        city = report.answers.get(city_q.id) if city_q else None
        country = report.answers.get(country_q.id) if country_q else None
        if city and country:
            lines.append("")
            lines.append(
                _(
                    "This report is for {city}, {country}. If that is wrong, use /edit.",
                    city=esc(city),
                    country=esc(country),
                )
            )
        return Reply("\n".join(lines), ((Button(_("Begin"), callbacks.command("begin")),),))

    def review(self, report: Report, tr: Translator) -> Reply:
        _ = tr.t
        heading = _("Your answers")
        lines = [f"<b>{esc(heading)}</b>"]
        for section in self.survey.sections:
            lines.append("")
            if section.heading is not None:
                lines.append(f"<b>{esc(tr.gettext(section.heading.title).upper())}</b>")
            lines.append(f"<b>{esc(tr.gettext(section.title))}</b>")
            for q in section.questions:
                if not applies(self.survey, q, report.answers):
                    continue
                value = report.answers.get(q.id)
                answered = is_answered(self.survey, report, q)
                mark = "✅" if answered else ("❗" if q.required else "▫️")
                shown = format_answer(self.survey, report, q, value, tr)
                if q.kind == Kind.LONG_TEXT and isinstance(value, str):
                    shown = esc(excerpt(value))
                lines.append(f"{mark} <i>{esc(self.question_text(q, tr))}</i>\n{shown}")
        p = progress(self.survey, report, None)
        lines.append("")
        lines.append(
            tr.n(
                "{count} of {total} questions answered.",
                "{count} of {total} questions answered.",
                p.answered,
                total=p.question_count,
            )
        )
        return Reply(
            "\n".join(lines),
            (
                (
                    Button(_("Change an answer"), callbacks.command("edit")),
                    Button(_("Submit"), callbacks.command("submit")),
                ),
            ),
        )

    def edit_menu(self, effect: ShowEditMenu, report: Report, tr: Translator) -> Reply:
        _ = tr.t
        if effect.section_id is None:
            # Section titles carry the form's own numbering ("1. Progress of …"); none is added here.
            rows = tuple(
                (Button(tr.gettext(s.title)[:60], callbacks.command("edit", f"s:{s.id}")),)
                for s in self.survey.sections
            )
            return Reply(
                _("Which section do you want to change?"), (*rows, (Button(_("Cancel"), callbacks.command("cancel")),))
            )
        section = self.survey.section(effect.section_id)
        assert section is not None
        rows_q: list[tuple[Button, ...]] = []
        for q in section.questions:
            if not applies(self.survey, q, report.answers):
                continue
            mark = "✅ " if is_answered(self.survey, report, q) else "▫️ "
            rows_q.append((Button((mark + self.question_text(q, tr))[:60], callbacks.command("edit", f"q:{q.id}")),))
        rows_q.append(
            (Button("⬅ " + _("Sections"), callbacks.command("edit")), Button(_("Cancel"), callbacks.command("cancel")))
        )
        return Reply(
            _("Which question do you want to change?") + f"\n<b>{esc(tr.gettext(section.title))}</b>", tuple(rows_q)
        )

    def confirm_submit(self, effect: ConfirmSubmit, report: Report, tr: Translator) -> Reply:
        _ = tr.t
        lines = [
            _("Submit the report to the UNESCO GNLC Coordination Team? After submission it can no longer be changed.")
        ]
        if report.status == ReportStatus.EXEMPT:
            lines.append(_("Your city will be asked to report next year; submitting now is voluntary."))
        if effect.unanswered_optional:
            lines.append("")
            lines.append(
                tr.n(
                    "{count} question is still unanswered. The form warns that an incomplete report "
                    "may lead to the city's membership not being renewed:",
                    "{count} questions are still unanswered. The form warns that an incomplete report "
                    "may lead to the city's membership not being renewed:",
                    len(effect.unanswered_optional),
                )
            )
            for qid in effect.unanswered_optional:
                q = self.survey.question(qid)
                if q is not None:
                    lines.append(f"• {esc(self.question_text(q, tr))}")
        buttons = (
            (Button(_("Submit now"), callbacks.command("confirm_submit")),),
            (
                Button(_("Answer more first"), callbacks.command("edit")),
                Button(_("Cancel"), callbacks.command("cancel")),
            ),
        )
        return Reply("\n".join(lines), buttons)

    def files(self, report: Report, tr: Translator) -> Reply:
        _ = tr.t
        limits = self.survey.uploads
        if not report.attachments:
            return Reply(
                tr.n(
                    "No files yet. You may send up to {count} file, each at most {size}.",
                    "No files yet. You may send up to {count} files, each at most {size}.",
                    limits.max_files,
                    size=format_size(tr, limits.max_file_bytes),
                )
            )
        lines = [tr.n("Your {count} file:", "Your {count} files:", len(report.attachments))]
        rows = []
        for i, a in enumerate(report.attachments, 1):
            described = f" — {esc(_shorten(a.caption, 100))}" if a.caption else ""
            lines.append(f"{i}. {esc(a.name)} ({esc(format_size(tr, a.size))}){described}")
            rows.append(
                (Button(_("Remove {name}", name=a.name)[:60], callbacks.command("remove_file", a.sha256[:16])),)
            )
        return Reply("\n".join(lines), tuple(rows))

    def languages(self, tr: Translator) -> Reply:
        """One button per language, each named in itself."""
        _ = tr.t
        rows = tuple((Button(language_label(code), callbacks.command("set_language", code)),) for code in LANGUAGES)
        return Reply(_("Choose your language:"), rows)


def _shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
