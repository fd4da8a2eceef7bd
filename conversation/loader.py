"""Read a survey data file (YAML) into a validated `Survey`.

Rules of this module:
- Every failure (missing file, bad YAML, invalid survey) surfaces as one `SurveyError`.
- An error message starts with the file's name and, wherever it can, names the question id.
- YAML is read with `yaml.safe_load` only; the file never runs code.
- Validation belongs to `conversation.model`; this module only reads files and words errors.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from conversation.model import Kind, Survey

logger = logging.getLogger(__name__)

DEFAULT_SURVEY_PATH: Final[Path] = Path(__file__).resolve().parent / "surveys" / "gnlc-biennial-2019-2021.yaml"

_ID_LINE_RE = re.compile(r"""^\s*(?:-\s+)?id:\s*["']?([A-Za-z0-9_-]+)""")
_Loc = tuple[int | str, ...]


class SurveyError(Exception):
    """A survey file is missing, unreadable, not YAML, or not a valid survey."""


def load_survey(path: str | Path | None = None) -> Survey:
    """Load and validate a survey file; None means the bundled GNLC questionnaire."""
    file = DEFAULT_SURVEY_PATH if path is None else Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SurveyError(f"{file.name}: no such survey file ({file})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyError(f"{file.name}: cannot read survey file: {exc}") from exc
    survey = parse_survey(text, file.name)
    logger.debug("loaded survey %r from %s: %d sections", survey.id, file, len(survey.sections))
    return survey


def parse_survey(text: str, source: str = "<survey>") -> Survey:
    """Validate survey YAML text; `source` names the file in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SurveyError(f"{source}: {_describe_yaml_error(exc, text)}") from exc
    if not isinstance(data, dict):
        raise SurveyError(f"{source}: the file must hold a mapping of survey fields, not {type(data).__name__}")
    try:
        return Survey.model_validate(data)
    except ValidationError as exc:
        problems = [_describe_error(error, data) for error in exc.errors()]
        raise SurveyError(f"{source}: " + "; ".join(problems)) from exc


def _describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """Word a YAML syntax error with its position and the nearest preceding id."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"invalid YAML: {exc}"
    line = exc.problem_mark.line  # 0-based
    where = f"invalid YAML at line {line + 1}, column {exc.problem_mark.column + 1}"
    preceding = text.splitlines()[: line + 1]
    for number in range(len(preceding) - 1, -1, -1):
        match = _ID_LINE_RE.match(preceding[number])
        if match:
            where += f" (after id {match.group(1)!r} on line {number + 1})"
            break
    return f"{where}: {exc.problem or exc}"


def _describe_error(error: ErrorDetails, data: dict[str, Any]) -> str:
    """Word one pydantic error, naming the question (or section) it belongs to."""
    loc: _Loc = tuple(error["loc"])
    subject, rest = _subject(loc, data)
    field = ".".join(str(part) for part in rest)
    kind = error["type"]
    if kind == "value_error":
        detail = error["msg"].removeprefix("Value error, ")
    elif kind == "enum" and rest == ("kind",):
        expected = ", ".join(k.value for k in Kind)
        detail = f"unknown kind {error['input']!r} (expected one of {expected})"
    elif kind == "missing":
        detail = f"missing field {field!r}"
    elif kind == "extra_forbidden":
        detail = f"unknown field {field!r}"
    else:
        detail = f"{field}: {error['msg']}" if field else error["msg"]
        if kind == "string_type" and isinstance(error["input"], bool):
            detail += ' (YAML reads bare yes/no/true/false as booleans; quote it, e.g. "yes")'
    if subject is None or detail.startswith(("question ", "section ")):
        return detail
    return f"{subject}: {detail}"


def _subject(loc: _Loc, data: dict[str, Any]) -> tuple[str | None, _Loc]:
    """The question or section an error location points into, and the rest of the location."""
    if len(loc) < 2 or loc[0] != "sections" or not isinstance(loc[1], int):
        return None, loc
    section = _item(data.get("sections"), loc[1])
    subject = _label("section", section, f"#{loc[1] + 1}")
    if len(loc) < 4 or loc[2] != "questions" or not isinstance(loc[3], int):
        return subject, loc[2:]
    question = _item(section.get("questions") if isinstance(section, dict) else None, loc[3])
    position = f"#{loc[3] + 1} of {subject}"
    return _label("question", question, position), loc[4:]


def _item(items: object, index: int) -> object:
    """The index-th element of a raw YAML list, or None."""
    if isinstance(items, list) and 0 <= index < len(items):
        return items[index]
    return None


def _label(what: str, raw: object, fallback: str) -> str:
    """`question 'x'` from a raw YAML mapping, or a positional label when it has no usable id."""
    ident = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(ident, str) and ident:
        return f"{what} {ident!r}"
    return f"{what} {fallback}"
