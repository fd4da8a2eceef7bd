"""The bundled GNLC survey file, the loader's error messages and the babel extractor."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from babel.messages.extract import extract

from conversation.babel_extract import extract_survey, survey_messages
from conversation.loader import DEFAULT_SURVEY_PATH, SurveyError, load_survey, parse_survey
from conversation.model import Kind, Survey

BROKEN = Path(__file__).parent / "broken_surveys"

# Section id -> question ids, in the form's order.
EXPECTED_IDS = {
    "basic": [
        "city_name",
        "country",
        "city_website",
        "joined_gnlc",
        "mayor_name",
        "mayor_email",
        "mayor_gender",
        "contact_name",
        "contact_email",
        "contact_phone",
        "contact_position",
        "contact_gender",
    ],
    "strategy": [
        "strategy_adopted",
        "strategy_adoption_date",
        "medium_term_progress",
        "long_term_objectives",
        "sustainability_health",
        "equity_inclusion",
        "decent_work",
        "learning_formats",
    ],
    "coordination": [
        "core_team",
        "core_team_description",
        "core_team_why_not",
        "international_cooperation",
        "partnerships_description",
        "partnerships_why_not",
    ],
    "access": [
        "participation_barriers",
        "inclusion_policies",
        "access_initiatives",
        "marginalised_groups",
        "women_and_girls",
        "information_mechanisms",
    ],
    "resources": ["resource_mobilisation"],
    "events": ["celebratory_events", "events_implementation", "events_contribution", "events_why_not"],
    "monitoring": ["monitoring", "monitoring_tools", "monitoring_kpis", "monitoring_strengths", "monitoring_why_not"],
    "gnlc": [
        "progress_since_joining",
        "further_support",
        "overall_experience",
        "clusters",
        "cluster_relevance",
        "gnlc_activities",
        "gnlc_activities_details",
    ],
    "best_practices": ["initiative_1", "initiative_2"],
    "files": ["supporting_files"],
}

# The form's word limits; every other question has none.
EXPECTED_WORDS = {
    "medium_term_progress": 400,
    "long_term_objectives": 400,
    "sustainability_health": 400,
    "equity_inclusion": 250,
    "decent_work": 250,
    "learning_formats": 250,
    "core_team_description": 250,
    "core_team_why_not": 250,
    "partnerships_description": 250,
    "partnerships_why_not": 250,
    "participation_barriers": 250,
    "inclusion_policies": 250,
    "access_initiatives": 250,
    "marginalised_groups": 250,
    "women_and_girls": 250,
    "information_mechanisms": 250,
    "resource_mobilisation": 400,
    "events_implementation": 250,
    "events_contribution": 250,
    "events_why_not": 250,
    "monitoring_tools": 250,
    "monitoring_kpis": 250,
    "monitoring_strengths": 250,
    "monitoring_why_not": 250,
    "progress_since_joining": 250,
    "further_support": 250,
    "overall_experience": 250,
    "initiative_1": 400,
    "initiative_2": 400,
}

# Question id -> (question it depends on, `equals` value or None, `answered` value or None).
EXPECTED_BRANCHES = {
    "strategy_adoption_date": ("strategy_adopted", "yes", None),
    "core_team_description": ("core_team", "yes", None),
    "core_team_why_not": ("core_team", "no", None),
    "partnerships_description": ("international_cooperation", "yes", None),
    "partnerships_why_not": ("international_cooperation", "no", None),
    "events_implementation": ("celebratory_events", "yes", None),
    "events_contribution": ("celebratory_events", "yes", None),
    "events_why_not": ("celebratory_events", "no", None),
    "monitoring_tools": ("monitoring", "yes", None),
    "monitoring_kpis": ("monitoring", "yes", None),
    "monitoring_strengths": ("monitoring", "yes", None),
    "monitoring_why_not": ("monitoring", "no", None),
    "cluster_relevance": ("clusters", None, True),
    "gnlc_activities_details": ("gnlc_activities", "yes", None),
}

EXPECTED_KINDS = {
    "city_name": Kind.SHORT_TEXT,
    "country": Kind.SHORT_TEXT,
    "city_website": Kind.URL,
    "joined_gnlc": Kind.MONTH_YEAR,
    "mayor_name": Kind.PERSON_NAME,
    "mayor_email": Kind.EMAIL,
    "mayor_gender": Kind.GENDER,
    "contact_name": Kind.PERSON_NAME,
    "contact_email": Kind.EMAIL,
    "contact_phone": Kind.PHONE,
    "contact_position": Kind.SHORT_TEXT,
    "contact_gender": Kind.GENDER,
    "strategy_adopted": Kind.YES_NO,
    "strategy_adoption_date": Kind.MONTH_YEAR,
    "core_team": Kind.YES_NO,
    "international_cooperation": Kind.YES_NO,
    "celebratory_events": Kind.YES_NO,
    "monitoring": Kind.YES_NO,
    "clusters": Kind.MULTI_CHOICE,
    "cluster_relevance": Kind.SINGLE_CHOICE,
    "gnlc_activities": Kind.YES_NO,
    "supporting_files": Kind.FILE_UPLOAD,
}


@pytest.fixture(scope="module")
def survey() -> Survey:
    return load_survey()


def test_top_level(survey: Survey) -> None:
    assert survey.id == "gnlc-biennial-2019-2021"
    assert survey.title == "UNESCO Learning Cities Biennial Progress Report"
    assert survey.reporting_period == "April 2019 – September 2021"
    assert survey.deadline == dt.date(2021, 12, 31)
    assert survey.contact_email == "learningcities@unesco.org"
    assert survey.uploads.max_files == 5
    assert survey.uploads.max_file_bytes == 10 * 1024 * 1024
    assert survey.exemption is not None
    assert (survey.exemption.question, survey.exemption.joined_from) == ("joined_gnlc", "2020-09")


def test_intro_is_the_forms_introduction(survey: Survey) -> None:
    assert survey.intro.startswith("Please submit your Biennial Progress Report")
    assert "JavaScript" not in survey.intro
    assert "Submission deadline is {deadline}." in survey.intro  # filled in with the effective deadline
    for item in (
        "submits an incomplete Progress Report; or",
        "does not demonstrate progress in building a learning city; or",
        "does not submit its biennial Progress Report,",
    ):
        assert item in survey.intro
    assert survey.intro.endswith("will be notified of the fact by UNESCO GNLC.")


def test_sections_and_question_ids_in_order(survey: Survey) -> None:
    assert len(survey.sections) == 10
    assert [s.id for s in survey.sections] == list(EXPECTED_IDS)
    for section in survey.sections:
        assert [q.id for q in section.questions] == EXPECTED_IDS[section.id], section.id


def test_kinds(survey: Survey) -> None:
    for question in survey.questions:
        expected = EXPECTED_KINDS.get(question.id, Kind.LONG_TEXT)
        assert question.kind == expected, question.id


def test_word_limits(survey: Survey) -> None:
    limits = {q.id: q.max_words for q in survey.questions if q.max_words is not None}
    assert limits == EXPECTED_WORDS
    assert survey.question("gnlc_activities_details") is not None
    assert survey.question("gnlc_activities_details").max_words is None  # type: ignore[union-attr]


def test_no_word_limit_left_in_texts(survey: Survey) -> None:
    for question in survey.questions:
        assert "max" not in question.text.lower(), question.id
        assert question.text == question.text.strip(), question.id


SEED_FORM = Path(__file__).resolve().parent / "fixtures" / "seed_form.txt"
MANDATORY_MARK = "(This question is mandatory)"


def seed_mandatory_question_ids(survey: Survey) -> set[str]:
    """The questions of the form's blocks marked "(This question is mandatory)", read from the form's text.

    A block's lines follow its mark up to the first line that is neither a question's text nor its help
    (the next block's title, e.g. "Mayor").
    """
    by_text = {q.text.strip(): q.id for q in survey.questions}
    helps = {q.help.strip() for q in survey.questions if q.help}
    lines = [line.strip() for line in SEED_FORM.read_text(encoding="utf-8").splitlines()]
    marks = [index for index, line in enumerate(lines) if line == MANDATORY_MARK]
    assert marks, "the form marks at least one block mandatory"
    found: set[str] = set()
    for mark in marks:
        block = [line for line in lines[mark + 1 :] if line]
        for line in block:
            if line in by_text:
                found.add(by_text[line])
            elif line not in helps:
                break
    return found


def test_required_questions_are_the_forms_mandatory_block(survey: Survey) -> None:
    seed_required = seed_mandatory_question_ids(survey)
    assert seed_required == {"city_name", "country", "city_website", "joined_gnlc"}  # the parse found the block
    assert {q.id for q in survey.questions if q.required} == seed_required
    # The mayor and contact-person questions are still asked, only not required.
    basic = survey.section("basic")
    assert basic is not None
    assert {q.id for q in basic.questions} > seed_required


def test_monitoring_heading_stands_before_section_one_as_on_the_form(survey: Survey) -> None:
    lines = [line.strip() for line in SEED_FORM.read_text(encoding="utf-8").splitlines() if line.strip()]
    strategy = survey.section("strategy")
    assert strategy is not None and strategy.heading is not None
    at = lines.index(strategy.heading.title.upper())
    assert lines[at + 1] == strategy.heading.intro
    assert lines[at + 2] == strategy.title
    assert [s.id for s in survey.sections if s.heading is not None] == ["strategy"]


def test_branches(survey: Survey) -> None:
    branches = {q.id: (q.when.question, q.when.equals, q.when.answered) for q in survey.questions if q.when is not None}
    assert branches == EXPECTED_BRANCHES


def test_choices(survey: Survey) -> None:
    def choices(question_id: str) -> list[tuple[str, str]]:
        question = survey.question(question_id)
        assert question is not None
        return [(c.id, c.label) for c in question.choices]

    gender = [("female", "Female"), ("male", "Male"), ("other", "Other"), ("undisclosed", "Prefer not to say")]
    assert choices("mayor_gender") == gender
    assert choices("contact_gender") == gender
    assert choices("clusters") == [
        ("esd", "Education for Sustainable Development"),
        ("entrepreneurship", "Entrepreneurship"),
        ("equity_inclusion", "Equity and Inclusion"),
        ("gced", "Global Citizenship Education"),
        ("health_wellbeing", "Health and Well-being"),
        ("literacy", "Literacy"),
        ("monitoring_evaluation", "Monitoring and Evaluation"),
    ]
    assert choices("cluster_relevance") == [
        ("very", "Very relevant"),
        ("somewhat", "Somewhat relevant"),
        ("slightly", "Slightly relevant"),
        ("not_relevant", "Not relevant"),
    ]
    for question in survey.questions:
        if question.kind == Kind.YES_NO:
            assert question.choices == (), question.id


def test_selected_texts_verbatim(survey: Survey) -> None:
    def text(question_id: str) -> str:
        question = survey.question(question_id)
        assert question is not None
        return question.text

    assert text("city_website") == "Official city website address"
    assert text("joined_gnlc") == "Date of joining the UNESCO GNLC"
    assert text("strategy_adopted") == "Has your city developed and adopted a Learning City Strategy?"
    assert text("medium_term_progress") == (
        "To what extent has your city progressed in achieving its medium-term objectives (3–5 years)"
        " as a learning city? Please give concrete examples."
    )
    assert text("gnlc_activities") == (
        "Has your city participated in/contributed to UNESCO GNLC’s activities during the current"
        " reporting period (April 2019–September 2021)?"
    )
    assert text("gnlc_activities_details") == "Please provide concrete details."
    assert text("initiative_1") == "Initiative 1"
    upload = survey.upload_question
    assert upload is not None and upload.id == "supporting_files" and not upload.required
    assert upload.help is not None and "10 MiB" in upload.help and "5 files" in upload.help


def test_default_path_and_path_forms() -> None:
    assert DEFAULT_SURVEY_PATH.is_file()
    assert load_survey(str(DEFAULT_SURVEY_PATH)) == load_survey(DEFAULT_SURVEY_PATH) == load_survey()


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SurveyError, match=r"nowhere\.yaml"):
        load_survey(tmp_path / "nowhere.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(SurveyError, match=r"list\.yaml"):
        load_survey(path)


# Fixture file -> (question id the message must name, another fragment the message must hold).
BROKEN_CASES = {
    "unknown_branch_target.yaml": ("core_team_description", "'core_tem'"),
    "later_branch_target.yaml": ("core_team_description", "unknown or later question 'core_team'"),
    "duplicate_id.yaml": ("city_name", "duplicate question id"),
    "word_limit_zero.yaml": ("medium_term_progress", "bad word limit 0"),
    "word_limit_negative.yaml": ("equity_inclusion", "bad word limit -250"),
    "unknown_kind.yaml": ("learning_formats", "unknown kind 'essay' (expected one of long_text"),
    "branch_value_not_choice.yaml": ("cluster_relevance", "'cooking' is not a choice of 'clusters'"),
    "yes_no_branch_not_yes_or_no.yaml": ("events_why_not", "'yes' or 'no'"),
    "yes_no_branch_unquoted.yaml": ("events_implementation", "quote it"),
    "choice_without_choices.yaml": ("clusters", "needs at least two choices"),
    "invalid_yaml.yaml": ("mayor_name", "invalid YAML at line 17"),
    "max_words_on_non_text.yaml": ("strategy_adopted", "max_words only applies to text questions"),
    "missing_text.yaml": ("resource_mobilisation", "missing field 'text'"),
    "prefill_wrong_kind.yaml": ("joined_gnlc", "can only pre-fill a month_year question"),
}


def test_every_broken_fixture_has_a_case() -> None:
    assert {p.name for p in BROKEN.glob("*.yaml")} == set(BROKEN_CASES)


@pytest.mark.parametrize(("fixture", "question_id", "fragment"), [(f, q, x) for f, (q, x) in BROKEN_CASES.items()])
def test_broken_survey_names_file_and_question(fixture: str, question_id: str, fragment: str) -> None:
    with pytest.raises(SurveyError) as caught:
        load_survey(BROKEN / fixture)
    message = str(caught.value)
    assert message.startswith(f"{fixture}: ")
    assert f"'{question_id}'" in message
    assert fragment in message


def test_parse_survey_names_its_source() -> None:
    text = (BROKEN / "unknown_kind.yaml").read_text(encoding="utf-8")
    with pytest.raises(SurveyError, match=r"^inline\.yaml: question 'learning_formats'"):
        parse_survey(text, "inline.yaml")


def _extract(path: Path) -> list[tuple[int, str | None, str, list[str]]]:
    with path.open("rb") as fileobj:
        return list(extract_survey(fileobj, keywords=(), comment_tags=(), options={}))


def test_extractor_finds_every_translatable_text(survey: Survey) -> None:
    found = _extract(DEFAULT_SURVEY_PATH)
    messages = {message for _, _, message, _ in found}
    expected = {survey.title, survey.reporting_period, survey.intro}
    for section in survey.sections:
        expected.add(section.title)
        if section.heading is not None:
            expected.add(section.heading.title)
            expected.update([section.heading.intro] if section.heading.intro else [])
        if section.intro:
            expected.add(section.intro)
        for question in section.questions:
            expected.add(question.text)
            if question.help:
                expected.add(question.help)
            expected.update(c.label for c in question.choices)
    assert messages == expected
    assert survey_messages(survey) == list(dict.fromkeys(message for _, _, message, _ in found))
    assert survey.contact_email not in messages


def test_extractor_points_at_lines_and_names_ids(survey: Survey) -> None:
    lines = DEFAULT_SURVEY_PATH.read_text(encoding="utf-8").splitlines()
    by_comment = {comments[0]: (lineno, message) for lineno, _, message, comments in _extract(DEFAULT_SURVEY_PATH)}
    for question in survey.questions:
        lineno, message = by_comment[f"question {question.id}: text"]
        assert message == question.text
        assert question.text in lines[lineno - 1], question.id
    lineno, message = by_comment["question clusters, choice gced: label"]
    assert message == "Global Citizenship Education" and message in lines[lineno - 1]


def test_extractor_through_babel() -> None:
    with DEFAULT_SURVEY_PATH.open("rb") as fileobj:
        found = list(extract("conversation.babel_extract:extract_survey", fileobj))
    assert any(message == "Initiative 1" for _, message, _, _ in found)


def test_entry_point_is_registered() -> None:
    registered = entry_points(group="babel.extractors", name="survey_yaml")
    if not registered:
        pytest.skip("package not installed (pip install -e .); the babel entry point is not registered")
    assert next(iter(registered)).load() is extract_survey


def test_extractor_rejects_broken_survey() -> None:
    with pytest.raises(SurveyError, match="learning_formats"):
        _extract(BROKEN / "unknown_kind.yaml")
