"""Babel extractor for survey YAML files, and the list of a survey's translatable texts.

Rules of this module:
- The translatable texts are exactly what the bot shows: survey title, reporting period and intro,
  section headings and their instructions,
  section titles and intros, question texts and help, choice labels. Ids, e-mail addresses and
  limits are never translated.
- The extractor and `survey_messages` walk the same validated `Survey`, so the catalog template
  and the completeness check cannot drift apart; the YAML node tree only supplies line numbers.
- Each message carries a translator comment naming its question / choice id.
- A broken survey file fails extraction with the loader's `SurveyError`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

import yaml

from conversation.loader import parse_survey
from conversation.model import Survey

logger = logging.getLogger(__name__)

_Loc = tuple[int | str, ...]


def survey_messages(survey: Survey) -> list[str]:
    """Every translatable text of the survey, without duplicates, in form order."""
    return list(dict.fromkeys(message for _, message, _ in _walk(survey)))


def extract_survey(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extraction method: yield (lineno, funcname, message, comments) for a survey file."""
    del keywords, comment_tags  # Not Python source: every text is translatable, comments are generated.
    encoding = str(options.get("encoding", "utf-8"))
    text = fileobj.read().decode(encoding)
    source = str(getattr(fileobj, "name", "<survey>"))
    survey = parse_survey(text, source)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    count = 0
    for loc, message, comment in _walk(survey):
        count += 1
        yield _line(root, loc), None, message, [comment]
    logger.debug("extracted %d messages from %s", count, source)


def _walk(survey: Survey) -> Iterator[tuple[_Loc, str, str]]:
    """(YAML location, message, translator comment) for every translatable text."""
    yield ("title",), survey.title, "survey title"
    yield ("reporting_period",), survey.reporting_period, "survey reporting period"
    yield ("intro",), survey.intro, "survey introduction"
    for s_index, section in enumerate(survey.sections):
        s_loc: _Loc = ("sections", s_index)
        if section.heading is not None:
            yield (*s_loc, "heading", "title"), section.heading.title, f"section {section.id}: heading"
            if section.heading.intro:
                yield (*s_loc, "heading", "intro"), section.heading.intro, f"section {section.id}: heading instruction"
        yield (*s_loc, "title"), section.title, f"section {section.id}: title"
        if section.intro:
            yield (*s_loc, "intro"), section.intro, f"section {section.id}: introduction"
        for q_index, question in enumerate(section.questions):
            q_loc: _Loc = (*s_loc, "questions", q_index)
            yield (*q_loc, "text"), question.text, f"question {question.id}: text"
            if question.help:
                yield (*q_loc, "help"), question.help, f"question {question.id}: help"
            for c_index, choice in enumerate(question.choices):
                c_loc: _Loc = (*q_loc, "choices", c_index, "label")
                yield c_loc, choice.label, f"question {question.id}, choice {choice.id}: label"


def _line(root: yaml.Node | None, loc: _Loc) -> int:
    """1-based line of the YAML node at `loc` (or of its nearest existing ancestor)."""
    node = root
    line = 1
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        node = _child(node, part)
    if node is not None:
        line = node.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: int | str) -> yaml.Node | None:
    """The child of a mapping (by key) or sequence (by index) node, or None."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return value  # type: ignore[no-any-return]
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]  # type: ignore[no-any-return]
    return None
