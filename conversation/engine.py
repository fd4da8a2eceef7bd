"""The survey engine: one input in, the new state and what to show out.

Rules of this module:
- Pure: no telegram, no database, no asyncio, no clock reads (`now` is passed in).
- Every transition lives here, in `advance`; front ends only translate inputs and effects.
- Ordinary mistakes come back as `Rejected` effects, never as exceptions, and never
  change a stored answer.
- State is keyed by question ids. Answers to questions that stop applying (a branch
  flipped from yes to no) are kept; `applicable` decides what is required and exported.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence

from conversation import commands
from conversation import validation as v
from conversation.commands import Command
from conversation.i18n import LANGUAGES, Translator, current_language
from conversation.model import CHOICE_KINDS, Kind, Question, Survey
from conversation.state import (
    AllVisited,
    AnswerValue,
    Ask,
    ChoiceInput,
    ChooseLanguage,
    CommandInput,
    ConfirmSubmit,
    ContactInput,
    EditInput,
    EditSaved,
    Effect,
    Exempt,
    FileInput,
    FileTooLarge,
    Input,
    MissingRequired,
    Mode,
    Note,
    OfferMore,
    Progress,
    ProgressSummary,
    Reason,
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
    Step,
    StoreFile,
    Submitted,
    TextInput,
    TooLong,
    TooManyFiles,
    UnsupportedInput,
)

logger = logging.getLogger(__name__)

UPLOAD_DONE = "done"
_LIST_SPLIT = re.compile(r"[,;\n、，；]+")


# ---------------------------------------------------------------- queries


def is_answered(survey: Survey, report: Report, question: Question) -> bool:
    """Whether a question has a usable answer (files count for the upload question)."""
    if question.kind == Kind.FILE_UPLOAD:
        return bool(report.attachments) or report.answers.get(question.id) == UPLOAD_DONE
    value = report.answers.get(question.id)
    return value is not None and value not in ("", ())


def applies(survey: Survey, question: Question, answers: Mapping[str, object]) -> bool:
    """Whether a question applies given the answers so far (branches chain)."""
    cond = question.when
    if cond is None:
        return True
    target = survey.question(cond.question)
    if target is None or not applies(survey, target, answers):
        return False
    value = answers.get(target.id)
    if cond.answered is not None:
        return (value not in (None, "", ())) == cond.answered
    if isinstance(value, tuple):
        return cond.equals in value
    return value == cond.equals


def applicable(survey: Survey, report: Report) -> list[Question]:
    """Every question that applies to this report, in the form's order."""
    return [q for q in survey.questions if applies(survey, q, report.answers)]


def missing_required(survey: Survey, report: Report) -> list[Question]:
    """Applicable required questions without an answer."""
    return [q for q in applicable(survey, report) if q.required and not is_answered(survey, report, q)]


def unanswered_optional(survey: Survey, report: Report) -> list[Question]:
    """Applicable optional questions without an answer."""
    return [q for q in applicable(survey, report) if not q.required and not is_answered(survey, report, q)]


def progress(survey: Survey, report: Report, question_id: str | None) -> Progress:
    """Where a question sits among the applicable ones, and how far the report is."""
    qs = applicable(survey, report)
    ids = [q.id for q in qs]
    number = ids.index(question_id) + 1 if question_id in ids else 0
    section_number = 0
    if question_id is not None and survey.question(question_id) is not None:
        section_number = [s.id for s in survey.sections].index(survey.section_of(question_id).id) + 1
    return Progress(
        section_number=section_number,
        section_count=len(survey.sections),
        question_number=number,
        question_count=len(qs),
        answered=sum(1 for q in qs if is_answered(survey, report, q)),
        required_missing=sum(1 for q in qs if q.required and not is_answered(survey, report, q)),
    )


def exported_answers(survey: Survey, report: Report) -> dict[str, object]:
    """The answers that apply: kept-but-inapplicable branch answers are left out."""
    return {q.id: report.answers[q.id] for q in applicable(survey, report) if q.id in report.answers}


def prefill_answers(survey: Survey, *, city: str, country: str, joined: str | None) -> dict[str, str]:
    """The answers an invitation already knows, keyed by the questions marked `prefill`."""
    known = {"city": city, "country": country, "joined": joined}
    return {q.id: value for q in survey.questions if q.prefill and (value := known[q.prefill])}


def has_started(survey: Survey, report: Report) -> bool:
    """Whether a contact has answered anything beyond what the invitation pre-filled."""
    prefilled = {q.id for q in survey.questions if q.prefill}
    return bool(set(report.answers) - prefilled) or bool(report.attachments)


def is_exempt(survey: Survey, answers: Mapping[str, object]) -> bool:
    """The form's rule: cities that joined in the last cycle will be asked to report next time.

    They are not due now, but may still fill in and submit the report voluntarily.
    """
    rule = survey.exemption
    if rule is None:
        return False
    joined = answers.get(rule.question)
    return isinstance(joined, str) and joined >= rule.joined_from


# ---------------------------------------------------------------- entry points


def start(survey: Survey, report: Report, session: Session) -> Step:
    """What to show when a contact opens the bot (first time or resuming)."""
    if session.mode == Mode.INTRO or session.cursor is None:
        return Step(report, session.model_copy(update={"mode": Mode.INTRO}), (ShowIntro(started=False),))
    return Step(report, session, (ShowIntro(started=True), *_reask(survey, report, session)))


def current(survey: Survey, report: Report, session: Session) -> Step:
    """Show the contact where they are, changing nothing (e.g. after a redelivered update)."""
    return Step(report, session, _reask(survey, report, session))


def advance(
    survey: Survey,
    report: Report,
    session: Session,
    event: Input,
    *,
    now: dt.datetime,
    labels: Translator,
    accept_late: bool = True,
) -> Step:
    """Apply one input to the saved state (`accept_late`: may a report be submitted after the deadline)."""
    return _Turn(survey, report, session, now, labels, accept_late).handle(event)


def with_status(survey: Survey, report: Report) -> Report:
    """The report with its exempt status recomputed from the joining date."""
    if report.status == ReportStatus.SUBMITTED:
        return report
    status = ReportStatus.EXEMPT if is_exempt(survey, report.answers) else ReportStatus.OPEN
    return report if status == report.status else report.model_copy(update={"status": status})


def _reask(survey: Survey, report: Report, session: Session) -> tuple[Effect, ...]:
    """Show the contact where they are again."""
    if report.status == ReportStatus.SUBMITTED:
        return (Note.ALREADY_SUBMITTED,)
    if session.mode == Mode.DONE or session.cursor is None:
        return (_done_notice(survey, report),)
    if session.mode == Mode.ADDING_MORE:
        q = survey.question(session.cursor)
        assert q is not None
        return (_offer_more(q, report),)
    return (_ask(survey, report, session.cursor, session.picked),)


def _ask(survey: Survey, report: Report, qid: str, picked: tuple[str, ...] = (), new_section: bool = False) -> Ask:
    return Ask(qid, progress(survey, report, qid), report.answers.get(qid), picked, new_section)


def _offer_more(q: Question, report: Report) -> OfferMore:
    value = report.answers.get(q.id)
    return OfferMore(q.id, v.count_words(value) if isinstance(value, str) else 0, q.max_words)


def _done_notice(survey: Survey, report: Report) -> AllVisited:
    missing = missing_required(survey, report)
    return AllVisited(tuple(q.id for q in missing), len(unanswered_optional(survey, report)))


# ---------------------------------------------------------------- one turn


class _Turn:
    """One input's worth of transitions; holds the evolving state while it is built."""

    def __init__(
        self, survey: Survey, report: Report, session: Session, now: dt.datetime, labels: Translator, accept_late: bool
    ) -> None:
        self.accept_late = accept_late
        self.survey = survey
        self.report = report
        self.session = session
        self.now = now
        self.labels = labels
        self.effects: list[Effect] = []

    # -- plumbing

    def done(self) -> Step:
        return Step(self.report, self.session, tuple(self.effects))

    def emit(self, *effects: Effect) -> None:
        self.effects.extend(effects)

    def set_session(self, **changes: object) -> None:
        self.session = self.session.model_copy(update=changes)

    def set_answer(self, qid: str, value: AnswerValue | None) -> None:
        answers = dict(self.report.answers)
        if value is None:
            answers.pop(qid, None)
        else:
            answers[qid] = value
        before = self.report.status
        self.report = with_status(self.survey, self.report.model_copy(update={"answers": answers}))
        if self.report.status != before:
            joined_from = self.survey.exemption.joined_from if self.survey.exemption else ""
            self.emit(Exempt(joined_from) if self.report.status == ReportStatus.EXEMPT else Note.NOT_EXEMPT)
        if qid in self.session.skipped:
            self.set_session(skipped=tuple(s for s in self.session.skipped if s != qid))

    @property
    def current(self) -> Question | None:
        return self.survey.question(self.session.cursor) if self.session.cursor else None

    def goto(self, qid: str, *, remember: bool = True) -> None:
        """Make `qid` the current question and ask it."""
        history = self.session.history
        if remember and self.session.cursor and self.session.cursor != qid:
            history = (*history, self.session.cursor)[-100:]
        q = self.survey.question(qid)
        assert q is not None
        picked = self.report.answers.get(qid, ()) if q.kind == Kind.MULTI_CHOICE else ()
        old_section = self.survey.section_of(self.session.cursor).id if self.session.cursor else None
        self.set_session(
            mode=Mode.ASKING, cursor=qid, history=history, picked=picked if isinstance(picked, tuple) else ()
        )
        new_section = old_section != self.survey.section_of(qid).id
        self.emit(_ask(self.survey, self.report, qid, self.session.picked, new_section))

    def move_on(self) -> None:
        """Go to the next question that still needs an answer, or finish."""
        qs = applicable(self.survey, self.report)
        ids = [q.id for q in qs]
        start = ids.index(self.session.cursor) + 1 if self.session.cursor in ids else 0

        def waiting(q: Question) -> bool:
            return not is_answered(self.survey, self.report, q) and q.id not in self.session.skipped

        after = [q for q in qs[start:] if waiting(q)]
        before = [q for q in qs[:start] if waiting(q)]
        target = after[0] if after else (before[0] if before else None)
        if target is None:
            if self.session.cursor:
                self.set_session(history=(*self.session.history, self.session.cursor)[-100:])
            self.set_session(mode=Mode.DONE, cursor=None, picked=())
            self.emit(_done_notice(self.survey, self.report))
        else:
            self.goto(target.id)

    def reask(self) -> None:
        self.emit(*_reask(self.survey, self.report, self.session))

    def reject(self, reason: Reason, qid: str | None = None) -> None:
        self.emit(Rejected(reason, qid))

    @property
    def read_only(self) -> bool:
        return self.report.status == ReportStatus.SUBMITTED

    # -- dispatch

    def handle(self, event: Input) -> Step:
        if isinstance(event, CommandInput):
            self.command(event.name, event.arg)
        elif self.read_only and not isinstance(event, UnsupportedInput):
            self.reject(Refusal.READ_ONLY)
        elif isinstance(event, TextInput):
            self.text(event.text)
        elif isinstance(event, ChoiceInput):
            self.choice(event.question_id, event.choice_id)
        elif isinstance(event, EditInput):
            self.edit(event)
        elif isinstance(event, FileInput):
            self.file(event)
        elif isinstance(event, ContactInput):
            self.contact(event)
        else:
            self.reject(Refusal.UNSUPPORTED)
            self.reask()
        return self.done()

    # -- typed text

    def text(self, raw: str) -> None:
        self.leave_menu()
        mode = self.session.mode
        if mode == Mode.INTRO:
            self.move_on()
            return
        q = self.current
        if mode == Mode.DONE or q is None:
            self.reject(Refusal.NOT_EXPECTED_TEXT)
            self.reask()
            return
        if mode == Mode.ADDING_MORE:
            self.append_text(q, raw)
            return
        self.answer_text(q, raw)

    def answer_text(self, q: Question, raw: str) -> None:
        """Validate typed text as an answer to `q`; save it or say what is wrong."""
        if q.kind == Kind.FILE_UPLOAD:
            word = v.match_option(raw, {"done": ("done", self.labels.gettext("Done"))})
            if word == "done":
                self.finish_uploads(q)
            else:
                self.reject(Refusal.EXPECTED_FILE, q.id)
            return
        if q.kind == Kind.LONG_TEXT:
            text = self.long_text(q, v.clean_text(raw))
            if text is None:
                return
            self.set_answer(q.id, text)
            self.set_session(mode=Mode.ADDING_MORE)
            self.emit(OfferMore(q.id, v.count_words(text), q.max_words))
            return
        result = self.parse(q, raw)
        if isinstance(result, v.Rejection):
            self.reject(result, q.id)
            return
        self.set_answer(q.id, result)
        self.after_answer(q)

    def long_text(self, q: Question, text: str, *, combined: bool = False) -> str | None:
        """`text` if it is a usable long answer; otherwise say why (empty, over the word or character limit)."""
        if not text:
            self.reject(Refusal.EMPTY, q.id)
            return None
        words = v.count_words(text)
        if q.max_words is not None and words > q.max_words:
            self.reject(TooLong(words, q.max_words, combined=combined), q.id)
            return None
        cap = v.char_limit(q.max_words)
        if len(text) > cap:  # a few very long "words" (or no word limit at all) still have a size limit
            self.reject(TooLong(len(text), cap, characters=True, combined=combined), q.id)
            return None
        return text

    def parse(self, q: Question, raw: str) -> AnswerValue | v.Rejection:
        """Turn typed text into a stored value for a non-long-text question."""
        if not v.clean_text(raw):
            return Refusal.EMPTY
        match q.kind:
            case Kind.SHORT_TEXT:
                return v.normalize_short_text(raw)
            case Kind.URL:
                return v.normalize_url(raw)
            case Kind.EMAIL:
                return v.normalize_email(raw)
            case Kind.PHONE:
                return v.normalize_phone(raw)
            case Kind.PERSON_NAME:
                return v.normalize_person_name(raw)
            case Kind.MONTH_YEAR:
                parsed = v.parse_month_year(raw, today=self.now.date(), locale=self.session.language)
                return parsed if isinstance(parsed, v.Rejection) else v.format_month_value(*parsed)
            case Kind.YES_NO:
                yn = v.match_yes_no(raw, self.session.language)
                return yn if yn is not None else Refusal.UNKNOWN_CHOICE
            case Kind.MULTI_CHOICE:
                return self.parse_many(q, raw)
            case _:
                picked = v.match_option(raw, self.option_labels(q))
                return picked if picked is not None else Refusal.UNKNOWN_CHOICE

    def option_labels(self, q: Question) -> dict[str, Sequence[str]]:
        return {c.id: (c.id, c.label, self.labels.gettext(c.label)) for c in q.choices}

    def parse_many(self, q: Question, raw: str) -> tuple[str, ...] | v.Rejection:
        options = self.option_labels(q)
        picked: list[str] = []
        for part in _LIST_SPLIT.split(raw):
            if not part.strip():
                continue
            found = v.match_option(part, options)
            if found is None:
                return Refusal.UNKNOWN_CHOICE
            if found not in picked:
                picked.append(found)
        if not picked:
            return Refusal.EMPTY
        order = [c.id for c in q.choices]
        return tuple(sorted(picked, key=order.index))

    def append_text(self, q: Question, raw: str) -> None:
        """Add another message to a long answer; the limit counts the whole."""
        addition = v.clean_text(raw)
        if not addition:
            self.reject(Refusal.EMPTY, q.id)
            return
        existing = self.report.answers.get(q.id)
        combined = f"{existing}\n\n{addition}" if isinstance(existing, str) and existing else addition
        if self.long_text(q, combined, combined=True) is None:
            return
        self.set_answer(q.id, combined)
        self.emit(OfferMore(q.id, v.count_words(combined), q.max_words))

    def after_answer(self, q: Question) -> None:
        """Move on after an answer (an exempt city goes on too: it may report voluntarily)."""
        self.move_on()

    # -- buttons

    def choice(self, qid: str, choice_id: str) -> None:
        q = self.current
        if q is None or q.id != qid or self.session.mode != Mode.ASKING or q.kind not in CHOICE_KINDS:
            self.reject(Refusal.STALE_BUTTON)
            return
        valid = ("yes", "no") if q.kind == Kind.YES_NO else tuple(c.id for c in q.choices)
        if choice_id not in valid:
            self.reject(Refusal.STALE_BUTTON)
            return
        if q.kind == Kind.MULTI_CHOICE:
            picked = self.session.picked
            picked = tuple(p for p in picked if p != choice_id) if choice_id in picked else (*picked, choice_id)
            order = [c.id for c in q.choices]
            self.set_session(picked=tuple(sorted(picked, key=order.index)))
            self.emit(_ask(self.survey, self.report, q.id, self.session.picked))
            return
        self.set_answer(q.id, choice_id)
        self.after_answer(q)

    # -- edits of sent messages

    def edit(self, event: EditInput) -> None:
        q = self.survey.question(event.question_id)
        if q is None or q.kind == Kind.FILE_UPLOAD:
            self.reject(Refusal.EDIT_NOT_APPLICABLE)
            return
        if q.id == self.session.cursor and self.session.mode == Mode.ASKING:
            # The message that was refused (e.g. too long) was corrected: treat it as the answer.
            self.answer_text(q, event.text)
            return
        if q.kind == Kind.LONG_TEXT:
            text = v.clean_text(event.text)
            existing = self.report.answers.get(q.id)
            old = v.clean_text(event.previous_text or "")
            if isinstance(existing, str) and old and old in existing and old != existing:
                text = existing.replace(old, text, 1)
            checked = self.long_text(q, text)
            if checked is None:
                return
            value: AnswerValue = checked
        else:
            parsed = self.parse(q, event.text)
            if isinstance(parsed, v.Rejection):
                self.reject(parsed, q.id)
                return
            value = parsed
        self.set_answer(q.id, value)
        self.emit(EditSaved(q.id))

    # -- files and contacts

    def file(self, event: FileInput) -> None:
        limits = self.survey.uploads
        if self.survey.upload_question is None:
            self.reject(Refusal.FILES_NOT_ACCEPTED)
            return
        # Telegram's file_size is optional: an unknown size is checked after the download instead.
        if event.size is not None and event.size > limits.max_file_bytes:
            self.reject(FileTooLarge(event.size, limits.max_file_bytes, event.name))
            return
        if len(self.report.attachments) >= limits.max_files:
            self.reject(TooManyFiles(limits.max_files, tuple(a.name for a in self.report.attachments)))
            return
        self.emit(StoreFile(event))

    def finish_uploads(self, q: Question) -> None:
        self.set_answer(q.id, UPLOAD_DONE)
        self.move_on()

    def contact(self, event: ContactInput) -> None:
        q = self.current
        if q is None or q.kind != Kind.PHONE or self.session.mode != Mode.ASKING:
            self.reject(Refusal.UNEXPECTED_CONTACT)
            self.reask()
            return
        if not event.own:
            self.reject(Refusal.NOT_OWN_CONTACT, q.id)
            return
        phone = event.phone if event.phone.startswith("+") else f"+{event.phone}"
        result = v.normalize_phone(phone)
        if isinstance(result, v.Rejection):
            self.reject(result, q.id)
            return
        self.set_answer(q.id, result)
        self.after_answer(q)

    # -- commands and navigation buttons

    def command(self, name: str, arg: str | None) -> None:
        declared = commands.find(name)
        handler = self.handlers.get(declared) if declared is not None else None
        if declared is None or handler is None:
            self.reject(Refusal.UNKNOWN_COMMAND)
            self.reask()
            return
        if declared.writes and self.read_only:
            self.reject(Refusal.READ_ONLY)
            return
        handler(self, arg)

    def cmd_start(self, arg: str | None) -> None:
        if self.session.mode == Mode.INTRO:
            self.emit(ShowIntro(started=False))
        else:
            self.emit(ShowIntro(started=True))
            self.reask()

    def cmd_begin(self, arg: str | None) -> None:
        if self.session.mode == Mode.INTRO:
            self.move_on()
        else:
            self.reask()

    def cmd_help(self, arg: str | None) -> None:
        self.emit(Note.HELP)
        self.reask()

    def cmd_progress(self, arg: str | None) -> None:
        p = progress(self.survey, self.report, self.session.cursor)
        self.emit(ProgressSummary(p))

    def cmd_review(self, arg: str | None) -> None:
        self.emit(ShowReview())

    def cmd_files(self, arg: str | None) -> None:
        self.emit(ShowFiles())

    def cmd_language(self, arg: str | None) -> None:
        self.emit(ChooseLanguage())

    def cmd_set_language(self, arg: str | None) -> None:
        arg = current_language(arg) if arg else arg  # a button from before a language split
        if arg not in LANGUAGES:
            self.emit(ChooseLanguage())
            return
        self.set_session(language=arg)
        self.emit(Note.LANGUAGE_SET)
        if self.session.mode == Mode.INTRO:
            self.emit(ShowIntro(started=False))
        else:
            self.reask()

    def cmd_skip(self, arg: str | None) -> None:
        q = self.current
        if q is None or self.session.mode not in (Mode.ASKING, Mode.ADDING_MORE):
            self.reject(Refusal.NOTHING_TO_SKIP)
            return
        if self.session.mode == Mode.ADDING_MORE:
            self.move_on()
            return
        if q.required and not is_answered(self.survey, self.report, q):
            self.reject(Refusal.REQUIRED, q.id)
            return
        if not is_answered(self.survey, self.report, q):
            self.set_session(skipped=(*self.session.skipped, q.id))
        self.move_on()

    def cmd_keep(self, arg: str | None) -> None:
        q = self.current
        if q is None or not is_answered(self.survey, self.report, q):
            self.reject(Refusal.STALE_BUTTON)
            return
        self.move_on()

    def cmd_next(self, arg: str | None) -> None:
        """Finish the current step: a long answer, a multiple choice, or the uploads."""
        q = self.current
        mode = self.session.mode
        if q is not None and mode == Mode.ADDING_MORE:
            self.move_on()
        elif q is not None and mode == Mode.ASKING and q.kind == Kind.MULTI_CHOICE:
            if not self.session.picked:
                if q.required:
                    self.reject(Refusal.REQUIRED, q.id)
                    return
                self.cmd_skip(None)
                return
            self.set_answer(q.id, self.session.picked)
            self.after_answer(q)
        elif q is not None and mode == Mode.ASKING and q.kind == Kind.FILE_UPLOAD:
            self.finish_uploads(q)
        else:
            self.reject(Refusal.STALE_BUTTON)

    def cmd_more(self, arg: str | None) -> None:
        q = self.current
        if q is None or self.session.mode != Mode.ADDING_MORE:
            self.reject(Refusal.STALE_BUTTON)
            return
        self.emit(Note.SEND_MORE)

    def cmd_back(self, arg: str | None) -> None:
        history = self.session.history
        while history:
            previous, history = history[-1], history[:-1]
            q = self.survey.question(previous)
            if q is not None and applies(self.survey, q, self.report.answers):
                self.set_session(history=history, cursor=None)
                self.goto(previous, remember=False)
                return
        self.reject(Refusal.AT_START)
        self.reask()

    def cmd_edit(self, arg: str | None) -> None:
        if arg is None:
            self.set_session(mode=Mode.EDIT_MENU)
            self.emit(ShowEditMenu(None))
            return
        kind, _, ident = arg.partition(":")
        if kind == "s" and self.survey.section(ident) is not None:
            self.set_session(mode=Mode.EDIT_MENU)
            self.emit(ShowEditMenu(ident))
            return
        q = self.survey.question(ident) if kind == "q" else None
        if q is None:
            self.reject(Refusal.STALE_BUTTON)
            return
        if not applies(self.survey, q, self.report.answers):
            self.reject(Refusal.NOT_APPLICABLE, q.id)
            return
        self.goto(q.id)

    def leave_menu(self) -> None:
        """Close the edit menu or the submit confirmation, back to where the contact was."""
        if self.session.mode in (Mode.EDIT_MENU, Mode.CONFIRM_SUBMIT):
            if self.session.cursor is not None:
                self.set_session(mode=Mode.ASKING)
            else:
                self.set_session(mode=Mode.DONE if self.session.history else Mode.INTRO)

    def cmd_cancel(self, arg: str | None) -> None:
        self.leave_menu()
        if self.session.mode == Mode.INTRO:
            self.emit(ShowIntro(started=False))
        else:
            self.reask()

    def too_late(self) -> bool:
        """Whether the deadline has passed and late reports are refused."""
        if self.accept_late or self.now.date() <= self.survey.deadline:
            return False
        self.reject(Refusal.DEADLINE_PASSED)
        return True

    def cmd_submit(self, arg: str | None) -> None:
        if self.too_late():
            return
        missing = missing_required(self.survey, self.report)
        if missing:
            self.reject(MissingRequired(tuple(q.id for q in missing)))
            return
        self.set_session(mode=Mode.CONFIRM_SUBMIT)
        self.emit(ConfirmSubmit(tuple(q.id for q in unanswered_optional(self.survey, self.report))))

    def cmd_confirm_submit(self, arg: str | None) -> None:
        if self.session.mode != Mode.CONFIRM_SUBMIT:
            self.reject(Refusal.STALE_BUTTON)
            return
        if self.too_late():
            return
        if missing_required(self.survey, self.report):
            self.cmd_submit(None)
            return
        self.report = self.report.model_copy(update={"status": ReportStatus.SUBMITTED, "submitted_at": self.now})
        self.set_session(mode=Mode.DONE)
        self.emit(Submitted(self.now))

    def cmd_remove_file(self, arg: str | None) -> None:
        if not arg or not any(a.sha256.startswith(arg) for a in self.report.attachments):
            self.reject(Refusal.STALE_BUTTON)
            return
        found = next(a for a in self.report.attachments if a.sha256.startswith(arg))
        self.emit(RemoveFile(found.sha256))

    # The handler of every command the engine carries out, keyed by its declaration.
    handlers: Mapping[Command, Callable[[_Turn, str | None], None]] = {
        commands.START: cmd_start,
        commands.BEGIN: cmd_begin,
        commands.HELP: cmd_help,
        commands.PROGRESS: cmd_progress,
        commands.REVIEW: cmd_review,
        commands.FILES: cmd_files,
        commands.LANGUAGE: cmd_language,
        commands.SET_LANGUAGE: cmd_set_language,
        commands.SKIP: cmd_skip,
        commands.KEEP: cmd_keep,
        commands.NEXT: cmd_next,
        commands.MORE: cmd_more,
        commands.BACK: cmd_back,
        commands.EDIT: cmd_edit,
        commands.CANCEL: cmd_cancel,
        commands.SUBMIT: cmd_submit,
        commands.CONFIRM_SUBMIT: cmd_confirm_submit,
        commands.REMOVE_FILE: cmd_remove_file,
    }
