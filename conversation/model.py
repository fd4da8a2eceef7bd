"""The questionnaire as data: pydantic models and their cross-reference checks.

Rules of this module:
- A survey is loaded from a data file (YAML); no Python code per question.
- Question ids are stable: storage and exports use them, never list positions.
- Every check that can name a question does so in its error message.
- Texts are English source strings; translations come from the gettext catalogs.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conversation.validation import is_month_value

ID_PATTERN = r"^[a-z][a-z0-9_]{0,29}$"  # 30 chars: two ids fit one 64-byte callback_data


class Kind(StrEnum):
    """What sort of answer a question takes."""

    LONG_TEXT = "long_text"
    SHORT_TEXT = "short_text"
    URL = "url"
    YES_NO = "yes_no"
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    MONTH_YEAR = "month_year"
    EMAIL = "email"
    PHONE = "phone"
    PERSON_NAME = "person_name"
    GENDER = "gender"
    FILE_UPLOAD = "file_upload"


CHOICE_KINDS = frozenset({Kind.YES_NO, Kind.SINGLE_CHOICE, Kind.MULTI_CHOICE, Kind.GENDER})
TEXT_KINDS = frozenset({Kind.LONG_TEXT, Kind.SHORT_TEXT})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Choice(_Frozen):
    """One option of a choice question; `id` is what is stored and exported."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    label: str


class Condition(_Frozen):
    """A question applies only when another question's answer matches.

    `equals` matches a single answer (yes/no, single choice) or membership in a
    multiple-choice answer; `answered: true` matches any non-empty answer.
    """

    question: str
    equals: str | None = None
    answered: bool | None = None

    @model_validator(mode="after")
    def _exactly_one_test(self) -> Condition:
        if (self.equals is None) == (self.answered is None):
            raise ValueError("a condition needs exactly one of 'equals' or 'answered'")
        return self


class Question(_Frozen):
    """One question of the form."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    kind: Kind
    text: str
    help: str | None = None
    max_words: int | None = None
    required: bool = False
    choices: tuple[Choice, ...] = ()
    when: Condition | None = None
    # Filled in from the invitation (the city's name, its country, its joining month).
    prefill: Literal["city", "country", "joined"] | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> Question:
        if self.max_words is not None:
            if self.kind not in TEXT_KINDS:
                raise ValueError(f"question {self.id!r}: max_words only applies to text questions")
            if not 1 <= self.max_words <= 10_000:
                raise ValueError(f"question {self.id!r}: bad word limit {self.max_words}")
        needs_choices = self.kind in (Kind.SINGLE_CHOICE, Kind.MULTI_CHOICE, Kind.GENDER)
        if needs_choices and len(self.choices) < 2:
            raise ValueError(f"question {self.id!r}: a {self.kind} question needs at least two choices")
        if not needs_choices and self.choices:
            raise ValueError(f"question {self.id!r}: a {self.kind} question takes no choices")
        if self.prefill == "joined" and self.kind != Kind.MONTH_YEAR:
            raise ValueError(f"question {self.id!r}: the joining month can only pre-fill a month_year question")
        if self.prefill in ("city", "country") and self.kind != Kind.SHORT_TEXT:
            raise ValueError(f"question {self.id!r}: a {self.prefill} can only pre-fill a short_text question")
        ids = [c.id for c in self.choices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"question {self.id!r}: duplicate choice id")
        return self

    def choice(self, choice_id: str) -> Choice | None:
        """The choice with this id, if any."""
        return next((c for c in self.choices if c.id == choice_id), None)


class Heading(_Frozen):
    """A heading of the form that stands over several sections, with its instruction."""

    title: str
    intro: str | None = None


class Section(_Frozen):
    """A titled group of questions, in the form's order.

    `heading` is set on the first section under a heading of the form (e.g. "Monitoring and
    evaluation of progress" before sections 1–6); it is shown before that section's title.
    """

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: str
    heading: Heading | None = None
    intro: str | None = None
    questions: tuple[Question, ...]


class UploadLimits(_Frozen):
    """The form's cap on supporting files."""

    max_files: Annotated[int, Field(ge=1, le=50)] = 5
    max_file_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024


class Exemption(_Frozen):
    """Cities that joined on or after `joined_from` are not due this cycle."""

    question: str
    joined_from: str

    @field_validator("joined_from")
    @classmethod
    def _month(cls, value: str) -> str:
        if not is_month_value(value):
            raise ValueError(f"exemption month {value!r} must be YYYY-MM")
        return value


class Survey(_Frozen):
    """The whole questionnaire."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    title: str
    reporting_period: str
    deadline: dt.date
    intro: str
    contact_email: str
    uploads: UploadLimits = UploadLimits()
    exemption: Exemption | None = None
    sections: tuple[Section, ...]

    @model_validator(mode="after")
    def _cross_references(self) -> Survey:
        seen: dict[str, Question] = {}
        for section in self.sections:
            for q in section.questions:
                if q.id in seen:
                    raise ValueError(f"duplicate question id {q.id!r}")
                if q.when is not None:
                    target = seen.get(q.when.question)
                    if target is None:
                        raise ValueError(
                            f"question {q.id!r}: branch refers to unknown or later question {q.when.question!r}"
                        )
                    if (
                        q.when.equals is not None
                        and target.kind != Kind.YES_NO
                        and target.choice(q.when.equals) is None
                    ):
                        raise ValueError(
                            f"question {q.id!r}: branch value {q.when.equals!r} is not a choice of {target.id!r}"
                        )
                    if q.when.equals is not None and target.kind == Kind.YES_NO and q.when.equals not in ("yes", "no"):
                        raise ValueError(f"question {q.id!r}: a yes/no branch must test 'yes' or 'no'")
                seen[q.id] = q
        section_ids = [s.id for s in self.sections]
        if len(set(section_ids)) != len(section_ids):
            raise ValueError("duplicate section id")
        if self.exemption is not None:
            target = seen.get(self.exemption.question)
            if target is None or target.kind != Kind.MONTH_YEAR:
                raise ValueError(
                    f"exemption refers to {self.exemption.question!r}, which is not a month-and-year question"
                )
        sources = [q.prefill for q in seen.values() if q.prefill is not None]
        if len(set(sources)) != len(sources):
            raise ValueError("each invitation field may pre-fill only one question")
        uploads = [q.id for q in seen.values() if q.kind == Kind.FILE_UPLOAD]
        if len(uploads) > 1:
            raise ValueError(f"question {uploads[1]!r}: only one file-upload question is supported")
        return self

    # Look-ups used on every answer and every exported report: computed once (the survey is frozen).
    @cached_property
    def questions(self) -> tuple[Question, ...]:
        """Every question, in the form's order."""
        return tuple(q for s in self.sections for q in s.questions)

    @cached_property
    def question_index(self) -> dict[str, tuple[Question, Section]]:
        """Each question, and its section, by id."""
        return {q.id: (q, s) for s in self.sections for q in s.questions}

    def question(self, question_id: str) -> Question | None:
        """The question with this id, if any."""
        found = self.question_index.get(question_id)
        return found[0] if found else None

    def section_of(self, question_id: str) -> Section:
        """The section holding this question."""
        return self.question_index[question_id][1]

    def section(self, section_id: str) -> Section | None:
        """The section with this id, if any."""
        return next((s for s in self.sections if s.id == section_id), None)

    def prefilled(self, source: str) -> Question | None:
        """The question the invitation's `source` ("city", "country", "joined") fills in."""
        return next((q for q in self.questions if q.prefill == source), None)

    @property
    def upload_question(self) -> Question | None:
        """The file-upload question, if the form has one."""
        return next((q for q in self.questions if q.kind == Kind.FILE_UPLOAD), None)
