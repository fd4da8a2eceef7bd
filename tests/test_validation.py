"""Tests for conversation.validation: table tests per format and language, plus properties."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import pytest
from babel.dates import get_month_names
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation.i18n import LANGUAGES
from conversation.state import FutureMonth, Refusal, TooManyChars, TooOld
from conversation.validation import (
    NO_WORDS,
    YES_WORDS,
    Rejection,
    clean_text,
    count_words,
    format_month_value,
    is_month_value,
    match_option,
    match_yes_no,
    normalize_email,
    normalize_person_name,
    normalize_phone,
    normalize_short_text,
    normalize_url,
    parse_month_value,
    parse_month_year,
)

TODAY = dt.date(2024, 5, 15)
LOCALES = ("en", "fr", "es", "ar", "zh", "ru", "pt", "ko")


def rejected_as(result: object) -> type | None:
    """Return the kind of rejection `result` is, or None when it was accepted."""
    return type(result) if isinstance(result, Rejection) else None


# --------------------------------------------------------------------------- count_words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("hello world", 2),
        ("Hello, world!", 2),
        ("hello,world", 2),
        ("don't", 1),
        ("don’t stop", 2),
        ("well-being", 1),
        ("l'éducation pour tous", 3),
        ("l’éducation", 1),
        ("e\u0301cole", 1),  # decomposed accent stays inside the word
        ("3.5 million", 2),
        ("1,000 people", 2),
        ("COVID-19", 1),
        ("2019-2020", 1),
        ("end. 3", 2),
        ("The end.", 2),
        ("a--b", 2),
        ("a - b", 2),
        ("'quoted'", 1),
        ("rock 'n' roll", 3),
        ("Привет, мир!", 2),
        ("Образование для всех — наш приоритет.", 5),
        ("مرحبا بالعالم", 2),
        ("التعليم مدى الحياة ٢٠٢٤", 4),
        ("٣٫٥ مليون", 2),
        ("Η μάθηση", 2),
        ("हिन्दी भाषा", 2),
        ("我们的城市", 5),
        ("我们的city有3个", 7),
        ("学习型城市。终身学习！", 9),
        ("東京タワー", 5),
        # Korean separates words with spaces: a run of Hangul is one word, not one per syllable.
        ("한국어 학습", 2),
        ("서울은 평생학습도시입니다.", 2),
        ("수원시는 2019년부터 learning city 사업을 시작했습니다", 6),
        ("学习 한국어", 3),
        ("Learning 城市 network", 4),
        ("😀", 0),
        ("😀 hi 👍🏽", 1),
        ("👨‍👩‍👧 family", 1),
        ("a\u200bb", 2),
        ("\ufeffword\u2060", 1),
        ("word\u200b \u200b", 1),
        ("... --- !!!", 0),
        ("x-", 1),
        ("-x", 1),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected


_TRICKY = st.text(alphabet=st.sampled_from(list("ab1 .,'’-\u00ad我ア한é\u0301\u200b\u200d😀\n٣٫")), max_size=30)


@given(st.text())
def test_count_words_never_negative(text: str) -> None:
    assert count_words(text) >= 0


@given(st.text() | _TRICKY, st.text() | _TRICKY)
def test_count_words_additive_across_a_space(a: str, b: str) -> None:
    # A space never joins words and each CJK character is a word on its own, so the
    # count is exactly additive across a separating space, CJK included.
    assert count_words(f"{a} {b}") == count_words(a) + count_words(b)


@given(_TRICKY, _TRICKY)
def test_count_words_concatenation_merges_at_most_one_word(a: str, b: str) -> None:
    # Without a separator the last word of `a` may fuse with the first of `b` ("don" + "'t").
    total = count_words(a) + count_words(b)
    assert total - 1 <= count_words(a + b) <= total


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=40))
def test_count_words_each_ideograph_is_a_word(text: str) -> None:
    assert count_words(text) == len(text)


# --------------------------------------------------------------------------- clean_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  hello  ", "hello"),
        ("\u200b\ufeff hello \u200b", "hello"),
        ("cafe\u0301", "café"),
        ("a\n\nb", "a\n\nb"),
        ("a\n\n\nb", "a\n\n\nb"),
        ("a\n\n\n\n\n\nb", "a\n\n\nb"),
        ("a\n \n\t\n \n\nb", "a\n\n\nb"),
        ("a\r\n\r\n\r\n\r\n\r\nb", "a\n\n\nb"),
        ("keep  inner   spaces", "keep  inner   spaces"),
        ("  line one\n  line two  ", "line one\n  line two"),
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


@given(st.text())
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once
    assert "\n\n\n\n" not in once


# --------------------------------------------------------------------------- parse_month_year


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        ("en", "03/2019", (2019, 3)),
        ("en", "3/2019", (2019, 3)),
        ("en", "03.2019", (2019, 3)),
        ("en", "03-2019", (2019, 3)),
        ("en", "03 / 2019", (2019, 3)),
        ("en", "2019-03", (2019, 3)),
        ("en", "2019/03", (2019, 3)),
        ("en", "2019.3", (2019, 3)),
        ("en", "2019–03", (2019, 3)),
        ("en", "March 2019", (2019, 3)),
        ("en", "Mar 2019", (2019, 3)),
        ("en", "march, 2019", (2019, 3)),
        ("en", "2019 March", (2019, 3)),
        ("en", "MARCH 2019.", (2019, 3)),
        ("en", "Sept. 2019", (2019, 9)),
        ("en", "March 15, 2019", (2019, 3)),
        ("en", "15th of March 2019", (2019, 3)),
        ("en", "15/03/2019", (2019, 3)),
        ("en", "03/15/2019", (2019, 3)),
        ("en", "15.03.2019", (2019, 3)),
        ("en", "2019-03-15", (2019, 3)),
        ("en", "１２/２０２３", (2023, 12)),
        ("fr", "mars 2019", (2019, 3)),
        ("fr", "Février 2020", (2020, 2)),
        ("fr", "fevrier 2020", (2020, 2)),
        ("fr", "févr. 2020", (2020, 2)),
        ("fr", "1er mars 2019", (2019, 3)),
        ("fr", "March 2019", (2019, 3)),
        ("es", "marzo de 2019", (2019, 3)),
        ("es", "marzo 2019", (2019, 3)),
        ("es", "15 de marzo de 2019", (2019, 3)),
        ("es", "setiembre 2019", (2019, 9)),
        ("pt", "março de 2019", (2019, 3)),
        ("pt", "marco de 2019", (2019, 3)),
        ("pt", "out. 2019", (2019, 10)),
        ("ru", "март 2019", (2019, 3)),
        ("ru", "марта 2019", (2019, 3)),
        ("ru", "Март 2019 г.", (2019, 3)),
        ("ru", "15 марта 2019 года", (2019, 3)),
        ("ru", "май 2019", (2019, 5)),
        ("ru", "сентябрь 2019", (2019, 9)),
        ("ar", "مارس 2019", (2019, 3)),
        ("ar", "مارس ٢٠١٩", (2019, 3)),
        ("ar", "٠٣/٢٠١٩", (2019, 3)),
        ("ar", "أبريل 2019", (2019, 4)),
        ("ar", "ابريل 2019", (2019, 4)),
        ("ar", "آذار ٢٠١٩", (2019, 3)),
        ("ar", "تشرين الأول 2019", (2019, 10)),
        ("ar", "مارس ٢٠١٩م", (2019, 3)),
        ("zh", "2019年3月", (2019, 3)),
        ("ko", "2019년 3월", (2019, 3)),
        ("ko", "2019년3월", (2019, 3)),
        ("ko", "3월 2019", (2019, 3)),
        ("zh", "2019年03月", (2019, 3)),
        ("zh", "2019 年 3 月", (2019, 3)),
        ("zh", "2019年三月", (2019, 3)),
        ("zh", "2019年十二月", (2019, 12)),
        ("zh", "２０１９年３月１５日", (2019, 3)),
        ("zh", "2019/3", (2019, 3)),
        ("zh", "March 2019", (2019, 3)),
        ("pt_BR", "março de 2019", (2019, 3)),
        ("pt-BR", "março de 2019", (2019, 3)),
        ("xx", "March 2019", (2019, 3)),  # unknown locale: English still works
        ("en", "05/2024", (2024, 5)),  # today's month is allowed
    ],
)
def test_parse_month_year_accepts(locale: str, text: str, expected: tuple[int, int]) -> None:
    assert parse_month_year(text, today=TODAY, locale=locale) == expected


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("en", ""),
        ("en", "   "),
        ("en", "13/2019"),
        ("en", "00/2019"),
        ("en", "2019-13"),
        ("en", "2019-00"),
        ("en", "0/2019"),
        ("en", "2019"),
        ("en", "March"),
        ("en", "03/19"),
        ("en", "Marhc 2019"),
        ("en", "around March 2019"),
        ("en", "March April 2019"),
        ("en", "March 2019 2020"),
        ("en", "31/02/2019"),  # no such day
        ("en", "2019-02-30"),
        ("en", "February 30, 2019"),
        ("en", "01/03/2019"),  # 1 March or 3 January: ambiguous, ask again
        ("en", "mars 2019"),  # French name, English contact
        ("fr", "март 2019"),
        ("zh", "2019年13月"),
        ("en", "2019-03-15T10:00"),
        ("en", "🎉 March 2019"),
    ],
)
def test_parse_month_year_rejects_bad_month(locale: str, text: str) -> None:
    assert parse_month_year(text, today=TODAY, locale=locale) is Refusal.BAD_MONTH


@pytest.mark.parametrize("text", ["06/2024", "2024-06", "June 2024", "01/2025", "2099-01", "2024-06-01"])
def test_parse_month_year_rejects_future(text: str) -> None:
    result = parse_month_year(text, today=TODAY)
    assert result == FutureMonth(latest="2024-05")


def test_parse_month_year_uses_the_given_today() -> None:
    assert rejected_as(parse_month_year("2030-01", today=TODAY)) is FutureMonth
    assert parse_month_year("2030-01", today=dt.date(2030, 1, 1)) == (2030, 1)
    assert rejected_as(parse_month_year("2030-01", today=dt.date(2029, 12, 31))) is FutureMonth


def test_parse_month_year_rejects_too_old() -> None:
    assert parse_month_year("1850-01", today=TODAY) == TooOld(earliest=1900)
    assert parse_month_year("03/1999", today=TODAY, earliest=2000) == TooOld(earliest=2000)
    assert parse_month_year("01/2000", today=TODAY, earliest=2000) == (2000, 1)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("width", ["wide", "abbreviated"])
@pytest.mark.parametrize("context", ["format", "stand-alone"])
def test_parse_month_year_accepts_every_babel_month_name(
    locale: str, width: Literal["wide", "abbreviated"], context: Literal["format", "stand-alone"]
) -> None:
    for month, name in get_month_names(width, context=context, locale=locale).items():
        assert parse_month_year(f"{name} 2019", today=TODAY, locale=locale) == (2019, month), name
        assert parse_month_year(f"2019 {name.upper()}", today=TODAY, locale=locale) == (2019, month), name


@pytest.mark.parametrize("locale", LOCALES)
def test_parse_month_year_accepts_english_in_every_locale(locale: str) -> None:
    for month, name in get_month_names("wide", locale="en").items():
        assert parse_month_year(f"{name} 2019", today=TODAY, locale=locale) == (2019, month)


@pytest.mark.parametrize("text", ["2019-03", "2016-12", "0999-01"])
def test_parse_month_value_reads_the_stored_form(text: str) -> None:
    assert parse_month_value(text) == (int(text[:4]), int(text[5:]))
    assert is_month_value(text)
    assert format_month_value(*(parse_month_value(text) or (0, 0))) == text


@pytest.mark.parametrize(
    "text",
    ["2019-3", "2019-13", "2019-00", "03/2019", "2019-03-01", " 2019-03", "2019-03\n", "٢٠١٩-03", "", "March 2019"],
)
def test_parse_month_value_refuses_anything_but_yyyy_mm(text: str) -> None:
    assert parse_month_value(text) is None
    assert not is_month_value(text)


def test_format_month_value() -> None:
    assert format_month_value(2019, 3) == "2019-03"
    assert format_month_value(2024, 12) == "2024-12"
    with pytest.raises(ValueError):
        format_month_value(2019, 13)


_DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))


@settings(deadline=None)
@given(st.text(), st.sampled_from((*LOCALES, "xx", "")), _DATES)
def test_parse_month_year_never_raises_and_accepts_only_valid_past_months(
    text: str, locale: str, today: dt.date
) -> None:
    result = parse_month_year(text, today=today, locale=locale)
    if isinstance(result, Rejection):
        assert result is Refusal.BAD_MONTH or isinstance(result, FutureMonth | TooOld)
        return
    year, month = result
    assert 1 <= month <= 12
    assert year >= 1900
    assert (year, month) <= (today.year, today.month)
    assert parse_month_year(format_month_value(year, month), today=today) == (year, month)


_MONTH_FORMATS = ("{m:02d}/{y}", "{m}/{y}", "{m:02d}.{y}", "{m:02d}-{y}", "{y}-{m:02d}", "{y}/{m:02d}", "{y}.{m}")


@settings(deadline=None)
@given(_DATES, _DATES, st.sampled_from(_MONTH_FORMATS), st.sampled_from(LOCALES))
def test_parse_month_year_round_trips_past_months(day: dt.date, today: dt.date, template: str, locale: str) -> None:
    text = template.format(y=day.year, m=day.month)
    result = parse_month_year(text, today=today, locale=locale)
    if (day.year, day.month) > (today.year, today.month):
        assert rejected_as(result) is FutureMonth
    else:
        assert result == (day.year, day.month)
        assert format_month_value(*result) == f"{day.year:04d}-{day.month:02d}"


@settings(deadline=None)
@given(_DATES, st.sampled_from(LOCALES))
def test_parse_month_year_round_trips_month_names(day: dt.date, locale: str) -> None:
    name = get_month_names("wide", locale=locale)[day.month]
    assert parse_month_year(f"{name} {day.year}", today=dt.date(2100, 12, 31), locale=locale) == (day.year, day.month)


# --------------------------------------------------------------------------- e-mail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("anna@example.org", "anna@example.org"),
        ("  John.Doe@Example.COM ", "John.Doe@example.com"),
        ("mailto:anna@example.org", "anna@example.org"),
        ("maria@bücher.de", "maria@bücher.de"),
        ("δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"),
    ],
)
def test_normalize_email_accepts(text: str, expected: str) -> None:
    assert normalize_email(text) == expected


@pytest.mark.parametrize(
    "text", ["", "anna", "anna@", "@example.org", "anna@example", "anna@@example.org", "anna @example.org", "a@b@c.org"]
)
def test_normalize_email_rejects(text: str) -> None:
    assert normalize_email(text) is Refusal.BAD_EMAIL


# --------------------------------------------------------------------------- phone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+44 (0) 20 7946 0958", "+442079460958"),
        ("(+44) 20-7946-0958", "+442079460958"),
        ("+4940123456", "+4940123456"),
        ("+49 40 123456", "+4940123456"),
        ("tel:+4940123456", "+4940123456"),
        ("+1 202-555-0143", "+12025550143"),
        ("+7 495 123-45-67", "+74951234567"),
        ("+86 10 1234 5678", "+861012345678"),
        ("+33 1 23 45 67 89", "+33123456789"),
        ("+٩٧١ ٤ ٣٤٥ ٦٧٨٩", "+97143456789"),
        ("＋４４ ２０ ７９４６ ０９５８", "+442079460958"),
    ],
)
def test_normalize_phone_accepts(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


@pytest.mark.parametrize("text", ["020 7946 0958", "2079460958", "(020) 7946 0958", "8 495 123-45-67"])
def test_normalize_phone_requires_international_form(text: str) -> None:
    assert normalize_phone(text) is Refusal.NOT_INTERNATIONAL


@pytest.mark.parametrize(
    "text", ["", "abc", "+44 abc", "+1 2", "+44 20", "+999 123 456 789", "call me", "+44 20 7946 0958 ext 12"]
)
def test_normalize_phone_rejects_invalid(text: str) -> None:
    assert normalize_phone(text) is Refusal.BAD_PHONE


# --------------------------------------------------------------------------- URL


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("www.example.org", "https://www.example.org"),
        ("example.org/path", "https://example.org/path"),
        ("example.org/path?q=1#top", "https://example.org/path?q=1#top"),
        ("https://example.org", "https://example.org"),
        ("http://example.org/a", "http://example.org/a"),
        ("HTTPS://WWW.Example.ORG/Path", "https://www.example.org/Path"),
        ("  www.example.org.  ", "https://www.example.org"),
        ("<https://example.org>", "https://example.org"),
        ("example.org:8080/x", "https://example.org:8080/x"),
        ("bücher.de", "https://bücher.de"),
        ("пример.рф", "https://пример.рф"),
        ("xn--e1afmkfd.xn--p1ai", "https://xn--e1afmkfd.xn--p1ai"),
        ("learning-city.gov.uk/report", "https://learning-city.gov.uk/report"),
    ],
)
def test_normalize_url_accepts(text: str, expected: str) -> None:
    assert normalize_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "example",
        "localhost",
        "example.o",
        "example.123",
        "192.168.0.1",
        "www.exa mple.org",
        "ftp://example.org",
        "javascript:alert(1)",
        "anna@example.org",
        "https://user:pw@example.org",
        "https://-bad-.org",
        "https://example..org",
        "https://example.org:99999",
        "no website",
    ],
)
def test_normalize_url_rejects(text: str) -> None:
    assert normalize_url(text) is Refusal.BAD_URL


# --------------------------------------------------------------------------- person name and short text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Anna Schmidt", "Anna Schmidt"),
        ("  Jean   Dupont ", "Jean Dupont"),
        ("María José\nGarcía", "María José García"),
        ("Мария Иванова", "Мария Иванова"),
        ("محمد علي", "محمد علي"),
        ("王小明", "王小明"),
        ("O'Brien-Smith", "O'Brien-Smith"),
        ("Dr. A. N. Other", "Dr. A. N. Other"),
        ("X", "X"),
        ("A" * 120, "A" * 120),
    ],
)
def test_normalize_person_name_accepts(text: str, expected: str) -> None:
    assert normalize_person_name(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "123", "---", "😀", "A" * 121, "anna@example.org", "https://example.org", "www.anna.com"]
)
def test_normalize_person_name_rejects(text: str) -> None:
    assert normalize_person_name(text) is Refusal.BAD_NAME


def test_normalize_short_text() -> None:
    assert normalize_short_text("  Lifelong learning office \u200b") == "Lifelong learning office"
    assert normalize_short_text(" \n\u200b ") is Refusal.EMPTY
    assert normalize_short_text("") is Refusal.EMPTY
    assert normalize_short_text("x" * 300) == "x" * 300
    assert normalize_short_text("x" * 301) == TooManyChars(count=301, limit=300)
    assert normalize_short_text("abcdef", max_chars=5) == TooManyChars(count=6, limit=5)


# --------------------------------------------------------------------------- options and yes/no

OPTIONS = {
    "formal": ["Formal education", "Éducation formelle", "Educación formal", "formal"],
    "non_formal": ["Non-formal education", "Éducation non formelle", "Educación no formal", "non_formal"],
    "informal": ["Informal learning", "Apprentissage informel", "Aprendizaje informal", "informal"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Formal education", "formal"),
        ("  formal EDUCATION!  ", "formal"),
        ("education formelle", "formal"),
        ("Educacion no formal", "non_formal"),
        ("non-formal education", "non_formal"),
        ("non formal", "non_formal"),
        ("Non_formal.", "non_formal"),
        ("informal", "informal"),
        ("1", "formal"),
        ("2", "non_formal"),
        ("3.", "informal"),
        ("٢", "non_formal"),
        ("２", "non_formal"),
        ("Apprent", "informal"),  # unambiguous prefix
        ("inf", "informal"),
        ("non", "non_formal"),
        ("4", None),
        ("0", None),
        ("", None),
        ("...", None),
        ("education", None),  # matches nothing exactly, prefix of nothing
        ("educ", None),  # prefix of several options
        ("fo", None),  # prefix too short
        ("something else", None),
    ],
)
def test_match_option(text: str, expected: str | None) -> None:
    assert match_option(text, OPTIONS) == expected


def test_match_option_ambiguity_returns_none() -> None:
    options = {"yes_fully": ["Yes, fully"], "yes_partly": ["Yes, partly"], "same": ["Both"], "other": ["both"]}
    assert match_option("yes", options) is None
    assert match_option("yes fully", options) == "yes_fully"
    assert match_option("both", options) is None
    # A typed number that is also another option's label is ambiguous.
    numeric = {"few": ["2"], "many": ["10 or more"]}
    assert match_option("2", numeric) is None
    assert match_option("1", numeric) == "few"


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        ("en", "Yes", "yes"),
        ("en", "y", "yes"),
        ("en", "yeah!", "yes"),
        ("en", "Yep.", "yes"),
        ("en", "no", "no"),
        ("en", "N", "no"),
        ("en", "nope", "no"),
        ("fr", "Oui", "yes"),
        ("fr", "o", "yes"),
        ("fr", "non", "no"),
        ("fr", "yes", "yes"),
        ("es", "sí", "yes"),
        ("es", "Si", "yes"),
        ("es", "no", "no"),
        ("pt", "sim", "yes"),
        ("pt", "s", "yes"),
        ("pt", "não", "no"),
        ("pt", "nao", "no"),
        ("pt_BR", "Não", "no"),
        ("pt_PT", "sim", "yes"),
        ("ko", "네", "yes"),
        ("ko", "예", "yes"),
        ("ko", "아니요", "no"),
        ("ko", "yes", "yes"),
        ("ru", "Да", "yes"),
        ("ru", "нет", "no"),
        ("ru", "no", "no"),
        ("ar", "نعم", "yes"),
        ("ar", "لا", "no"),
        ("zh", "是", "yes"),
        ("zh", "是的", "yes"),
        ("zh", "有", "yes"),
        ("zh", "否", "no"),
        ("zh", "不", "no"),
        ("zh", "没有", "no"),
        ("zh", "没有。", "no"),
        ("en", "oui", None),  # French word, English contact
        ("en", "да", None),
        ("en", "maybe", None),
        ("en", "", None),
        ("en", "yes no", None),
    ],
)
def test_match_yes_no(locale: str, text: str, expected: str | None) -> None:
    assert match_yes_no(text, locale) == expected


def test_yes_no_words_cover_every_language_without_overlap() -> None:
    assert set(YES_WORDS) == set(NO_WORDS) == set(LOCALES)
    for language in LANGUAGES:  # regional variants (pt_BR, pt_PT) use their language's words
        assert match_yes_no(YES_WORDS[language.split("_")[0]][0], language) == "yes"
        assert match_yes_no(NO_WORDS[language.split("_")[0]][0], language) == "no"
    for lang in LOCALES:
        assert not set(YES_WORDS[lang]) & set(NO_WORDS[lang])
        for word in YES_WORDS[lang]:
            assert match_yes_no(word, lang) == "yes"
        for word in NO_WORDS[lang]:
            assert match_yes_no(word, lang) == "no"


# --------------------------------------------------------------------------- robustness


@settings(deadline=None)
@given(st.text(), st.sampled_from(LOCALES))
def test_validators_never_raise(text: str, locale: str) -> None:
    for result in (
        normalize_email(text),
        normalize_phone(text),
        normalize_url(text),
        normalize_person_name(text),
        normalize_short_text(text),
    ):
        assert isinstance(result, str | Rejection)
    assert match_option(text, OPTIONS) in {None, *OPTIONS}
    assert match_yes_no(text, locale) in {None, "yes", "no"}
