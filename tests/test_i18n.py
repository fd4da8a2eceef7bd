"""Tests for conversation.i18n: language choice, catalogs, plurals, formatting, checks."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message, TranslationError
from babel.messages.plurals import get_plural

from conversation import i18n
from conversation.i18n import (
    LANGUAGES,
    LOCALES_DIR,
    PLURAL_FORMS,
    CatalogError,
    Translator,
    UnknownLanguage,
    catalog_path,
    check_catalogs,
    current_language,
    get_translator,
    pick_language,
)
from conversation.state import Session

# ---------------------------------------------------------------------------
# Helpers: a temporary locales directory with hand-written .po files.


def po_text(language: str, body: str = "", plural_forms: str | None = None) -> str:
    """A .po file for `language` with a pybabel-style header and `body` entries."""
    if plural_forms is None:
        count, expr = PLURAL_FORMS[language]
        plural_forms = f"nplurals={count}; plural={expr};"
    return (
        'msgid ""\n'
        'msgstr ""\n'
        '"Project-Id-Version: test 0.1\\n"\n'
        f'"Language: {language}\\n"\n'
        f'"Plural-Forms: {plural_forms}\\n"\n'
        '"MIME-Version: 1.0\\n"\n'
        '"Content-Type: text/plain; charset=utf-8\\n"\n'
        '"Content-Transfer-Encoding: 8bit\\n"\n'
        "\n" + body
    )


def make_locales(root: Path, overrides: dict[str, str] | None = None) -> Path:
    """Write a valid, empty catalog for every language, then the `overrides` texts."""
    overrides = overrides or {}
    for language in LANGUAGES:
        path = catalog_path(language, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(overrides.get(language, po_text(language)), encoding="utf-8")
    return root


def translator(tmp_path: Path, language: str, body: str) -> Translator:
    return get_translator(language, make_locales(tmp_path, {language: po_text(language, body)}))


# ---------------------------------------------------------------------------
# pick_language


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("fr", "fr"),
        ("fr-CA", "fr"),
        ("pt-br", "pt_BR"),
        ("pt_BR", "pt_BR"),
        ("pt-BR", "pt_BR"),
        ("pt-PT", "pt_PT"),
        ("pt", "pt_PT"),  # the default variant of a bare "pt" (REGIONAL_DEFAULTS)
        ("pt-AO", "pt_PT"),
        ("ko", "ko"),
        ("ko-KR", "ko"),
        ("zh-hans", "zh"),
        ("zh-CN", "zh"),
        ("zh-hant-tw", "zh"),
        ("es-419", "es"),
        ("ES", "es"),
        ("ar-EG", "ar"),
        ("ru", "ru"),
        ("en-GB", "en"),
        ("de", "en"),
        ("de-AT", "en"),
        ("", "en"),
        ("  ", "en"),
        (None, "en"),
    ],
)
def test_pick_language(code: str | None, expected: str) -> None:
    assert pick_language(code) == expected


@pytest.mark.parametrize(("code", "expected"), [("pt", "pt_BR"), ("pt-AO", "pt_BR"), ("pt-pt", "pt_PT"), ("fr", "fr")])
def test_pick_language_with_the_teams_portuguese_default(code: str, expected: str) -> None:
    assert pick_language(code, {"pt": "pt_BR"}) == expected


def test_legacy_portuguese_code_means_the_brazilian_catalog() -> None:
    # Contacts stored before the split had "pt", which was the Brazilian catalog.
    assert current_language("pt") == "pt_BR"
    assert get_translator("pt") is get_translator("pt_BR")
    assert Session(language="pt").language == "pt_BR"
    assert Session.model_validate_json('{"language": "pt"}').language == "pt_BR"
    assert current_language("fr") == "fr"


# ---------------------------------------------------------------------------
# Loading and fallback


def test_missing_fuzzy_and_empty_strings_fall_back_to_english(tmp_path: Path) -> None:
    fr = translator(
        tmp_path,
        "fr",
        'msgid "Hello"\nmsgstr "Bonjour"\n\n'
        '#, fuzzy\nmsgid "Goodbye"\nmsgstr "Au revoir"\n\n'
        'msgid "Thanks"\nmsgstr ""\n\n'
        'msgctxt "button"\nmsgid "Next"\nmsgstr "Suivant"\n',
    )
    assert fr.gettext("Hello") == "Bonjour"
    assert fr.gettext("Goodbye") == "Goodbye"
    assert fr.gettext("Thanks") == "Thanks"
    assert fr.gettext("Not in the catalog") == "Not in the catalog"
    assert fr.gettext("") == ""
    assert fr.gettext("Next") == "Next"  # translated only in the context "button"


def test_translators_are_cached_and_unknown_language_is_named(tmp_path: Path) -> None:
    make_locales(tmp_path)
    assert get_translator("ru", tmp_path) is get_translator("ru", tmp_path)
    with pytest.raises(UnknownLanguage, match="'de'"):
        get_translator("de", tmp_path)
    with pytest.raises(UnknownLanguage):
        get_translator("pt-br", tmp_path)


def test_english_needs_no_catalog_but_others_do(tmp_path: Path) -> None:
    en = get_translator("en", tmp_path)
    assert en.t("Hello {name}", name="Ana") == "Hello Ana"
    with pytest.raises(CatalogError, match=r"fr/LC_MESSAGES/messages\.po"):
        get_translator("fr", tmp_path)


def test_unparsable_catalog_raises_naming_file(tmp_path: Path) -> None:
    make_locales(tmp_path, {"es": po_text("es", "nonsense here\n")})
    with pytest.raises(CatalogError, match=r"es/LC_MESSAGES/messages\.po"):
        get_translator("es", tmp_path)


def test_invalid_plural_expression_raises_and_is_reported(tmp_path: Path) -> None:
    make_locales(tmp_path, {"ru": po_text("ru", plural_forms="nplurals=3; plural=(n %% 10 ? 1 : import);")})
    with pytest.raises(CatalogError, match=r"ru/LC_MESSAGES/messages\.po"):
        get_translator("ru", tmp_path)
    problems = check_catalogs(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{catalog_path('ru', tmp_path)}: Plural-Forms expression")


def test_t_and_n_format_placeholders(tmp_path: Path) -> None:
    es = translator(
        tmp_path,
        "es",
        'msgid "Hello {name}"\nmsgstr "Hola {name}"\n\n'
        'msgid "{count} city in {country}"\nmsgid_plural "{count} cities in {country}"\n'
        'msgstr[0] "{count} ciudad en {country}"\nmsgstr[1] "{count} ciudades en {country}"\n',
    )
    assert es.t("Hello {name}", name="Ana") == "Hola Ana"
    assert es.n("{count} city in {country}", "{count} cities in {country}", 1, country="Chile") == "1 ciudad en Chile"
    assert es.n("{count} city in {country}", "{count} cities in {country}", 3, country="Chile") == (
        "3 ciudades en Chile"
    )
    # Untranslated: English plural rule.
    assert es.n("{count} file", "{count} files", 1) == "1 file"
    assert es.n("{count} file", "{count} files", 0) == "0 files"


def test_broken_placeholder_falls_back_to_english_at_format_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fr = translator(
        tmp_path,
        "fr",
        'msgid "Hello {name}"\nmsgstr "Bonjour {nom}"\n\n'
        'msgid "Due {date}"\nmsgstr "Échéance {date"\n\n'
        'msgid "{count} answer"\nmsgid_plural "{count} answers"\n'
        'msgstr[0] "{count} réponse"\nmsgstr[1] "{nombre} réponses"\n',
    )
    with caplog.at_level(logging.WARNING, logger="conversation.i18n"):
        assert fr.t("Hello {name}", name="Ana") == "Hello Ana"
        assert fr.t("Due {date}", date="mars 2019") == "Due mars 2019"
        assert fr.n("{count} answer", "{count} answers", 1) == "1 réponse"
        assert fr.n("{count} answer", "{count} answers", 4) == "4 answers"
    assert len(caplog.records) == 3
    assert "fr translation of 'Hello {name}'" in caplog.records[0].getMessage()


# ---------------------------------------------------------------------------
# Plural forms

RU_WORDS = (
    'msgid "{count} word"\nmsgid_plural "{count} words"\n'
    'msgstr[0] "{count} слово"\nmsgstr[1] "{count} слова"\nmsgstr[2] "{count} слов"\n'
)
AR_WORDS = (
    'msgid "{count} word"\nmsgid_plural "{count} words"\n'
    'msgstr[0] "لا كلمات"\n'
    'msgstr[1] "كلمة واحدة"\n'
    'msgstr[2] "كلمتان"\n'
    'msgstr[3] "{count} كلمات"\n'
    'msgstr[4] "{count} كلمة"\n'
    'msgstr[5] "{count} كلمةً"\n'
)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, "1 слово"), (2, "2 слова"), (5, "5 слов"), (11, "11 слов"), (21, "21 слово"), (22, "22 слова")],
)
def test_russian_three_plural_forms(tmp_path: Path, n: int, expected: str) -> None:
    ru = translator(tmp_path, "ru", RU_WORDS)
    assert ru.n("{count} word", "{count} words", n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "لا كلمات"), (1, "كلمة واحدة"), (2, "كلمتان"), (3, "3 كلمات"), (11, "11 كلمة"), (100, "100 كلمةً")],
)
def test_arabic_six_plural_forms(tmp_path: Path, n: int, expected: str) -> None:
    ar = translator(tmp_path, "ar", AR_WORDS)
    assert ar.n("{count} word", "{count} words", n) == expected


def test_incomplete_plural_entry_falls_back_to_english_whole(tmp_path: Path) -> None:
    ru = translator(
        tmp_path,
        "ru",
        'msgid "{count} word"\nmsgid_plural "{count} words"\n'
        'msgstr[0] "{count} слово"\nmsgstr[1] ""\nmsgstr[2] "{count} слов"\n',
    )
    assert ru.n("{count} word", "{count} words", 1) == "1 word"
    assert ru.n("{count} word", "{count} words", 5) == "5 words"


def test_plural_table_agrees_with_babel_where_conventions_match() -> None:
    for language in ("en", "ar", "ru", "zh"):
        assert PLURAL_FORMS[language][0] == get_plural(language).num_plurals, language


# ---------------------------------------------------------------------------
# Formatting

NEW_YEARS_EVE = dt.date(2021, 12, 31)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "31 December 2021"),
        ("fr", "31 décembre 2021"),
        ("es", "31 de diciembre de 2021"),
        ("pt_BR", "31 de dezembro de 2021"),
        ("pt_PT", "31 de dezembro de 2021"),
        ("ko", "2021년 12월 31일"),
        ("ru", "31 декабря 2021"),
        ("zh", "2021年12月31日"),
        ("ar", "ديسمبر"),
    ],
)
def test_format_date(language: str, expected: str) -> None:
    assert expected in get_translator(language).format_date(NEW_YEARS_EVE)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "March 2019"),
        ("fr", "mars 2019"),
        ("es", "marzo de 2019"),
        ("pt_BR", "março de 2019"),
        ("pt_PT", "março de 2019"),
        ("ko", "2019년 3월"),
        ("ru", "март 2019"),
        ("zh", "2019年3月"),
        ("ar", "مارس 2019"),
    ],
)
def test_format_month(language: str, expected: str) -> None:
    assert expected in get_translator(language).format_month(2019, 3)


def test_format_number_and_datetime() -> None:
    assert get_translator("en").format_number(1234.5) == "1,234.5"
    assert get_translator("es").format_number(1234567.5) == "1.234.567,5"
    moment = dt.datetime(2021, 12, 31, 15, 4, tzinfo=dt.UTC)
    assert "16:04" in get_translator("fr").format_datetime(moment, "Europe/Paris")
    assert "15:04" in get_translator("en").format_datetime(moment)  # en_GB: 24-hour clock


@pytest.mark.parametrize(
    ("language", "name"),
    [
        ("en", "English"),
        ("fr", "Français"),
        ("es", "Español"),
        ("ar", "العربية"),
        ("zh", "中文"),
        ("ru", "Русский"),
        ("pt_BR", "Português (Brasil)"),
        ("pt_PT", "Português (Portugal)"),
        ("ko", "한국어"),
    ],
)
def test_language_name(language: str, name: str) -> None:
    assert get_translator(language).language_name() == name


def test_is_rtl() -> None:
    assert [language for language in LANGUAGES if get_translator(language).is_rtl] == ["ar"]


# ---------------------------------------------------------------------------
# check_catalogs


def test_repository_catalogs_are_clean() -> None:
    assert check_catalogs(LOCALES_DIR) == []
    assert check_catalogs() == []


def test_clean_temporary_catalogs(tmp_path: Path) -> None:
    make_locales(tmp_path, {"ru": po_text("ru", RU_WORDS), "ar": po_text("ar", AR_WORDS)})
    assert check_catalogs(tmp_path, required_messages=["{count} word"]) == [
        # Only English and the two filled catalogs exist with the entry; the rest lack it.
        f"{catalog_path(language, tmp_path)}: msgid '{{count}} word': required message missing"
        for language in ("fr", "es", "zh", "pt_BR", "pt_PT", "ko")
    ]


def test_check_detects_placeholder_mismatch(tmp_path: Path) -> None:
    make_locales(
        tmp_path,
        {
            "fr": po_text(
                "fr",
                'msgid "Hello {name}"\nmsgstr "Bonjour {nom}"\n\n'
                'msgid "{count} city"\nmsgid_plural "{count} cities"\n'
                'msgstr[0] "{count} ville"\nmsgstr[1] "{n} villes"\n\n'
                'msgid "Thanks, {name}"\nmsgstr "Merci, {name"\n',
            )
        },
    )
    problems = check_catalogs(tmp_path)
    path = catalog_path("fr", tmp_path)
    assert len(problems) == 3
    assert problems[0].startswith(f"{path}: msgid 'Hello {{name}}': ")
    assert "{nom}" in problems[0] and "{name}" in problems[0]
    assert problems[1].startswith(f"{path}: msgid '{{count}} city': ")
    assert "{n}" in problems[1]
    assert problems[2].startswith(f"{path}: msgid 'Thanks, {{name}}': malformed placeholder")


def test_check_allows_plural_forms_without_count(tmp_path: Path) -> None:
    make_locales(tmp_path, {"ar": po_text("ar", AR_WORDS)})
    assert check_catalogs(tmp_path) == []


def test_check_detects_wrong_nplurals(tmp_path: Path) -> None:
    make_locales(
        tmp_path,
        {
            "ru": po_text(
                "ru",
                'msgid "{count} word"\nmsgid_plural "{count} words"\n'
                'msgstr[0] "{count} слово"\nmsgstr[1] "{count} слов"\n',
                plural_forms="nplurals=2; plural=(n != 1);",
            ),
            "fr": po_text("fr", plural_forms="nplurals=2; plural=(n != 1);"),
        },
    )
    problems = check_catalogs(tmp_path)
    ru_path, fr_path = catalog_path("ru", tmp_path), catalog_path("fr", tmp_path)
    assert any(p.startswith(f"{ru_path}: Plural-Forms nplurals=2") and "nplurals=3" in p for p in problems)
    # An entry with the wrong number of forms for the catalog's own header passes babel's
    # check here (2 forms, header says 2); the header itself is what is wrong.
    assert any(p.startswith(f"{fr_path}: Plural-Forms expression '(n != 1)' picks form 1 for n=0") for p in problems)
    assert len(problems) == 2


def test_check_reports_partly_translated_plural_entry(tmp_path: Path) -> None:
    # read_po pads missing forms with "", so a missing form shows up as an empty one.
    make_locales(
        tmp_path,
        {
            "ru": po_text(
                "ru",
                'msgid "{count} word"\nmsgid_plural "{count} words"\n'
                'msgstr[0] "{count} слово"\nmsgstr[1] "{count} слов"\n',
            )
        },
    )
    assert check_catalogs(tmp_path) == [
        f"{catalog_path('ru', tmp_path)}: msgid '{{count}} word': plural form(s) 2 empty; the entry shows in English"
    ]


def test_check_reports_babel_checker_errors_with_msgid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # read_po already normalises what babel's built-in checkers look at, so plug in a
    # checker of the same shape to see its TranslationError reported.
    def no_exclamation(catalog: Catalog | None, message: Message) -> None:
        if isinstance(message.string, str) and "!" in message.string:
            raise TranslationError("no exclamation marks, please")

    monkeypatch.setattr(i18n, "_CHECKERS", (*i18n._CHECKERS, no_exclamation))
    make_locales(tmp_path, {"es": po_text("es", 'msgid "Hello"\nmsgstr "¡Hola!"\n')})
    assert check_catalogs(tmp_path) == [f"{catalog_path('es', tmp_path)}: msgid 'Hello': no exclamation marks, please"]


def test_check_detects_more_forms_than_the_header_allows(tmp_path: Path) -> None:
    make_locales(
        tmp_path,
        {
            "zh": po_text(
                "zh",
                'msgid "{count} word"\nmsgid_plural "{count} words"\n'
                'msgstr[0] "{count} 个词"\nmsgstr[1] "{count} 个词"\n',
            )
        },
    )
    problems = check_catalogs(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{catalog_path('zh', tmp_path)}: does not parse")


def test_check_detects_unparsable_file(tmp_path: Path) -> None:
    make_locales(tmp_path, {"zh": po_text("zh", 'msgid "Hello"\n'), "pt_BR": "\xff garbage"})
    problems = check_catalogs(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith(f"{catalog_path('zh', tmp_path)}: does not parse")
    assert "'Hello'" in problems[0]
    assert problems[1].startswith(f"{catalog_path('pt_BR', tmp_path)}: does not parse")


def test_check_detects_missing_catalog_and_wrong_language(tmp_path: Path) -> None:
    make_locales(tmp_path, {"es": po_text("pt_BR"), "pt_PT": po_text("pt_BR")})
    catalog_path("ru", tmp_path).unlink()
    catalog_path("en", tmp_path).unlink()  # English is the source; it may have no catalog
    assert check_catalogs(tmp_path) == [
        f"{catalog_path('es', tmp_path)}: Language header is 'pt_BR', expected 'es'",
        f"{catalog_path('ru', tmp_path)}: catalog file missing",
        f"{catalog_path('pt_PT', tmp_path)}: Language header is 'pt_BR', expected 'pt_PT'",
    ]


def test_check_detects_missing_fuzzy_and_untranslated_required_messages(tmp_path: Path) -> None:
    body = 'msgid "Welcome"\nmsgstr ""\n\n#, fuzzy\nmsgid "Submit"\nmsgstr "Envoyer"\n\nmsgid "Back"\nmsgstr "Retour"\n'
    make_locales(tmp_path, {lang: po_text(lang, body) for lang in LANGUAGES if lang != "fr"})
    catalog_path("fr", tmp_path).write_text(po_text("fr", 'msgid "Back"\nmsgstr "Retour"\n'), encoding="utf-8")
    problems = check_catalogs(tmp_path, required_messages=iter(["Welcome", "Submit", "Back"]))
    fr_path = catalog_path("fr", tmp_path)
    es_path = catalog_path("es", tmp_path)
    assert f"{fr_path}: msgid 'Welcome': required message missing" in problems
    assert f"{fr_path}: msgid 'Submit': required message missing" in problems
    assert f"{es_path}: msgid 'Welcome': required message untranslated" in problems
    assert f"{es_path}: msgid 'Submit': required message is fuzzy (not yet approved)" in problems
    assert not any("'Back'" in p for p in problems)
    assert not any(str(catalog_path("en", tmp_path)) in p for p in problems)  # English is the source
    assert len(problems) == 2 + 2 * (len(LANGUAGES) - 2)  # fr: 2; every other translation (not en): 2 each


@pytest.mark.parametrize(
    ("language", "sentence", "date"),
    [
        ("en", "Submission deadline is {date}.", "15 January 2022"),
        ("fr", "La date limite de soumission est fixée au {date}.", "15 janvier 2022"),
        ("ru", "Срок представления отчета — {date}", "15 января 2022\u202fг."),
        ("zh", "提交截止日期为{date}。", "2022年1月15日"),
    ],
)
def test_introduction_names_the_effective_deadline(language: str, sentence: str, date: str) -> None:
    from conversation.loader import load_survey
    from conversation.render import Renderer
    from conversation.state import Report, ShowIntro

    survey = load_survey().model_copy(update={"deadline": dt.date(2022, 1, 15)})  # as DEADLINE=2022-01-15 does
    tr = get_translator(language)
    text = Renderer(survey).intro(ShowIntro(started=False), Report(), tr).text
    assert sentence.format(date=date) in text
    assert tr.format_date(dt.date(2021, 12, 31)) not in text  # the questionnaire file's own deadline
    assert "{deadline}" not in text
