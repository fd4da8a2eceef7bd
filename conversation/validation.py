"""Answer validation: turn what a contact typed into a stored value or a `Rejection`.

Rules of this module:
- Pure functions only: the result depends on the arguments and nothing else.
- No clock reads: "today" is always a parameter, never `date.today()`.
- No I/O: no files, network, logging or environment look-ups.
- Ordinary mistakes by the contact are returned as `Rejection` values, never raised;
  exceptions are reserved for programming errors (e.g. an impossible month passed
  to `format_month_value`).
- Matching is forgiving (case, accents, Unicode digits, the contact's language),
  stored values are canonical ("YYYY-MM", E.164, normalised e-mail, https:// URL).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from babel.core import UnknownLocaleError
from babel.dates import get_month_names
from email_validator import EmailNotValidError, validate_email

from conversation.state import FutureMonth, Refusal, TooManyChars, TooOld

__all__ = [
    "NO_WORDS",
    "YES_WORDS",
    "Rejection",
    "char_limit",
    "clean_text",
    "count_words",
    "format_month_value",
    "is_month_value",
    "match_option",
    "match_yes_no",
    "normalize_email",
    "normalize_person_name",
    "normalize_phone",
    "normalize_short_text",
    "normalize_url",
    "parse_month_value",
    "parse_month_year",
]


#: Why an answer was not accepted: the refusals (conversation.state) a typed answer can get.
Rejection = Refusal | TooManyChars | TooOld | FutureMonth


# --------------------------------------------------------------------------- text helpers

# Invisible characters: zero-width marks, and the "blank" fillers people use to send empty-looking
# messages (Hangul fillers, Mongolian vowel separator, combining grapheme joiner, braille blank).
_INVISIBLE = "\u034f\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2800\u3164\ufeff\uffa0"
ZERO_WIDTH = frozenset(_INVISIBLE)
_ZW_CLASS = _INVISIBLE
_EDGE_RE = re.compile(rf"^[\s{_ZW_CLASS}]+|[\s{_ZW_CLASS}]+$")
_BLANK_RUN_RE = re.compile(rf"\n(?:[^\S\n]|[{_ZW_CLASS}])*(?:\n(?:[^\S\n]|[{_ZW_CLASS}])*){{2,}}\n")
_WS_RE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Return `text` NFC-normalised, trimmed of whitespace/zero-width edges, blank-line runs capped at two."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _EDGE_RE.sub("", text)
    return _BLANK_RUN_RE.sub("\n\n\n", text)


def _ascii_digits(text: str) -> str:
    """Return `text` with every Unicode decimal digit (Arabic-Indic, fullwidth, …) replaced by 0-9."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text)


def _fold(text: str) -> str:
    """Return a matching key: NFKC, casefolded, combining marks removed, ASCII digits."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return _ascii_digits(unicodedata.normalize("NFC", text))


# --------------------------------------------------------------------------- word counting

# Code point ranges whose letters count one word each (Han, kana). Hangul is not among them:
# Korean separates words with spaces, so a run of Hangul syllables is one word, as in Latin script.
_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # kana repeat marks
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x1B000, 0x1B16F),  # kana supplement / extended
    (0x20000, 0x323AF),  # CJK extensions B-H, compatibility supplement
)
_CJK_STARTS = tuple(start for start, _ in _CJK_RANGES)

# Characters that join two word characters into one word ("don't", "well-being").
_WORD_JOINERS = frozenset("'\u2019\u02bc-\u2010\u2011\u00ad")
# Characters that join two digits into one number ("3.5", "1,000", Arabic ٣٫٥ / ١٬٠٠٠).
_NUMBER_JOINERS = frozenset(".,\u066b\u066c")

_SEP, _CJK, _WORD, _MARK, _JOIN, _NUM_JOIN = range(6)


def _is_cjk(code_point: int) -> bool:
    """Return whether `code_point` lies in a range whose letters count as one word each."""
    index = bisect.bisect_right(_CJK_STARTS, code_point) - 1
    return index >= 0 and code_point <= _CJK_RANGES[index][1]


@functools.lru_cache(maxsize=4096)
def _char_class(ch: str) -> int:
    """Return the word-counting class of one character."""
    if ch in ZERO_WIDTH:
        return _SEP
    category = unicodedata.category(ch)
    if _is_cjk(ord(ch)) and (category[0] == "L" or category == "Nl"):
        return _CJK
    if category[0] in "LN":
        return _WORD
    if category[0] == "M":
        return _MARK
    if ch in _WORD_JOINERS:
        return _JOIN
    if ch in _NUMBER_JOINERS:
        return _NUM_JOIN
    return _SEP


# `count_words` is on the hot path of every answer, so it never loops over characters in Python:
# `str.translate` maps the text to one ASCII class letter per character, then C-speed `str` operations apply
# the rules of the original character loop. Letters: "w" word character ("d" if a decimal digit), "m"
# combining mark (continues a word, never starts one), "j" joiner (continues a word only before a word
# character), "n" number joiner (only between two decimal digits), "c" CJK character (one word each, ends
# the current word), " " anything else, zero-width characters included. Joiners that continue a word become
# "m", marks are dropped, and the words are the runs of "w"/"d" that remain, plus one per "c".
_CLASS_LETTERS = {_SEP: " ", _CJK: "c", _WORD: "w", _MARK: "m", _JOIN: "j", _NUM_JOIN: "n"}
_CLASS_TABLE_MAX = 65536  # once full, new code points are classified on every call instead of remembered
_RUN_TABLE = str.maketrans({"w": "w", "d": "w", "m": None, "c": " ", "j": " ", "n": " "})


def _class_letter(ch: str) -> str:
    """Return the class letter of one character (see above)."""
    cls = _char_class(ch)
    return "d" if cls == _WORD and ch.isdecimal() else _CLASS_LETTERS[cls]


# Code point -> class letter. ASCII is filled in up front, so an untranslated character is always non-ASCII.
_CLASS_TABLE: dict[int, str] = {code_point: _class_letter(chr(code_point)) for code_point in range(128)}


def _class_letters(text: str) -> str:
    """Return one class letter per character of `text`, classifying code points not seen before."""
    classes = text.translate(_CLASS_TABLE)
    if classes.isascii():
        return classes
    # Code points not in the table were left as they are: they are the non-ASCII characters of `classes`.
    new = {ord(ch): _class_letter(ch) for ch in set(classes) if not ch.isascii()}
    if len(_CLASS_TABLE) + len(new) <= _CLASS_TABLE_MAX:
        _CLASS_TABLE.update(new)
    return classes.translate(new)


def count_words(text: str) -> int:
    """Return the number of words in `text`, counting each Han or kana character as one word.

    Korean (Hangul) counts by spaces, like alphabetic scripts.
    """
    classes = _class_letters(text)
    if "j" in classes:
        classes = classes.replace("jw", "mw")
        if "jd" in classes:
            classes = classes.replace("jd", "md")
    if "dnd" in classes:
        # Twice: the first pass skips every second joiner of a chain such as "1.2.3" (matches overlap).
        classes = classes.replace("dnd", "dmd").replace("dnd", "dmd")
    runs = classes.translate(_RUN_TABLE)
    return runs.count(" w") + runs.startswith("w") + classes.count("c")


# --------------------------------------------------------------------------- month and year

_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
_SEP_RE = rf"(?:\s*[/.{_DASHES}]\s*|\s+)"
_NUMERIC_ONLY_RE = re.compile(rf"^[0-9\s/.{_DASHES}]+$")
_MONTH_YEAR_RE = re.compile(rf"^([0-9]{{1,2}}){_SEP_RE}([0-9]{{4}})$")
_YEAR_MONTH_RE = re.compile(rf"^([0-9]{{4}}){_SEP_RE}([0-9]{{1,2}})$")
_DAY_MONTH_YEAR_RE = re.compile(rf"^([0-9]{{1,2}}){_SEP_RE}([0-9]{{1,2}}){_SEP_RE}([0-9]{{4}})$")
_YEAR_MONTH_DAY_RE = re.compile(rf"^([0-9]{{4}}){_SEP_RE}([0-9]{{1,2}}){_SEP_RE}([0-9]{{1,2}})$")
# A number followed by the Chinese/Japanese 月 or the Korean 월 is a month; 年/년 mark the year, 日/일 the day.
_TOKEN_RE = re.compile(r"[0-9]{1,2}\s*[月월]|[0-9]+|[^\W\d_]+")
_CJK_MONTH_RE = re.compile(r"^([0-9]{1,2})\s*[月월]$")
_CJK_DATE_MARKS_RE = re.compile(r"[年日号號년일]")

# Words that may surround a month and year without changing their meaning.
_FILLER_WORDS = frozenset(
    {
        "of", "the", "in", "year", "st", "nd", "rd", "th",  # en
        "de", "en", "le", "er", "annee",  # fr (1er mars), es/pt (de marzo de)
        "del", "el", "ano", "em", "do", "da", "o",  # es, pt (1º de marzo)
        "г", "год", "года", "в",  # ru
        "م", "سنة", "عام", "شهر", "في",  # ar
    }
)  # fmt: skip

# Month names babel does not list but contacts commonly type.
_EXTRA_MONTH_NAMES: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "en": {"sept": 9},
        "es": {"setiembre": 9, "set": 9},
        "ar": {  # Levantine / Iraqi month names
            "كانون الثاني": 1, "شباط": 2, "آذار": 3, "نيسان": 4, "أيار": 5, "حزيران": 6,
            "تموز": 7, "آب": 8, "أيلول": 9, "تشرين الأول": 10, "تشرين الثاني": 11, "كانون الأول": 12,
        },
    }
)  # fmt: skip


def _language(locale: str) -> str:
    """Return the language part of a locale tag ("pt_BR" / "pt-BR" -> "pt")."""
    return re.split(r"[_\-@.]", locale.strip(), maxsplit=1)[0].lower()


def _month_key(name: str) -> str:
    """Return the matching key of a month name ("Févr." -> "fevr")."""
    return " ".join(_fold(name).replace(".", " ").split())


@functools.lru_cache(maxsize=64)
def _month_lookup(locale: str) -> Mapping[str, int]:
    """Return folded month name -> month number for English plus `locale`; ambiguous names are left out."""
    found: dict[str, set[int]] = {}
    for loc in dict.fromkeys(("en", locale.replace("-", "_"))):
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                try:
                    names = get_month_names(width, context=context, locale=loc)
                except (UnknownLocaleError, ValueError, TypeError, AttributeError):
                    continue
                for month, name in names.items():
                    found.setdefault(_month_key(name), set()).add(int(month))
    for lang in dict.fromkeys(("en", _language(locale))):
        for name, month in _EXTRA_MONTH_NAMES.get(lang, {}).items():
            found.setdefault(_month_key(name), set()).add(month)
    return MappingProxyType({key: next(iter(months)) for key, months in found.items() if key and len(months) == 1})


def _month_from_full_date(first: int, second: int, year: int) -> int | None:
    """Return the month of a numeric date read day-first or month-first, or None if invalid or ambiguous."""
    months = set()
    for day, month in ((first, second), (second, first)):
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1]:
            months.add(month)
    return months.pop() if len(months) == 1 else None


def _strip_punctuation(text: str) -> str:
    """Return `text` without leading and trailing whitespace and punctuation."""
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start])[0] == "P"):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1])[0] == "P"):
        end -= 1
    return text[start:end]


def _parse_numeric(folded: str) -> tuple[int, int] | None:
    """Return (year, month) from an all-numeric answer, or None; the month may be out of range."""
    if match := _MONTH_YEAR_RE.match(folded):
        return int(match[2]), int(match[1])
    if match := _YEAR_MONTH_RE.match(folded):
        return int(match[1]), int(match[2])
    if match := _DAY_MONTH_YEAR_RE.match(folded):
        year = int(match[3])
        month = _month_from_full_date(int(match[1]), int(match[2]), year)
        return None if month is None else (year, month)
    if match := _YEAR_MONTH_DAY_RE.match(folded):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1]:
            return year, month
    return None


def _parse_named(folded: str, lookup: Mapping[str, int]) -> tuple[int, int] | None:
    """Return (year, month) from an answer naming the month ("mars 2019", "2019年3月"), or None."""
    text = _CJK_DATE_MARKS_RE.sub(" ", folded)
    leftover = _TOKEN_RE.sub(" ", text)
    if any(not (ch.isspace() or unicodedata.category(ch)[0] == "P") for ch in leftover):
        return None
    tokens = _TOKEN_RE.findall(text)
    months: list[int] = []
    years: list[int] = []
    days: list[int] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        pair = f"{token} {tokens[i + 1]}" if i + 1 < len(tokens) else ""
        if pair in lookup:
            months.append(lookup[pair])
            i += 2
            continue
        i += 1
        if match := _CJK_MONTH_RE.match(token):
            months.append(int(match[1]))
        elif token in lookup:
            months.append(lookup[token])
        elif token.isascii() and token.isdigit() and len(token) == 4:
            years.append(int(token))
        elif token.isascii() and token.isdigit() and len(token) <= 2:
            days.append(int(token))
        elif token not in _FILLER_WORDS:
            return None
    if len(months) != 1 or len(years) != 1 or len(days) > 1:
        return None
    year, month = years[0], months[0]
    if days and 1 <= month <= 12 and not 1 <= days[0] <= calendar.monthrange(year or 1, month)[1]:
        return None
    return year, month


def parse_month_year(
    text: str, *, today: dt.date, locale: str = "en", earliest: int = 1900
) -> tuple[int, int] | Rejection:
    """Read a typed month and year: "03/2019", "2019-03", "March 2019", "mars 2019", "2019年3月", "2019년 3월" …

    Returns (year, month), or a Rejection.
    """
    folded = _strip_punctuation(_fold(text))
    numeric = _NUMERIC_ONLY_RE.match(folded) is not None
    parsed = _parse_numeric(folded) if numeric else _parse_named(folded, _month_lookup(locale))
    if parsed is None or not 1 <= parsed[1] <= 12:
        return Refusal.BAD_MONTH
    year, month = parsed
    if year < earliest:
        return TooOld(earliest)
    if (year, month) > (today.year, today.month):
        return FutureMonth(format_month_value(today.year, today.month))
    return year, month


_MONTH_VALUE_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_month_value(text: str) -> tuple[int, int] | None:
    """Read a month in its stored form, "YYYY-MM" exactly, as (year, month); None for anything else.

    For what people type the forgiving `parse_month_year` is the authority; this strict form is for
    stored answers, the questionnaire file and the team's tools (`invite --joined`, /invite, CSV rows).
    """
    match = _MONTH_VALUE_RE.fullmatch(text)
    return None if match is None else (int(match[1]), int(match[2]))


def is_month_value(text: str) -> bool:
    """Whether `text` is a month in its stored form, "YYYY-MM"."""
    return parse_month_value(text) is not None


def format_month_value(year: int, month: int) -> str:
    """Return the stored form of a month, e.g. "2019-03"; raise ValueError for an impossible month."""
    if not 1 <= month <= 12 or not 0 <= year <= 9999:
        raise ValueError(f"not a month: year={year!r} month={month!r}")
    return f"{year:04d}-{month:02d}"


# --------------------------------------------------------------------------- contact details


def normalize_email(text: str) -> str | Rejection:
    """Return the normalised e-mail address (domain lower-cased), or Refusal.BAD_EMAIL."""
    candidate = clean_text(text)
    if candidate[:7].casefold() == "mailto:":
        candidate = candidate[7:].strip()
    try:
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError:
        return Refusal.BAD_EMAIL


_PHONE_CHARS_RE = re.compile(r"^\+?[0-9\s.\-/\u2010-\u2013]+$")
_TRUNK_ZERO_RE = re.compile(r"\(\s*0\s*\)")  # "+44 (0) 20 …": the national trunk prefix, dropped


def normalize_phone(text: str) -> str | Rejection:
    """Return an international phone number in E.164 ("+442079460958"), or a Rejection."""
    candidate = _ascii_digits(unicodedata.normalize("NFKC", clean_text(text)))
    if candidate[:4].casefold() == "tel:":
        candidate = candidate[4:].strip()
    candidate = _TRUNK_ZERO_RE.sub(" ", candidate).replace("(", " ").replace(")", " ").strip()
    if not _PHONE_CHARS_RE.match(candidate) or sum(ch.isdigit() for ch in candidate) < 4:
        return Refusal.BAD_PHONE
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    if not candidate.startswith("+"):
        return Refusal.NOT_INTERNATIONAL
    try:
        number = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return Refusal.BAD_PHONE
    if not phonenumbers.is_valid_number(number):
        return Refusal.BAD_PHONE
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_URL_MAX_CHARS = 2048


def _valid_host(host: str) -> bool:
    """Return whether `host` is a domain name with at least one dot and a TLD of letters."""
    labels = host.split(".")
    if len(labels) < 2 or len(host) > 253:
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(ch.isalnum() or ch == "-" for ch in label):
            return False
    tld = labels[-1]
    return (tld.isalpha() and len(tld) >= 2) or (tld.startswith("xn--") and len(tld) > 4)


def normalize_url(text: str) -> str | Rejection:
    """Return the web address with a scheme ("www.example.org" -> "https://www.example.org") or Refusal.BAD_URL."""
    rejection = Refusal.BAD_URL
    candidate = clean_text(text).strip("<>").rstrip(".,;:!")
    if not candidate or len(candidate) > _URL_MAX_CHARS:
        return rejection
    if any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in candidate):
        return rejection
    if not _SCHEME_RE.match(candidate):
        candidate = "https://" + candidate
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        return rejection
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return rejection
    host = (parts.hostname or "").rstrip(".")
    if not _valid_host(host):
        return rejection
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, parts.fragment))


_NAME_MAX_CHARS = 120
_URL_LIKE_RE = re.compile(r"://|\bwww\.|\.(?:com|org|net|gov|edu|info|io)\b", re.IGNORECASE)


def normalize_person_name(text: str) -> str | Rejection:
    """Return the name with whitespace collapsed, or Refusal.BAD_NAME if empty, too long or not a name."""
    name = " ".join(_WS_RE.split(clean_text(text))).strip()
    if not 1 <= len(name) <= _NAME_MAX_CHARS or "@" in name or _URL_LIKE_RE.search(name):
        return Refusal.BAD_NAME
    if not any(unicodedata.category(ch)[0] == "L" for ch in name):
        return Refusal.BAD_NAME
    return name


# A long answer's character cap: generous for its word limit (long words, URLs, several scripts),
# and a global cap where the questionnaire sets no word limit. Counted over the appended whole.
CHARS_PER_WORD = 15
MAX_ANSWER_CHARS = 20_000


def char_limit(max_words: int | None) -> int:
    """The character cap of a free-text answer with this word limit (None: no word limit)."""
    return MAX_ANSWER_CHARS if max_words is None else min(MAX_ANSWER_CHARS, max_words * CHARS_PER_WORD)


def normalize_short_text(text: str, max_chars: int = 300) -> str | Rejection:
    """Return the cleaned text, or Refusal.EMPTY / TooManyChars."""
    cleaned = clean_text(text)
    if not cleaned:
        return Refusal.EMPTY
    if len(cleaned) > max_chars:
        return TooManyChars(len(cleaned), max_chars)
    return cleaned


# --------------------------------------------------------------------------- choices

_APOSTROPHES = frozenset("'\u2019\u02bc`\u00b4")


def _option_key(text: str) -> str:
    """Return the matching key of a typed answer or label: folded, punctuation and symbols as spaces."""
    chars = []
    for ch in _fold(text).replace("_", " "):
        if ch in _APOSTROPHES or ch in ZERO_WIDTH:
            continue
        chars.append(" " if unicodedata.category(ch)[0] in "PSZC" else ch)
    return " ".join("".join(chars).split())


def match_option(text: str, options: Mapping[str, Sequence[str]]) -> str | None:
    """Return the option id `text` names (label, id or 1-based number), or None if none or several match."""
    key = _option_key(text)
    if not key:
        return None
    keyed = {
        option_id: {k for k in map(_option_key, [labels] if isinstance(labels, str) else labels) if k}
        for option_id, labels in options.items()
    }
    found = {option_id for option_id, labels in keyed.items() if key in labels}
    if key.isascii() and key.isdigit() and len(key) <= 4 and 1 <= int(key) <= len(keyed):
        found.add(list(keyed)[int(key) - 1])
    if not found and len(key) >= 3:
        found = {option_id for option_id, labels in keyed.items() if any(k.startswith(key) for k in labels)}
    return found.pop() if len(found) == 1 else None


YES_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "en": ("yes", "y", "yeah", "yep"),
        "fr": ("oui", "o"),
        "es": ("sí", "si"),
        "pt": ("sim", "s"),
        "ru": ("да",),
        "ar": ("نعم",),
        "zh": ("是", "是的", "有"),
        "ko": ("예", "네", "응"),
    }
)
NO_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "en": ("no", "n", "nope"),
        "fr": ("non",),
        "es": ("no",),
        "pt": ("não", "nao"),
        "ru": ("нет",),
        "ar": ("لا",),
        "zh": ("否", "不", "没有"),
        "ko": ("아니요", "아니오", "아니"),
    }
)


def match_yes_no(text: str, locale: str) -> str | None:
    """Return "yes" or "no" for a yes/no word in the contact's language or English, else None."""
    key = _option_key(text)
    if not key:
        return None
    languages = dict.fromkeys(("en", _language(locale)))
    yes = any(key in map(_option_key, YES_WORDS.get(lang, ())) for lang in languages)
    no = any(key in map(_option_key, NO_WORDS.get(lang, ())) for lang in languages)
    if yes == no:
        return None
    return "yes" if yes else "no"
