"""Engine unit tests: the pure state machine, without storage or transport."""

from __future__ import annotations

import datetime as dt

import pytest

from conversation import engine
from conversation.i18n import get_translator
from conversation.loader import load_survey
from conversation.state import (
    Ask,
    ChoiceInput,
    CommandInput,
    EditInput,
    EditSaved,
    FileInput,
    FileTooLarge,
    MissingRequired,
    Mode,
    OfferMore,
    Refusal,
    Rejected,
    Report,
    ReportStatus,
    Session,
    StoreFile,
    TextInput,
    TooLong,
)

SURVEY = load_survey()
NOW = dt.datetime(2021, 11, 1, 12, tzinfo=dt.UTC)
BASIC = {
    "city_name": "Hamburg",
    "country": "Germany",
    "city_website": "https://www.hamburg.de",
    "joined_gnlc": "2016-03",
    "mayor_name": "P T",
    "mayor_email": "m@hamburg.de",
    "mayor_gender": "male",
    "contact_name": "A S",
    "contact_email": "a@hamburg.de",
    "contact_phone": "+4940428231234",
    "contact_position": "Head",
    "contact_gender": "female",
}


def step(report, session, event, **kw):
    return engine.advance(SURVEY, report, session, event, now=NOW, labels=get_translator(session.language), **kw)


def at(qid, answers=None, mode=Mode.ASKING, **session):
    return Report(answers=dict(answers or {})), Session(mode=mode, cursor=qid, **session)


def reasons(s):
    return [e.reason for e in s.effects if isinstance(e, Rejected)]


def test_branches_chain_and_progress_counts():
    report = Report(answers={"clusters": ("literacy",)})
    ids = [q.id for q in engine.applicable(SURVEY, report)]
    assert "cluster_relevance" in ids and "core_team_description" not in ids and "core_team_why_not" not in ids
    report = Report(answers={"core_team": "no"})
    ids = [q.id for q in engine.applicable(SURVEY, report)]
    assert "core_team_why_not" in ids and "core_team_description" not in ids
    p = engine.progress(SURVEY, Report(answers=BASIC), "strategy_adopted")
    assert (p.section_number, p.section_count) == (2, 10)
    assert p.question_number == 13 and p.required_missing == 0 and p.answered == 12


def test_a_flipped_branch_keeps_the_answer_but_neither_requires_nor_exports_it():
    report, session = at("core_team", {**BASIC, "core_team": "yes", "core_team_description": "A forum."})
    out = step(report, session, ChoiceInput("core_team", "no"))
    assert out.report.answers["core_team_description"] == "A forum."
    assert "core_team_description" not in engine.exported_answers(SURVEY, out.report)
    assert [e.question_id for e in out.effects if isinstance(e, Ask)] == ["core_team_why_not"]


def test_required_questions_cannot_be_skipped_optional_ones_can():
    report, session = at("city_website")
    assert reasons(step(report, session, CommandInput("skip"))) == [Refusal.REQUIRED]
    # The form requires only the city information; the mayor's details may be left for later.
    report, session = at("mayor_email", {k: v for k, v in BASIC.items() if not k.startswith("mayor_")})
    out = step(report, session, CommandInput("skip"))
    assert out.session.cursor == "mayor_gender" and "mayor_email" in out.session.skipped
    report, session = at("medium_term_progress", BASIC)
    out = step(report, session, CommandInput("skip"))
    assert out.session.cursor == "long_term_objectives" and "medium_term_progress" in out.session.skipped


def test_over_limit_text_is_not_saved_and_the_counts_are_given():
    report, session = at("equity_inclusion", BASIC)
    out = step(report, session, TextInput("word " * 251))
    assert "equity_inclusion" not in out.report.answers
    (rejected,) = [e for e in out.effects if isinstance(e, Rejected)]
    assert rejected.reason == TooLong(count=251, limit=250) and rejected.reason.excess == 1


def test_add_more_appends_and_the_limit_counts_the_whole():
    report, session = at("equity_inclusion", BASIC)
    out = step(report, session, TextInput("one two three"))
    assert out.session.mode == Mode.ADDING_MORE
    assert isinstance(out.effects[-1], OfferMore) and out.effects[-1].words == 3
    out = step(out.report, out.session, TextInput("four five"))
    assert out.report.answers["equity_inclusion"] == "one two three\n\nfour five"
    out2 = step(out.report, out.session, TextInput("x " * 246))
    assert reasons(out2) == [TooLong(count=251, limit=250, combined=True)] and out2.report == out.report
    done = step(out.report, out.session, CommandInput("next"))
    assert done.session.cursor == "decent_work"


def test_editing_one_message_of_a_multi_message_answer_replaces_only_that_part():
    report, session = at("decent_work", {**BASIC, "equity_inclusion": "First part.\n\nSecond part."})
    out = step(report, session, EditInput("equity_inclusion", "Second part, corrected.", "Second part."))
    assert out.report.answers["equity_inclusion"] == "First part.\n\nSecond part, corrected."
    assert EditSaved("equity_inclusion") in out.effects
    assert out.session.cursor == "decent_work"  # editing does not move the contact


def test_stale_or_invalid_choices_change_nothing():
    report, session = at("core_team", BASIC)
    for event in (ChoiceInput("monitoring", "yes"), ChoiceInput("core_team", "maybe")):
        out = step(report, session, event)
        assert reasons(out) == [Refusal.STALE_BUTTON] and out.report == report and out.session == session


def test_multiple_choice_by_buttons_and_by_typed_text():
    report, session = at("clusters", BASIC)
    s1 = step(report, session, ChoiceInput("clusters", "literacy"))
    s2 = step(s1.report, s1.session, ChoiceInput("clusters", "esd"))
    assert s2.session.picked == ("esd", "literacy") and "clusters" not in s2.report.answers
    s3 = step(s2.report, s2.session, CommandInput("next"))
    assert s3.report.answers["clusters"] == ("esd", "literacy")
    typed = step(report, session, TextInput("literacy; 1"))
    assert typed.report.answers["clusters"] == ("esd", "literacy")
    french = step(report, Session(mode=Mode.ASKING, cursor="clusters", language="fr"), TextInput("Alphabétisation"))
    assert french.report.answers["clusters"] == ("literacy",)


def test_submission_needs_required_answers_then_confirmation_then_is_read_only():
    report, session = at("city_name")
    assert [type(r) for r in reasons(step(report, session, CommandInput("submit")))] == [MissingRequired]
    report, session = at("strategy_adopted", BASIC)
    ask = step(report, session, CommandInput("submit"))
    assert ask.session.mode == Mode.CONFIRM_SUBMIT
    done = step(ask.report, ask.session, CommandInput("confirm_submit"))
    assert done.report.status == ReportStatus.SUBMITTED and done.report.submitted_at == NOW
    assert reasons(step(done.report, done.session, TextInput("change"))) == [Refusal.READ_ONLY]
    assert reasons(step(done.report, done.session, CommandInput("edit", "q:city_name"))) == [Refusal.READ_ONLY]


def test_late_submission_refused_only_when_configured():
    late = dt.datetime(2022, 1, 5, tzinfo=dt.UTC)
    report, session = at("strategy_adopted", BASIC)
    en = get_translator("en")
    refused = engine.advance(SURVEY, report, session, CommandInput("submit"), now=late, labels=en, accept_late=False)
    assert reasons(refused) == [Refusal.DEADLINE_PASSED]
    allowed = engine.advance(SURVEY, report, session, CommandInput("submit"), now=late, labels=en, accept_late=True)
    assert allowed.session.mode == Mode.CONFIRM_SUBMIT


def test_exempt_city_is_told_and_correcting_the_date_makes_it_due():
    report, session = at("joined_gnlc", {"city_name": "Yeosu", "country": "Korea"})
    out = step(report, session, TextInput("09/2020"))
    assert out.report.status == ReportStatus.EXEMPT
    again = step(out.report, Session(mode=Mode.ASKING, cursor="joined_gnlc"), TextInput("2019-01"))
    assert again.report.status == ReportStatus.OPEN


def test_language_switch_keeps_answers_and_reasks_in_the_new_language():
    report, session = at("mayor_email", BASIC)
    out = step(report, session, CommandInput("set_language", "ar"))
    assert out.report == report and out.session.language == "ar" and out.session.cursor == "mayor_email"
    assert isinstance(out.effects[-1], Ask)
    forged = step(report, session, CommandInput("set_language", "xx"))
    assert forged.session.language == "en"


def test_files_are_checked_against_the_cap_before_download():
    report, session = at("supporting_files", BASIC)
    ok = step(report, session, FileInput("f", "a.pdf", "application/pdf", 1000))
    assert [type(e) for e in ok.effects] == [StoreFile]
    big = step(report, session, FileInput("f", "a.mp4", None, 10 * 1024 * 1024 + 1))
    assert reasons(big) == [FileTooLarge(size=10 * 1024 * 1024 + 1, limit=10 * 1024 * 1024, name="a.mp4")]
    unknown_size = step(report, session, FileInput("f", "a.bin", None, None))  # checked after download
    assert [type(e) for e in unknown_size.effects] == [StoreFile]


@pytest.mark.parametrize("text", ["", "   ", "\u200b"])
def test_empty_answers_are_refused(text):
    report, session = at("city_name")
    out = step(report, session, TextInput(text))
    assert reasons(out) == [Refusal.EMPTY] and out.report == report


def test_back_returns_to_previous_question_and_start_resumes():
    report, session = at("city_name")
    s1 = step(report, session, TextInput("Hamburg"))
    s2 = step(s1.report, s1.session, CommandInput("back"))
    assert s2.session.cursor == "city_name"
    resumed = engine.start(SURVEY, s1.report, s1.session)
    assert isinstance(resumed.effects[-1], Ask) and resumed.effects[-1].question_id == "country"
