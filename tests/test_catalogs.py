"""Every catalog is complete for the bot and the questionnaire, the template matches the code, and each
language reads as a native reader expects (typography, plural forms, placeholders, names)."""

import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.dates import get_month_names
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from conversation.babel_extract import survey_messages
from conversation.i18n import LANGUAGES, PLURAL_FORMS, babel_locale, catalog_path, check_catalogs
from conversation.loader import load_survey

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "locales" / "messages.pot"
TRANSLATIONS = [language for language in LANGUAGES if language != "en"]

# Plural forms each language needs (GNU gettext conventions), written out here rather than read
# from conversation.i18n, so a wrong entry there is caught. Korean and Chinese have one form.
NPLURALS = {"en": 2, "fr": 2, "es": 2, "ar": 6, "zh": 1, "ru": 3, "pt_BR": 2, "pt_PT": 2, "ko": 1}

# Han ideographs, CJK symbols and punctuation, full-width forms.
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
ASCII_MARK_NEXT_TO_CJK = re.compile(rf"(?<=[{CJK}])[,:;?()]|[,:;?()](?=[{CJK}])")


def msgids(path: Path) -> set[str]:
    with open(path, "rb") as fh:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}


def catalog(language: str) -> Catalog:
    with catalog_path(language).open("rb") as fh:
        return read_po(fh, locale=babel_locale(language))


def forms_of(message: Message) -> list[str]:
    """The translation of an entry, one item per plural form ("" where untranslated)."""
    if isinstance(message.string, list | tuple):
        return [str(form or "") for form in message.string]
    return [message.string or ""]


def translated(language: str) -> list[tuple[Message, str]]:
    """(entry, one translated form) for every non-empty translation of the language's catalog."""
    return [(message, form) for message in list(catalog(language))[1:] for form in forms_of(message) if form]


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_template_is_up_to_date_with_the_code(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "t",
            "-k",
            "n:1,2",
            "-k",
            "pt:1c,2",
            "-k",
            "npt:1c,2,3",
            "--no-wrap",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    missing = msgids(fresh) - msgids(POT)
    assert not missing, f"run `python tools/catalogs.py update`; not in the template: {sorted(missing)[:5]}"


def test_every_catalog_complete_and_consistent():
    required = [*survey_messages(load_survey()), *msgids(POT)]
    assert check_catalogs(required_messages=required) == []


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_catalog_translates_every_message(language: str) -> None:
    required = set(survey_messages(load_survey())) | msgids(POT)
    entries = {m.id if isinstance(m.id, str) else m.id[0]: m for m in list(catalog(language))[1:]}
    untranslated = sorted(
        msgid for msgid in required if msgid not in entries or entries[msgid].fuzzy or not all(forms_of(entries[msgid]))
    )
    assert not untranslated, f"{language}: {len(untranslated)} untranslated, e.g. {untranslated[:3]}"


def test_every_language_has_a_catalog():
    for lang in LANGUAGES:
        assert (ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").is_file()


def test_regional_variants_and_korean_have_their_own_directories():
    assert {"pt_BR", "pt_PT", "ko"} <= set(LANGUAGES)
    assert "pt" not in LANGUAGES and not (ROOT / "locales" / "pt").exists()


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_forms_per_language(language: str) -> None:
    count, _expression = PLURAL_FORMS[language]
    assert count == NPLURALS[language]
    if language in ("en", "ar", "zh", "ru", "ko"):  # where CLDR agrees with gettext (see conversation.i18n)
        assert get_plural(babel_locale(language)).num_plurals == count
    if language == "en" and not catalog_path(language).is_file():
        return
    found = catalog(language)
    assert found.num_plurals == count
    for message in list(found)[1:]:
        if message.pluralizable and any(forms_of(message)):
            assert len(forms_of(message)) == count, (language, message.id)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_placeholders_identical_to_the_source(language: str) -> None:
    for message, form in translated(language):
        source = str(message.id[1] if isinstance(message.id, list | tuple) else message.id)
        expected = placeholders(source)
        found = placeholders(form)
        if message.pluralizable:  # a form may say "one"/"two" in words instead of {count}
            expected, found = expected - {"count"}, found - {"count"}
        assert found == expected, (language, source, form)


def test_chinese_uses_full_width_punctuation_next_to_chinese_text() -> None:
    offending = [form for _, form in translated("zh") if ASCII_MARK_NEXT_TO_CJK.search(form)]
    assert not offending, offending[:3]


def test_the_chinese_check_sees_ascii_punctuation() -> None:
    assert ASCII_MARK_NEXT_TO_CJK.search("请选择一个选项,或直接输入。")
    assert ASCII_MARK_NEXT_TO_CJK.search("提交时间(UTC)")
    assert not ASCII_MARK_NEXT_TO_CJK.search("请选择一个选项，或直接输入（UTC）：例如 03/2019。")


def test_french_uses_the_networks_current_name() -> None:
    forms = [(message.id, form) for message, form in translated("fr")]
    assert not [form for _, form in forms if "Réseau mondial UNESCO des villes apprenantes" in form]
    named = [form for msgid, form in forms if "UNESCO Global Network of Learning Cities" in str(msgid)]
    assert named and all("Réseau mondial des villes apprenantes de l'UNESCO" in form for form in named)


def test_arabic_writes_sizes_in_arabic_and_months_in_one_style() -> None:
    forms = [form for _, form in translated("ar")]
    assert not [form for form in forms if re.search(r"\b[MK]iB\b", form)]
    assert any("ميغابايت" in form for form in forms) and any("كيلوبايت" in form for form in forms)
    # Dates the bot writes use babel's Arabic month names (مارس, سبتمبر); the catalog uses the same, not
    # the Levantine ones (آذار, أيلول) or both side by side.
    babel_months = set(get_month_names("wide", locale="ar").values())
    levantine = ("كانون الثاني", "شباط", "آذار", "نيسان", "أيار", "حزيران", "تموز", "أيلول", "تشرين", "كانون الأول")
    assert not babel_months & set(levantine)
    assert not [form for form in forms if any(name in form for name in levantine)]
    assert any("سبتمبر" in form for form in forms)


# Words that tell Brazilian from European Portuguese in this bot's texts (file, team, mayor).
BRAZILIAN = re.compile(r"\b(arquivos?|equipe|prefeit[oa]s?)\b", re.IGNORECASE)
EUROPEAN = re.compile(r"\b(ficheiros?|equipa|presidente da câmara)\b", re.IGNORECASE)


@pytest.mark.parametrize(("language", "own", "other"), [("pt_BR", BRAZILIAN, EUROPEAN), ("pt_PT", EUROPEAN, BRAZILIAN)])
def test_each_portuguese_catalog_is_its_own_variant(
    language: str, own: re.Pattern[str], other: re.Pattern[str]
) -> None:
    forms = [form for _, form in translated(language)]
    assert any(own.search(form) for form in forms), f"{language}: no {own.pattern} anywhere"
    assert not [form for form in forms if other.search(form)], language
