"""Translations and locale-aware formatting for the questionnaire's languages.

Rules of this module:
- The `.po` files under `locales/<lang>/LC_MESSAGES/messages.po` are the source of
  truth; they are parsed at start-up (no compiled `.mo` files in the repository) and
  turned into an in-memory gettext catalog, cached per language and directory.
- English is the source language: a string that is missing, empty or fuzzy in a
  catalog falls back to its English source, for that string only. A plural entry is
  used only when every form is translated; otherwise the whole entry is English.
- Placeholders are `str.format` style `{name}` (python-brace-format), never named
  like the parameters of `t`/`n` (`message`, `singular`, `plural`). `t`/`n` fill
  them; if a translation does not format with the given parameters, the English
  source is used instead and a warning is logged, so a contact never sees a crash.
- Plural rules are the gettext conventions in `PLURAL_FORMS`; `check_catalogs`
  holds every catalog to them and reports problems naming file and msgid.
- A language is a catalog directory name: a bare language ("fr") or a regional variant
  ("pt_BR", "pt_PT"). Telegram's `language_code` is mapped by `pick_language`; codes
  stored before a language was split into variants are mapped by `LEGACY_LANGUAGES`.
- Dates, months and numbers are formatted by babel in the translator's locale.
- Nothing here talks to Telegram; the conversation engine receives a ready
  `Translator` and stays free of I/O.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import gettext
import logging
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Protocol

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.dates import format_skeleton as _babel_format_skeleton
from babel.dates import get_timezone
from babel.messages.catalog import Catalog, Message, TranslationError
from babel.messages.checkers import checkers as _babel_checkers
from babel.messages.checkers import python_format as _babel_python_format_checker
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.numbers import format_decimal
from babel.support import Translations

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "ar", "zh", "ru", "pt_BR", "pt_PT", "ko")
DEFAULT_LANGUAGE = "en"

#: The variant a bare language code (Telegram's "pt", or "pt-AO") stands for, when a language
#: has regional variants only. The bot's settings may choose another (`PORTUGUESE_DEFAULT`).
REGIONAL_DEFAULTS: Mapping[str, str] = {"pt": "pt_PT"}

#: Codes stored before a language was split into variants, and the catalog they were using
#: ("pt" was the Brazilian catalog).
LEGACY_LANGUAGES: Mapping[str, str] = {"pt": "pt_BR"}
RTL_LANGUAGES = frozenset({"ar"})

#: Directory holding `messages.pot` and `<lang>/LC_MESSAGES/messages.po`.
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"

#: The babel locale used for formatting, when it differs from the language code.
# en_GB writes dates as the form does ("31 December 2021").
BABEL_LOCALES: Mapping[str, str] = {"en": "en_GB", "zh": "zh_Hans_CN"}

#: gettext Plural-Forms every catalog must declare: (nplurals, plural expression).
#: These are the GNU gettext / translation-tool conventions. For ar, ru, zh, ko and en
#: they agree with babel's `get_plural`; for fr, es and pt recent babel (CLDR 42+)
#: adds a third "many" form for millions, which translation tools do not use.
#: Korean, like Chinese, has a single form.
PLURAL_FORMS: Mapping[str, tuple[int, str]] = {
    "en": (2, "(n != 1)"),
    "fr": (2, "(n > 1)"),
    "es": (2, "(n != 1)"),
    "ar": (
        6,
        "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5)",
    ),
    "zh": (1, "0"),
    "ru": (3, "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)"),
    "pt_BR": (2, "(n != 1)"),
    "pt_PT": (2, "(n != 1)"),
    "ko": (1, "0"),
}

# Plural expressions are compared by evaluating both over this range of counts.
_PLURAL_SAMPLE = range(1001)

# The project formats with `str.format`; a "%" in a message is literal text, so
# babel's %-format checker would only report false positives. `_placeholder_problems`
# checks the brace placeholders instead. Babel's other checkers (plural count, and
# any registered through the `babel.checkers` entry point) run as usual.
_CHECKERS: tuple[Callable[[Catalog | None, Message], object], ...] = tuple(
    checker for checker in _babel_checkers if checker is not _babel_python_format_checker
)

# Errors `str.format` raises for a template that does not fit its parameters.
_FORMAT_ERRORS = (KeyError, IndexError, ValueError, AttributeError, TypeError)

_FIELD_ROOT = re.compile(r"[.\[]")


class UnknownLanguage(ValueError):
    """A language code that is not one of `LANGUAGES`."""

    def __init__(self, language: str) -> None:
        """Build the error for `language`.

        Args:
            language: The code that was asked for.
        """
        super().__init__(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
        self.language = language


class CatalogError(Exception):
    """A catalog file that is missing or cannot be read; the message names the file."""


def pick_language(code: str | None, regional_defaults: Mapping[str, str] | None = None) -> str:
    """Map a Telegram `language_code` (IETF tag) to one of `LANGUAGES`.

    A language with a region that has its own catalog gets it ("pt-br" → "pt_BR",
    "pt-PT" → "pt_PT"); otherwise the primary subtag counts: "es-419" → "es",
    "ar-EG" → "ar", and every Chinese tag ("zh-hans", "zh-CN", also "zh-hant") → "zh",
    the one Chinese catalog (Simplified). A language that exists only as regional
    variants ("pt", "pt-AO") gets its default variant. Anything else, or no code,
    gives `DEFAULT_LANGUAGE`.

    Args:
        code: The user's `language_code`, possibly None or empty.
        regional_defaults: The variant each bare language stands for; `REGIONAL_DEFAULTS`
            when None.

    Returns:
        A member of `LANGUAGES`.
    """
    if not code:
        return DEFAULT_LANGUAGE
    subtags = code.strip().replace("_", "-").split("-")
    primary = subtags[0].lower()
    regions = [tag.upper() for tag in subtags[1:] if len(tag) == 2 or (len(tag) == 3 and tag.isdigit())]
    if regions and f"{primary}_{regions[0]}" in LANGUAGES:
        return f"{primary}_{regions[0]}"
    if primary in LANGUAGES:
        return primary
    default = (REGIONAL_DEFAULTS if regional_defaults is None else regional_defaults).get(primary)
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def current_language(code: str) -> str:
    """Return the language a stored code means today: legacy codes map to their catalog.

    Args:
        code: A language code read from storage or a saved session.

    Returns:
        `code`, or what it was replaced by ("pt" → "pt_BR").
    """
    return LEGACY_LANGUAGES.get(code, code)


def telegram_language_code(language: str) -> str:
    """Return the two-letter code Telegram's `setMyCommands` takes for a language ("pt_BR" → "pt").

    Args:
        language: A member of `LANGUAGES`.

    Returns:
        The ISO 639-1 code.
    """
    return language.split("_", 1)[0]


def catalog_path(language: str, locales_dir: Path | None = None) -> Path:
    """Return where the `.po` catalog of `language` lives.

    Args:
        language: A language code.
        locales_dir: The locales directory; `LOCALES_DIR` when None.

    Returns:
        `<locales_dir>/<language>/LC_MESSAGES/messages.po`.
    """
    return (locales_dir or LOCALES_DIR) / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def babel_locale(language: str) -> Locale:
    """Return the babel locale used to format dates and numbers for `language`.

    Args:
        language: A member of `LANGUAGES`.

    Returns:
        The parsed locale ("zh" formats as Simplified Chinese, China).
    """
    return Locale.parse(BABEL_LOCALES.get(language, language))


def _format_with_fallback(language: str, source: str, translated: str, params: Mapping[str, object]) -> str:
    """Format `translated` with `params`, or the English `source` if that fails."""
    if translated == source:
        return source.format(**params)
    try:
        return translated.format(**params)
    except _FORMAT_ERRORS as exc:
        logger.warning(
            "%s translation of %r does not format (%s: %s); using the English source",
            language,
            source,
            type(exc).__name__,
            exc,
        )
        return source.format(**params)


def _forms(message: Message) -> list[str]:
    """The translation of `message` as a list: one item, or one per plural form."""
    if message.string is None:
        return [""]
    if isinstance(message.string, str):
        return [message.string]
    return list(message.string)


def _is_translated(message: Message) -> bool:
    """Whether every form of `message` has a non-empty translation."""
    forms = _forms(message)
    return bool(forms) and all(forms)


def _usable_catalog(catalog: Catalog) -> Catalog:
    """Return a copy of `catalog` holding only the entries used at run time.

    Fuzzy and untranslated entries are dropped, and so are plural entries with an
    empty form or the wrong number of forms, so each falls back to English whole.
    """
    usable = copy.deepcopy(catalog)
    for message in list(usable)[1:]:  # the first is the header
        wrong_count = message.pluralizable and len(_forms(message)) != usable.num_plurals
        if message.fuzzy or not _is_translated(message) or wrong_count:
            usable.delete(message.id, context=message.context)
    return usable


class Translator(Protocol):
    """What the engine, rendering and the bot need from a language: its texts and its formats.

    `CatalogTranslator` is the implementation; everything else types against this.
    """

    @property
    def language(self) -> str:
        """The language code, a member of `LANGUAGES`."""
        ...

    @property
    def is_rtl(self) -> bool:
        """Whether the language is written right to left."""
        ...

    def gettext(self, message: str) -> str:
        """Translate one source string."""
        ...

    def t(self, message: str, **params: object) -> str:
        """Translate and fill named placeholders."""
        ...

    def n(self, singular: str, plural: str, count: int, **params: object) -> str:
        """Translate a plural form and fill placeholders (`count` included)."""
        ...

    def format_date(self, d: dt.date, format: str = "long") -> str:
        """A date in the language's style."""
        ...

    def format_month(self, year: int, month: int) -> str:
        """A month and year in words."""
        ...

    def format_number(self, number: int | float | Decimal) -> str:
        """A number in the language's style."""
        ...

    def format_datetime(self, moment: dt.datetime, tz: dt.tzinfo | str | None = None, format: str = "medium") -> str:
        """A date and time in the language's style, shown in time zone `tz`."""
        ...

    def language_name(self) -> str:
        """The language named in itself."""
        ...


@dataclass(frozen=True, eq=False)
class CatalogTranslator:
    """One language's translations (from its `.po` catalog) and formatting; immutable and safe to share.

    Build it with `get_translator` (from the `.po` files) or `CatalogTranslator.from_catalog`.

    Attributes:
        language: The language code, a member of `LANGUAGES`.
        locale: The babel locale used for dates and numbers.
    """

    language: str
    locale: Locale
    _translations: gettext.NullTranslations = field(repr=False)

    @classmethod
    def from_catalog(cls, language: str, catalog: Catalog | None = None) -> CatalogTranslator:
        """Build a translator from a parsed catalog.

        Args:
            language: A member of `LANGUAGES`.
            catalog: The language's catalog; None means no translations (English
                source for every string). The catalog is not modified.

        Returns:
            The translator.

        Raises:
            UnknownLanguage: If `language` is not in `LANGUAGES`.
        """
        if language not in LANGUAGES:
            raise UnknownLanguage(language)
        locale = babel_locale(language)
        if catalog is None:
            catalog = Catalog(locale=locale, domain=DOMAIN, fuzzy=False)
        buffer = BytesIO()
        write_mo(buffer, _usable_catalog(catalog), use_fuzzy=False)
        buffer.seek(0)
        return cls(language=language, locale=locale, _translations=Translations(buffer, domain=DOMAIN))

    @property
    def is_rtl(self) -> bool:
        """Whether the language is written right to left."""
        return self.language in RTL_LANGUAGES

    def gettext(self, message: str) -> str:
        """Translate `message`, or return it unchanged if it has no usable translation.

        Args:
            message: The English source string.

        Returns:
            The translation or `message`.
        """
        if not message:  # gettext("") would return the catalog header
            return message
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Translate a message whose form depends on the count `n`.

        Args:
            singular: English singular source.
            plural: English plural source.
            n: The count that selects the form.

        Returns:
            The form for `n` in this language, or the English form if untranslated.
        """
        return self._translations.ngettext(singular, plural, n)

    def t(self, message: str, **params: object) -> str:
        """Translate `message` and fill its `{name}` placeholders.

        Args:
            message: The English source, a `str.format` template.
            **params: Values for the placeholders (none may be called `message`).

        Returns:
            The formatted translation; the formatted English source if the
            translation does not format with `params` (a warning is logged).

        Raises:
            KeyError: (or another `str.format` error) if the English source itself
                does not format with `params` — a bug in the calling code.
        """
        return _format_with_fallback(self.language, message, self.gettext(message), params)

    def n(self, singular: str, plural: str, count: int, **params: object) -> str:
        """Translate a counted message and fill `{count}` and the other placeholders.

        Args:
            singular: English singular source template.
            plural: English plural source template.
            count: The count; selects the form and fills `{count}`.
            **params: Values for the other placeholders (none may be called
                `singular` or `plural`).

        Returns:
            The formatted form for `count`, with the same English fallback as `t`.
        """
        source = singular if count == 1 else plural
        return _format_with_fallback(
            self.language, source, self.ngettext(singular, plural, count), {"count": count, **params}
        )

    def format_date(self, d: dt.date, format: str = "long") -> str:
        """Format a date in this locale, e.g. "31 décembre 2021".

        Args:
            d: The date.
            format: "full", "long", "medium", "short" or a CLDR pattern.

        Returns:
            The formatted date.
        """
        return _babel_format_date(d, format=format, locale=self.locale)

    def format_month(self, year: int, month: int) -> str:
        """Format a month and year, e.g. "March 2019", "mars 2019".

        Args:
            year: The year.
            month: The month, 1–12.

        Returns:
            The month in this locale (CLDR skeleton "yMMMM").
        """
        return _babel_format_skeleton("yMMMM", dt.date(year, month, 1), locale=self.locale)

    def format_number(self, number: int | float | Decimal) -> str:
        """Format a number with this locale's separators, e.g. "1 234,5".

        Args:
            number: The number.

        Returns:
            The formatted number.
        """
        return format_decimal(number, locale=self.locale)

    def format_datetime(self, moment: dt.datetime, tz: dt.tzinfo | str | None = None, format: str = "medium") -> str:
        """Format a date and time in this locale, shown in time zone `tz`.

        Args:
            moment: The instant; a naive datetime is taken to be UTC.
            tz: The time zone to show it in (tzinfo or IANA name); None for UTC.
            format: "full", "long", "medium", "short" or a CLDR pattern.

        Returns:
            The formatted date and time.
        """
        tzinfo = get_timezone(tz) if isinstance(tz, str) else tz
        return _babel_format_datetime(moment, format=format, tzinfo=tzinfo, locale=self.locale)

    def language_name(self) -> str:
        """Return the language's name in itself, capitalised, e.g. "Français", "中文", "Português (Brasil)".

        Returns:
            The endonym.
        """
        name = Locale.parse(self.language).display_name or self.language
        return name[:1].upper() + name[1:]


def _read_catalog(path: Path, language: str) -> Catalog:
    """Parse a `.po` file strictly.

    Raises:
        CatalogError: If it is missing or does not parse; the message names the file.
    """
    try:
        with path.open("rb") as fp:
            return read_po(fp, locale=babel_locale(language), domain=DOMAIN, abort_invalid=True)
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: catalog file missing") from exc
    except (PoFileError, ValueError, LookupError, OSError) as exc:
        raise CatalogError(f"{path}: does not parse: {exc}") from exc


@functools.cache
def _load_translator(language: str, locales_dir: Path) -> CatalogTranslator:
    path = catalog_path(language, locales_dir)
    if language == DEFAULT_LANGUAGE and not path.is_file():
        return CatalogTranslator.from_catalog(language)
    catalog = _read_catalog(path, language)
    try:
        return CatalogTranslator.from_catalog(language, catalog)
    except ValueError as exc:  # e.g. a Plural-Forms expression gettext cannot compile
        raise CatalogError(f"{path}: cannot be used: {exc}") from exc


def get_translator(language: str, locales_dir: Path | None = None) -> Translator:
    """Return the translator for `language`, loading its `.po` catalog once.

    Args:
        language: A member of `LANGUAGES` (use `pick_language` for Telegram codes), or
            a legacy code of `LEGACY_LANGUAGES`.
        locales_dir: The locales directory; `LOCALES_DIR` when None.

    Returns:
        The cached translator.

    Raises:
        UnknownLanguage: If `language` is not in `LANGUAGES`.
        CatalogError: If the catalog is missing (English may have none) or does
            not parse.
    """
    language = current_language(language)
    if language not in LANGUAGES:
        raise UnknownLanguage(language)
    # LOCALES_DIR is already absolute; resolving it on every call (several per answer) is wasted work.
    return _load_translator(language, LOCALES_DIR if locales_dir is None else locales_dir.resolve())


def _placeholders(text: str) -> frozenset[str] | None:
    """Return the `{field}` names of a `str.format` template, or None if malformed.

    Attribute and index access count as their root name (`{city.name}` → "city");
    automatic fields `{}` count as "".
    """
    names: set[str] = set()
    try:
        for _literal, field_name, spec, _conversion in string.Formatter().parse(text):
            if field_name is None:
                continue
            names.add(_FIELD_ROOT.split(field_name, maxsplit=1)[0])
            if spec:
                nested = _placeholders(spec)
                if nested is None:
                    return None
                names |= nested
    except ValueError:
        return None
    return frozenset(names)


def _show(names: frozenset[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names)) or "none"


def _where(path: Path, message: Message) -> str:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    context = f" (msgctxt {message.context!r})" if message.context else ""
    return f"{path}: msgid {msgid!r}{context}"


def _placeholder_problems(path: Path, message: Message) -> list[str]:
    """Compare the placeholders of each translated form with its source.

    A plain message is compared with its msgid; each plural form with msgid_plural,
    except that a form may leave out `{count}` (e.g. Arabic "one word", "two words").
    """
    if isinstance(message.id, tuple | list):
        source = message.id[1]
        optional = frozenset({"count"})
    else:
        source = message.id
        optional = frozenset()
    forms = [form for form in _forms(message) if form]
    expected = _placeholders(source)
    if expected is None:  # the source is not a format template; nothing to compare
        return []
    problems: list[str] = []
    for form in forms:
        found = _placeholders(form)
        if found is None:
            problems.append(f"{_where(path, message)}: malformed placeholder in translation {form!r}")
        elif found != expected and found | optional != expected | optional:
            problems.append(
                f"{_where(path, message)}: translation {form!r} has placeholders {_show(found)}, "
                f"source has {_show(expected)}"
            )
    return problems


def _plural_problems(path: Path, language: str, catalog: Catalog) -> list[str]:
    """Check the catalog's Plural-Forms against `PLURAL_FORMS` for its language."""
    expected_count, expected_expr = PLURAL_FORMS[language]
    if catalog.num_plurals != expected_count:
        return [
            f"{path}: Plural-Forms nplurals={catalog.num_plurals}, but {language} needs "
            f"nplurals={expected_count}; plural={expected_expr};"
        ]
    try:
        actual = gettext.c2py(catalog.plural_expr)
    except (ValueError, SyntaxError) as exc:
        return [f"{path}: Plural-Forms expression {catalog.plural_expr!r} is invalid: {exc}"]
    expected = gettext.c2py(expected_expr)
    for count in _PLURAL_SAMPLE:
        if actual(count) != expected(count):
            return [
                f"{path}: Plural-Forms expression {catalog.plural_expr!r} picks form {actual(count)} "
                f"for n={count}; {language} needs plural={expected_expr};"
            ]
    return []


def _check_catalog(path: Path, language: str, catalog: Catalog, required: list[str]) -> list[str]:
    problems: list[str] = []
    if catalog.locale is None or catalog.locale_identifier != language:
        problems.append(f"{path}: Language header is {catalog.locale_identifier!r}, expected {language!r}")
    problems.extend(_plural_problems(path, language, catalog))
    for message in list(catalog)[1:]:  # the first is the header
        if message.fuzzy:  # ignored at run time, so not checked either
            continue
        for checker in _CHECKERS:
            try:
                checker(catalog, message)
            except TranslationError as exc:
                problems.append(f"{_where(path, message)}: {exc}")
        problems.extend(_placeholder_problems(path, message))
        forms = _forms(message)
        if message.pluralizable and any(forms) and not all(forms):
            empty = ", ".join(str(index) for index, form in enumerate(forms) if not form)
            problems.append(f"{_where(path, message)}: plural form(s) {empty} empty; the entry shows in English")
    if language != DEFAULT_LANGUAGE:  # English is the source: its msgids are its texts
        for msgid in required:
            found = catalog.get(msgid)
            if found is None:
                problems.append(f"{path}: msgid {msgid!r}: required message missing")
            elif found.fuzzy:
                problems.append(f"{path}: msgid {msgid!r}: required message is fuzzy (not yet approved)")
            elif not _is_translated(found):
                problems.append(f"{path}: msgid {msgid!r}: required message untranslated")
    return problems


def check_catalogs(locales_dir: Path | None = None, required_messages: Iterable[str] = ()) -> list[str]:
    """Check every language's `.po` catalog; start-up refuses to run on problems.

    Reported, each naming the file (and the msgid where there is one): a catalog
    missing (English may have none) or not parsing; a Language header for another
    language; Plural-Forms not those of `PLURAL_FORMS`; a translation whose `{}`
    placeholders differ from its source; a plural entry with some forms empty
    (missing forms are read as empty); babel's own checks (e.g. singular entries
    given plural forms); a required message missing, fuzzy or untranslated
    (not checked for English, the source). Fuzzy entries are otherwise skipped, as
    they are at run time.

    Args:
        locales_dir: The locales directory; `LOCALES_DIR` when None.
        required_messages: msgids (without msgctxt; a plural entry by its singular)
            every translation must have.

    Returns:
        The problems found, one line each; empty when all is well.
    """
    base = locales_dir or LOCALES_DIR
    required = list(required_messages)
    problems: list[str] = []
    for language in LANGUAGES:
        path = catalog_path(language, base)
        if language == DEFAULT_LANGUAGE and not path.is_file():
            continue
        try:
            catalog = _read_catalog(path, language)
        except CatalogError as exc:
            problems.append(str(exc))
            continue
        problems.extend(_check_catalog(path, language, catalog, required))
    return problems
