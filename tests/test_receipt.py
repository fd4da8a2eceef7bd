"""Tests of bot.receipt: the HTML copy of a city's report."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest

from bot.receipt import receipt_filename, render_receipt
from conversation import engine
from conversation.i18n import LANGUAGES, get_translator
from conversation.loader import load_survey
from conversation.model import Kind, Question, Survey
from conversation.render import esc, format_size
from conversation.state import AnswerValue, Attachment, Report, ReportStatus

GENERATED = dt.datetime(2021, 12, 2, 10, 0, tzinfo=dt.UTC)
SUBMITTED = dt.datetime(2021, 12, 1, 8, 30, tzinfo=dt.UTC)

# Text answers in the contact's language (with line breaks, and one hostile answer).
TEXTS = {
    "en": "We opened 12 learning centres.\nAttendance doubled.",
    "fr": "Nous avons ouvert 12 centres d’apprentissage.\nLa fréquentation a doublé.",
    "es": "Abrimos 12 centros de aprendizaje.\nLa asistencia se duplicó.",
    "ar": "افتتحنا ١٢ مركزًا للتعلم.\nتضاعف عدد المشاركين.",
    "zh": "我们开设了12个学习中心。\n参与人数翻了一番。",
    "ru": "Мы открыли 12 учебных центров.\nПосещаемость удвоилась.",
    "pt_BR": "Abrimos 12 centros de aprendizagem.\nA participação dobrou.",
    "pt_PT": "Abrimos 12 centros de aprendizagem.\nA participação duplicou.",
    "ko": "학습 센터 12곳을 열었습니다.\n참여자가 두 배로 늘었습니다.",
}
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


@pytest.fixture(scope="module")
def survey() -> Survey:
    return load_survey()


def value_for(q: Question, language: str) -> AnswerValue:
    match q.kind:
        case Kind.YES_NO:
            return "yes"
        case Kind.SINGLE_CHOICE | Kind.GENDER:
            return q.choices[0].id
        case Kind.MULTI_CHOICE:
            return (q.choices[0].id, q.choices[2].id)
        case Kind.MONTH_YEAR:
            return "2019-03"
        case Kind.EMAIL:
            return "mayor@city.example"
        case Kind.PHONE:
            return "+4940123456"
        case Kind.URL:
            return "https://www.city.example/learning"
        case Kind.PERSON_NAME:
            return "Amina Rahman"
        case Kind.FILE_UPLOAD:
            return "done"
        case _:
            return f"{q.id}: {TEXTS[language]}"


def full_report(survey: Survey, language: str) -> Report:
    """Every question that applies answered (every yes/no branch answered "yes")."""
    answers: dict[str, AnswerValue] = {}
    for q in survey.questions:
        if engine.applies(survey, q, answers):
            answers[q.id] = value_for(q, language)
    answers["initiative_2"] = HOSTILE
    answers["core_team_why_not"] = "kept from an earlier 'no' answer"  # no longer applies
    return Report(
        answers=answers,
        status=ReportStatus.SUBMITTED,
        submitted_at=SUBMITTED,
        attachments=(
            Attachment(sha256="a" * 64, name="plan <2021>.pdf", mime_type="application/pdf", size=1_300_000),
            Attachment(
                sha256="b" * 64, name="фото.jpg", mime_type="image/jpeg", size=2048, caption="Festival <2020> & more"
            ),
        ),
    )


class TagBalance(HTMLParser):
    """Checks that every opened element is closed in order (void elements aside)."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}>, open: {self.stack}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("language", LANGUAGES)
def test_full_report_in_every_language(survey: Survey, language: str) -> None:
    tr = get_translator(language)
    report = full_report(survey, language)
    raw = render_receipt(survey, "Hamburg", "Germany", report, tr, generated_at=GENERATED)
    assert isinstance(raw, bytes)
    page = raw.decode("utf-8")

    assert page.startswith("<!DOCTYPE html>")
    direction = "rtl" if language == "ar" else "ltr"
    assert f'<html lang="{language}" dir="{direction}">' in page
    assert '<meta charset="utf-8">' in page
    assert "white-space: pre-wrap" in page
    assert "<script" not in page  # no scripts of ours, and the contact's is escaped
    assert esc(HOSTILE) in page
    assert "&lt;script&gt;" in page

    assert esc(tr.gettext(survey.title)) in page
    assert esc(tr.gettext(survey.reporting_period)) in page
    assert "Hamburg" in page and "Germany" in page
    assert esc(tr.format_datetime(SUBMITTED, None, "long")) in page
    assert esc(tr.format_datetime(GENERATED, None, "long")) in page
    assert esc(tr.t("Submitted")) in page

    applicable = engine.applicable(survey, report)
    for q in applicable:
        assert esc(tr.gettext(q.text)) in page, q.id
        assert f'id="q-{q.id}"' in page, q.id
        if q.kind in (Kind.LONG_TEXT, Kind.SHORT_TEXT) and q.id != "initiative_2":
            assert esc(report.answers[q.id]) in page, q.id  # full answer, line breaks kept
    for section in survey.sections:
        assert esc(tr.gettext(section.title)) in page
    # A branch that no longer applies is not shown, nor its kept answer.
    assert 'id="q-core_team_why_not"' not in page
    assert "kept from an earlier" not in page
    # Choices in words, months in the language's style.
    gender = survey.question("mayor_gender")
    assert gender is not None
    assert esc(tr.gettext(gender.choices[0].label)) in page
    assert esc(tr.format_month(2019, 3)) in page
    # Files with sizes.
    assert esc("plan <2021>.pdf") in page and "фото.jpg" in page
    assert esc("Festival <2020> & more") in page  # the caption, as the file's description
    assert esc(format_size(tr, 1_300_000)) in page and esc(format_size(tr, 2048)) in page

    checker = TagBalance()
    checker.feed(page)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    assert "script" not in checker.tags


def test_unanswered_questions_are_marked(survey: Survey) -> None:
    tr = get_translator("fr")
    report = Report(answers={"city_name": "Lyon", "country": "France"})
    page = render_receipt(survey, "Lyon", "France", report, tr, generated_at=GENERATED).decode("utf-8")
    not_answered = esc(tr.t("(not answered)"))
    assert page.count(not_answered) == len(engine.applicable(survey, report)) - 2 - 1  # -1: the upload question
    assert esc(tr.t("no files")) in page
    assert esc(tr.t("In progress")) in page
    assert esc(tr.t("Submitted on")) not in page
    # Branch questions only appear once their condition holds.
    assert 'id="q-strategy_adoption_date"' not in page
    assert 'id="q-strategy_adopted"' in page


def test_exempt_status_and_time_zone(survey: Survey) -> None:
    tr = get_translator("en")
    report = Report(answers={"joined_gnlc": "2020-10"}, status=ReportStatus.EXEMPT)
    page = render_receipt(survey, "Nice", "France", report, tr, generated_at=GENERATED, tz="Europe/Paris")
    text = page.decode("utf-8")
    assert "Exempt this cycle" in text
    assert esc(tr.format_datetime(GENERATED, "Europe/Paris", "long")) in text


def test_city_and_country_are_escaped(survey: Survey) -> None:
    tr = get_translator("en")
    page = render_receipt(survey, "<i>Evil</i>", 'A "B" & C', Report(), tr, generated_at=GENERATED).decode("utf-8")
    assert "<i>Evil</i>" not in page
    assert "&lt;i&gt;Evil&lt;/i&gt;" in page and 'A "B" &amp; C' in page


@pytest.mark.parametrize(
    ("city", "filename"),
    [
        ("Hamburg", "gnlc-report-hamburg.html"),
        ("São Paulo", "gnlc-report-sao-paulo.html"),
        ("Saint-Étienne", "gnlc-report-saint-etienne.html"),
        ("Gießen", "gnlc-report-giessen.html"),
        ("  Mérida / Yucatán  ", "gnlc-report-merida-yucatan.html"),
        ("../../etc/passwd", "gnlc-report-etc-passwd.html"),
        ("Łódź", "gnlc-report-lodz.html"),
    ],
)
def test_receipt_filename(city: str, filename: str) -> None:
    assert receipt_filename(city) == filename


def test_receipt_filename_without_latin_letters() -> None:
    beijing = receipt_filename("北京")
    cairo = receipt_filename("القاهرة")
    for name in (beijing, cairo):
        assert name.isascii() and name.startswith("gnlc-report-city-") and name.endswith(".html")
    assert beijing != cairo
    assert receipt_filename("北京") == beijing  # stable
    assert len(receipt_filename("x" * 300)) <= len("gnlc-report-.html") + 60
