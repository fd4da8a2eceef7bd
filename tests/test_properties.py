"""Property tests (hypothesis) of the pure core: button payloads, the engine, word counts, dates.

Example counts are kept modest so the whole file runs in a few seconds; the strategies mix
arbitrary text with near-valid input so that both the accepting and the refusing paths run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conversation import callbacks, commands
from conversation import validation as v
from conversation.engine import UPLOAD_DONE, _Turn, advance
from conversation.i18n import LANGUAGES, get_translator
from conversation.loader import load_survey
from conversation.model import CHOICE_KINDS, Kind, Question
from conversation.render import Renderer, Reply
from conversation.state import (
    AllVisited,
    Ask,
    Attachment,
    ChoiceInput,
    ChooseLanguage,
    CommandInput,
    ConfirmSubmit,
    Effect,
    Mode,
    OfferMore,
    Progress,
    Rejected,
    Report,
    Session,
    ShowEditMenu,
    ShowFiles,
    ShowIntro,
    ShowReview,
    TextInput,
)

SURVEY = load_survey()
RENDERER = Renderer(SURVEY)
NOW = dt.datetime(2021, 6, 15, 9, tzinfo=dt.UTC)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A valid answer for every question: the report other questions' answers must survive.
VALID_BY_KIND: dict[Kind, str | tuple[str, ...]] = {
    Kind.SHORT_TEXT: "Head of Unit",
    Kind.LONG_TEXT: "Twelve learning centres opened.",
    Kind.URL: "https://www.hamburg.de",
    Kind.MONTH_YEAR: "2016-03",
    Kind.EMAIL: "anna@hamburg.de",
    Kind.PHONE: "+4940428231234",
    Kind.PERSON_NAME: "Anna Schmidt",
    Kind.FILE_UPLOAD: UPLOAD_DONE,
}


def valid_answer(q: Question) -> str | tuple[str, ...]:
    if q.kind == Kind.YES_NO:
        return "yes"
    if q.kind == Kind.MULTI_CHOICE:
        return (q.choices[0].id, q.choices[-1].id)
    if q.choices:
        return q.choices[0].id
    return VALID_BY_KIND[q.kind]


FULL_ANSWERS = {q.id: valid_answer(q) for q in SURVEY.questions}
QUESTION_IDS = [q.id for q in SURVEY.questions]

# Typed text that often *is* a valid answer somewhere, so the storing path is exercised too.
PLAUSIBLE = [
    "Hamburg",
    "www.hamburg.de",
    "https://example.org/path?q=1",
    "03/2019",
    "2019-03",
    "March 2019",
    "mars 2014",
    "2019年3月",
    "12/2099",
    "anna@hamburg.de",
    "+49 40 428231234",
    "0049 40 428231234",
    "Anna Schmidt",
    "yes",
    "No",
    "oui",
    "да",
    "1",
    "2",
    "Female",
    "Literacy, Health and Well-being",
    "esd; gced",
    "done",
    "Done",
    " ".join(["word"] * 260),
    " ".join(["word"] * 401),
    "<b>x</b> & *y*",
    "\u200b",
    "\u3000",
]
typed_text = st.one_of(
    st.text(max_size=120),
    st.sampled_from(PLAUSIBLE),
    st.builds(lambda a, b: a + b, st.sampled_from(PLAUSIBLE), st.text(max_size=8)),
    st.lists(st.sampled_from(["learning", "城市", "١٢٣", "well-being", ",", "\n", " ", "👍🏽"]), max_size=60).map(
        "".join
    ),
)


# ---------------------------------------------------------------- callbacks.decode


def encode(decoded: ChoiceInput | CommandInput) -> str:
    if isinstance(decoded, ChoiceInput):
        return callbacks.choice(decoded.question_id, decoded.choice_id)
    return callbacks.command(decoded.name, decoded.arg)


def sample_payloads() -> list[str]:
    """Real payloads, to mutate: every choice of the survey and every button command."""
    found = [
        callbacks.choice(q.id, c)
        for q in SURVEY.questions
        for c in (["yes", "no"] if q.kind == Kind.YES_NO else [x.id for x in q.choices])
    ]
    found += [callbacks.command(name) for name in sorted(commands.BUTTON_COMMANDS)]
    found += [callbacks.command("edit", f"q:{q}") for q in QUESTION_IDS[:5]]
    found += [callbacks.command("set_language", lang) for lang in LANGUAGES]
    return found


payloads = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=64).map(lambda b: b.decode("utf-8", "replace")),
    st.sampled_from(sample_payloads()),
    st.builds(lambda p, s: p + s, st.sampled_from(sample_payloads()), st.text(max_size=6)),
    st.builds(lambda s, p: s + p, st.text(max_size=6), st.sampled_from(sample_payloads())),
)


@FAST
@given(payloads)
@example("a:core_team:yes\n")  # `$` also matches before a final newline
@example("c:edit:q:city_name\n")
@example("c:" + "e" * 70)
def test_decode_never_raises_and_only_accepts_canonical_payloads(payload: str) -> None:
    decoded = callbacks.decode(payload)
    if decoded is None:
        return
    again = encode(decoded)  # raises ValueError over 64 bytes
    assert len(again.encode()) <= callbacks.MAX_BYTES
    assert callbacks.decode(again) == decoded
    # Only what the bot itself sends is accepted: anything else was forged or mangled.
    assert again == payload


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=200))
def test_decode_never_raises_on_bytes_that_are_not_text(raw: bytes) -> None:
    payload = raw.decode("utf-8", "surrogateescape")  # lone surrogates: not encodable as UTF-8
    decoded = callbacks.decode(payload)
    assert decoded is None or encode(decoded) == payload


def test_decode_of_nothing() -> None:
    assert callbacks.decode(None) is None
    assert callbacks.decode("") is None


def test_every_button_command_is_one_the_engine_handles() -> None:
    assert {c.name for c in _Turn.handlers} >= commands.BUTTON_COMMANDS


def test_the_engine_handles_exactly_the_commands_declared_for_it() -> None:
    declared = {c for c in commands.COMMANDS if c.handled_by is commands.HandledBy.ENGINE}
    assert set(_Turn.handlers) == declared
    assert all(commands.find(c.name) is c for c in commands.COMMANDS)


# ---------------------------------------------------------------- every rendered button


def buttons_of(replies: list[Reply]) -> Iterator[tuple[str, str]]:
    for reply in replies:
        for row in reply.buttons:
            for button in row:
                yield button.label, button.payload


def attachments(count: int) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(
            sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            name=f"{'very long file name ' * 5}{i}.pdf",
            mime_type="application/pdf",
            size=1000 * i,
        )
        for i in range(count)
    )


def every_reply(language: str) -> list[Reply]:
    """Everything the renderer shows that carries buttons, for the whole real survey."""
    tr = get_translator(language)
    empty = Report()
    full = Report(answers=FULL_ANSWERS, attachments=attachments(SURVEY.uploads.max_files))
    progress = Progress(1, len(SURVEY.sections), 1, len(SURVEY.questions), 0, 0)
    effects: list[Effect] = []
    for q in SURVEY.questions:
        picked = tuple(c.id for c in q.choices)
        effects.append(Ask(q.id, progress))
        effects.append(Ask(q.id, progress, FULL_ANSWERS[q.id], picked, new_section=True))
        effects.append(OfferMore(q.id, 3, q.max_words))
    effects += [ShowEditMenu(None), *(ShowEditMenu(s.id) for s in SURVEY.sections)]
    effects += [ShowFiles(), ChooseLanguage(), ShowReview(), ShowIntro(False), ShowIntro(True)]
    effects += [ConfirmSubmit(tuple(QUESTION_IDS)), AllVisited(missing_required=(), unanswered=0)]
    replies: list[Reply] = []
    for report in (empty, full):
        session = Session(language=language, mode=Mode.ASKING, cursor=QUESTION_IDS[0])
        replies += RENDERER.render(effects, report, session, tr)
    return replies


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_rendered_button_fits_and_decodes(language: str) -> None:
    seen: set[str] = set()
    for label, payload in buttons_of(every_reply(language)):
        assert len(payload.encode()) <= callbacks.MAX_BYTES, payload
        decoded = callbacks.decode(payload)
        assert decoded is not None, (label, payload)
        assert encode(decoded) == payload
        if isinstance(decoded, ChoiceInput):
            q = SURVEY.question(decoded.question_id)
            assert q is not None and q.kind in CHOICE_KINDS
        else:
            assert commands.BY_NAME[decoded.name] in _Turn.handlers
        seen.add(payload.split(":", 2)[0] + ":" + payload.split(":", 2)[1])
    # The walk above did reach the edit menu, the files, the languages and the choices.
    assert {"c:edit", "c:remove_file", "c:set_language", "c:begin", "c:next", "c:confirm_submit"} <= seen
    assert any(s.startswith("a:") for s in seen)


@FAST
@given(
    name=st.text(max_size=300),
    digest=st.binary(min_size=32, max_size=32),
    count=st.integers(min_value=1, max_value=SURVEY.uploads.max_files),
)
def test_file_buttons_fit_whatever_the_file_name(name: str, digest: bytes, count: int) -> None:
    files = tuple(
        Attachment(sha256=hashlib.sha256(digest + bytes([i])).hexdigest(), name=name, mime_type=None, size=i)
        for i in range(count)
    )
    replies = RENDERER.render([ShowFiles()], Report(attachments=files), Session(), get_translator("en"))
    for _label, payload in buttons_of(replies):
        assert len(payload.encode()) <= callbacks.MAX_BYTES
        assert callbacks.decode(payload) == CommandInput("remove_file", payload.rsplit(":", 1)[1])


# ---------------------------------------------------------------- the engine with typed text


@pytest.mark.parametrize("question_id", QUESTION_IDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=typed_text, full=st.booleans(), language=st.sampled_from(LANGUAGES))
def test_typed_text_at_every_question(question_id: str, raw: str, full: bool, language: str) -> None:
    q = SURVEY.question(question_id)
    assert q is not None
    answers = {k: val for k, val in FULL_ANSWERS.items() if full or k in ("city_name", "country")}
    report = Report(answers=answers)
    session = Session(language=language, mode=Mode.ASKING, cursor=question_id, history=("city_name",))
    tr = get_translator(language)

    step = advance(SURVEY, report, session, TextInput(raw), now=NOW, labels=tr)

    rejected = [e for e in step.effects if isinstance(e, Rejected)]
    after = step.report.answers
    # Other questions' answers never change.
    assert {k: val for k, val in after.items() if k != question_id} == {
        k: val for k, val in answers.items() if k != question_id
    }
    if rejected:
        assert after == answers, "a refused answer changed the report"
    else:
        assert question_id in after, f"neither stored nor refused: {step.effects}"
        value = after[question_id]
        if q.kind == Kind.MULTI_CHOICE:
            assert isinstance(value, tuple) and value
            assert set(value) <= {c.id for c in q.choices}
        else:
            assert isinstance(value, str) and value
        if q.kind == Kind.YES_NO:
            assert value in ("yes", "no")
        elif q.kind in (Kind.SINGLE_CHOICE, Kind.GENDER):
            assert value in {c.id for c in q.choices}
        elif q.kind == Kind.MONTH_YEAR:
            assert isinstance(value, str) and len(value) == 7 and value <= NOW.strftime("%Y-%m")
        elif q.kind == Kind.LONG_TEXT:
            assert isinstance(value, str)
            assert q.max_words is None or v.count_words(value) <= q.max_words
    # And whatever happened can be shown to the contact.
    RENDERER.render(step.effects, step.report, step.session, get_translator(step.session.language))


TYPED_VALID: dict[Kind, str] = {
    Kind.SHORT_TEXT: "Head of Unit",
    Kind.LONG_TEXT: "Twelve learning centres opened.",
    Kind.URL: "www.hamburg.de",
    Kind.MONTH_YEAR: "03/2016",
    Kind.EMAIL: "anna@hamburg.de",
    Kind.PHONE: "+49 40 428231234",
    Kind.PERSON_NAME: "Anna Schmidt",
    Kind.YES_NO: "yes",
    Kind.GENDER: "1",
    Kind.SINGLE_CHOICE: "1",
    Kind.MULTI_CHOICE: "1, 2",
    Kind.FILE_UPLOAD: "done",
}


@pytest.mark.parametrize("question_id", QUESTION_IDS)
def test_the_storing_side_of_the_property_is_reachable(question_id: str) -> None:
    """A typed valid answer is stored at every question (so the property above is not vacuous)."""
    q = SURVEY.question(question_id)
    assert q is not None
    session = Session(mode=Mode.ASKING, cursor=question_id)
    step = advance(SURVEY, Report(), session, TextInput(TYPED_VALID[q.kind]), now=NOW, labels=get_translator("en"))
    assert not [e for e in step.effects if isinstance(e, Rejected)]
    assert question_id in step.report.answers


# ---------------------------------------------------------------- word counts and dates

word_texts = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from("abc城市١٢٣.,'-\u2019\u0301\u200b\u00ad 3"),
    ),
    max_size=40,
)


@FAST
@given(st.lists(word_texts, max_size=6))
@example(["well-", "being"])
@example(["3.", "5"])
@example(["a", "\u0301b"])
def test_word_counts_add_up_over_spaces(texts: list[str]) -> None:
    assert v.count_words(" ".join(texts)) == sum(v.count_words(t) for t in texts)


month_texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda y, m, fmt: fmt.format(y=y, m=m),
        st.integers(min_value=0, max_value=9999),
        st.integers(min_value=0, max_value=13),
        st.sampled_from(["{m:02d}/{y}", "{y}-{m}", "{m}.{y}", "1/{m}/{y}", "{y}年{m}月", "{y} {m}", "{m} {y}"]),
    ),
    st.builds(
        lambda name, y: f"{name} {y}",
        st.sampled_from(["March", "mars", "marzo", "Dezember", "décembre", "декабрь", "ديسمبر", "Sept", "set"]),
        st.integers(min_value=1800, max_value=2200),
    ),
)


@FAST
@given(text=month_texts, today=st.dates(), locale=st.sampled_from([*LANGUAGES, "pt_BR", "xx", ""]))
def test_parse_month_year_never_returns_a_future_month(text: str, today: dt.date, locale: str) -> None:
    parsed = v.parse_month_year(text, today=today, locale=locale)
    if isinstance(parsed, v.Rejection):
        return
    year, month = parsed
    assert 1 <= month <= 12
    assert year >= 1900
    assert (year, month) <= (today.year, today.month)
    assert v.format_month_value(year, month) <= f"{today.year:04d}-{today.month:02d}"
