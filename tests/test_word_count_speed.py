"""`count_words` (translate + regex) must count exactly like the original character loop kept here."""

from __future__ import annotations

import bisect
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversation import validation
from conversation.validation import count_words

# --------------------------------------------------------------------------- reference: the original loop
# A frozen copy of the character-by-character implementation `count_words` replaced; do not "fix" it.
# One deliberate change of rule since, made in both: Hangul counts by spaces (no longer a CJK range).

_REF_ZERO_WIDTH = frozenset("\u034f\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2800\u3164\ufeff\uffa0")
_REF_CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x3005, 0x3007),
    (0x3021, 0x3029),
    (0x3031, 0x3035),
    (0x3038, 0x303C),
    (0x3040, 0x30FF),
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
    (0x1B000, 0x1B16F),
    (0x20000, 0x323AF),
)
_REF_CJK_STARTS = tuple(start for start, _ in _REF_CJK_RANGES)
_REF_WORD_JOINERS = frozenset("'\u2019\u02bc-\u2010\u2011\u00ad")
_REF_NUMBER_JOINERS = frozenset(".,\u066b\u066c")
_SEP, _CJK, _WORD, _MARK, _JOIN, _NUM_JOIN = range(6)


def _ref_is_cjk(code_point: int) -> bool:
    index = bisect.bisect_right(_REF_CJK_STARTS, code_point) - 1
    return index >= 0 and code_point <= _REF_CJK_RANGES[index][1]


def _ref_char_class(ch: str) -> int:
    if ch in _REF_ZERO_WIDTH:
        return _SEP
    category = unicodedata.category(ch)
    if _ref_is_cjk(ord(ch)) and (category[0] == "L" or category == "Nl"):
        return _CJK
    if category[0] in "LN":
        return _WORD
    if category[0] == "M":
        return _MARK
    if ch in _REF_WORD_JOINERS:
        return _JOIN
    if ch in _REF_NUMBER_JOINERS:
        return _NUM_JOIN
    return _SEP


def reference_count_words(text: str) -> int:
    count = 0
    in_word = False
    last = len(text) - 1
    for i, ch in enumerate(text):
        cls = _ref_char_class(ch)
        if cls == _WORD:
            if not in_word:
                count += 1
                in_word = True
        elif cls == _CJK:
            count += 1
            in_word = False
        elif cls == _MARK:
            pass
        elif cls == _JOIN:
            in_word = in_word and i < last and _ref_char_class(text[i + 1]) == _WORD
        elif cls == _NUM_JOIN:
            in_word = in_word and i < last and text[i - 1].isdecimal() and text[i + 1].isdecimal()
        else:
            in_word = False
    return count


# --------------------------------------------------------------------------- equivalence

_INTERESTING = (
    "aZé"  # letters
    "09٣٥０"  # ASCII, Arabic-Indic and fullwidth digits
    "'-.,\u2019\u02bc\u2010\u2011\u00ad\u066b\u066c"  # word and number joiners
    "\u0301\u0308\u064e"  # combining marks
    "中文〇々あアｱ한\U00020000"  # CJK, kana, Hangul, extension B
    "\u200b\u200c\u200d\u2060\ufeff\u3164\u115f\u034f"  # zero-width / blank fillers
    " \n\t\u00a0!?()_²Ⅻ"  # separators, other symbols, No / Nl numbers
)
_tricky_text = st.text(alphabet=st.sampled_from(_INTERESTING), max_size=60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("don't", 1),
        ("well-being", 1),
        ("3.5", 1),
        ("1,000", 1),
        ("1.2.3.4.5", 1),
        ("1..2", 2),
        ("1.a", 2),
        ("a1.5", 1),
        ("x'1", 1),
        ("a''b", 2),
        ("a.b", 2),
        ("3.", 1),
        (".5", 1),
        ("a-", 1),
        ("-a", 1),
        ("a--b", 2),
        ("a'\u0301b", 2),
        ("e\u0301te\u0301", 1),
        ("\u0301\u0301", 0),
        ("1\u0301.5", 2),
        ("中文 text", 3),
        ("中文text", 3),
        ("text中文", 3),
        ("a-中", 2),
        ("٣٫٥ ١٬٠٠٠", 2),
        ("zero\u200bwidth", 2),
        ("join\u200dme", 2),
        ("한국어 ok", 2),
    ],
)
def test_examples_match_reference(text: str, expected: int) -> None:
    assert reference_count_words(text) == expected
    assert count_words(text) == expected


@settings(max_examples=1000)
@given(st.text())
def test_any_text_matches_reference(text: str) -> None:
    assert count_words(text) == reference_count_words(text)


@settings(max_examples=3000)
@given(_tricky_text)
def test_tricky_text_matches_reference(text: str) -> None:
    assert count_words(text) == reference_count_words(text)


# Five contexts whose counts together tell every character class apart (separator, CJK, word, decimal
# digit, mark, joiner, number joiner), so an assigned code point classified differently changes a count.
# Unassigned, private-use and surrogate code points (about a million) get one context, to keep this quick.
_CONTEXTS = ("{}", "a{}b", "a{}{}b", "1.{}", "1{}2")
_UNASSIGNED_CONTEXTS = ("a{}{}b",)


def test_every_code_point_in_context_matches_reference() -> None:
    # Counting is additive across a space, so whole blocks are compared first and only a differing block
    # is compared text by text, to name the culprit.
    for block in range(0, 0x110000, 1024):
        texts: list[str] = []
        for code_point in range(block, block + 1024):
            ch = chr(code_point)
            contexts = _UNASSIGNED_CONTEXTS if unicodedata.category(ch) in ("Cn", "Co", "Cs") else _CONTEXTS
            texts.extend(context.format(ch, ch) for context in contexts)
        joined = " ".join(texts)
        if count_words(joined) != reference_count_words(joined):
            for text in texts:
                assert count_words(text) == reference_count_words(text), ascii(text)


def test_unseen_code_points_count_correctly_when_the_cache_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_CLASS_TABLE", dict(validation._CLASS_TABLE))
    monkeypatch.setattr(validation, "_CLASS_TABLE_MAX", len(validation._CLASS_TABLE))
    text = "𝟙𝟚.𝟛 café 𠀁𠀂 कि"  # math digits, CJK ext. B
    assert count_words(text) == reference_count_words(text) == 5
    assert count_words(text) == 5
    assert len(validation._CLASS_TABLE) == validation._CLASS_TABLE_MAX
