"""Inviting a whole network at once: `python -m bot invite --from FILE.csv`.

Rules of this module:
- The header names the columns (city, country, joined, name, e-mail; any order, any case, other
  columns kept as they are); city and country are required in every row.
- Every row is checked before anything is written. Any bad row: each problem is reported with its
  line number, and neither the database nor the file changes.
- One personal link per row, all created in one transaction; the same rows are written back with
  a `link` column (and `qr`, the PNG's file name, when asked), ready for a mail merge. The file is
  replaced atomically only after the invitations are committed.
- A row that already has a link, or whose e-mail address already has an invitation to that city,
  is skipped unless `again` is set, so running the same file twice doubles nothing.
- Links and tokens are written to the file only, never logged.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from bot.admin import deep_link
from bot.storage import Storage, new_token
from conversation.model import Survey
from conversation.validation import is_month_value

logger = logging.getLogger(__name__)

COLUMNS = ("city", "country", "joined", "name", "e-mail")
REQUIRED = ("city", "country")
LINK_COLUMN = "link"
QR_COLUMN = "qr"
_ALIASES = {"email": "e-mail", "e_mail": "e-mail", "mail": "e-mail"}
MAX_ROWS = 10_000  # a network is a few hundred cities; anything far larger is a mistake
MAX_FIELD = 200


class BulkError(Exception):
    """The file cannot be used; `problems` name each bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class BulkResult:
    """What a run did."""

    created: int
    skipped: list[str]  # "line N: why", for rows left as they were


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]
    city: str
    country: str
    joined: str | None
    name: str | None
    email: str | None


def _column(header: str) -> str:
    key = header.strip().lower()
    return _ALIASES.get(key, key)


def _read(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]], str]:
    """Header, (line number, row) pairs and the delimiter of a CSV file (UTF-8, with or without BOM)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BulkError([f"{path}: cannot be read as UTF-8 text ({exc})"]) from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0] or ",", delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise BulkError([f"{path}: the file is empty"]) from None
    except csv.Error as exc:
        raise BulkError([f"line 1: {exc}"]) from None
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[str] = []
    line = reader.line_num
    try:
        for record in reader:
            first_line = line + 1
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            if len(record) > len(header):
                problems.append(f"line {first_line}: {len(record)} cells for {len(header)} columns")
                continue
            rows.append((first_line, dict(zip(header, record + [""] * (len(header) - len(record)), strict=True))))
            if len(rows) > MAX_ROWS:
                raise BulkError([f"{path}: more than {MAX_ROWS} rows"])
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        raise BulkError(problems)
    return header, rows, delimiter


def _check(header: list[str], rows: list[tuple[int, dict[str, str]]]) -> list[_Row]:
    """Every row checked; BulkError lists all problems with their line numbers."""
    names = {_column(h): h for h in header}
    problems = [f"line 1: no {c!r} column" for c in REQUIRED if c not in names]
    if len(names) != len(header):
        problems.append("line 1: a column appears twice")
    if problems:
        raise BulkError(problems)
    checked: list[_Row] = []
    seen: dict[tuple[str, str, str], int] = {}
    for line, values in rows:

        def cell(column: str, values: dict[str, str] = values) -> str:
            return values[names[column]].strip() if column in names else ""

        city, country, joined, name, email = (cell(c) for c in COLUMNS)
        row_problems = [f"no {c}" for c, v in (("city", city), ("country", country)) if not v]
        row_problems += [f"{c} longer than {MAX_FIELD} characters" for c in COLUMNS if len(cell(c)) > MAX_FIELD]
        if joined and not is_month_value(joined):
            row_problems.append(f"joined {joined!r} is not YYYY-MM")
        if email:
            try:
                email = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError:
                row_problems.append(f"e-mail {email!r} is not an e-mail address")
        key = (city.casefold(), country.casefold(), (email or name).casefold())
        if key[2] and key in seen:
            row_problems.append(f"the same person as line {seen[key]}")
        seen.setdefault(key, line)
        if row_problems:
            problems.append(f"line {line}: " + ", ".join(row_problems))
            continue
        checked.append(_Row(line, values, city, country, joined or None, name or None, email or None))
    if problems:
        raise BulkError(problems)
    return checked


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:40] or "city"


async def invite_from_file(
    storage: Storage,
    survey: Survey,
    bot_username: str,
    path: Path,
    *,
    now: dt.datetime,
    uses: int,
    days: int,
    again: bool = False,
    qr_dir: Path | None = None,
) -> BulkResult:
    """Create one personal link per new row of the CSV file and write the rows back with their links."""
    header, raw_rows, delimiter = _read(path)
    rows = _check(header, raw_rows)
    link_column = next((h for h in header if _column(h) == LINK_COLUMN), None)
    qr_column = next((h for h in header if _column(h) == QR_COLUMN), None)
    out_header = list(header)
    if link_column is None:
        link_column = LINK_COLUMN
        out_header.append(link_column)
    if qr_dir is not None and qr_column is None:
        qr_column = QR_COLUMN
        out_header.append(qr_column)

    emails: dict[tuple[str, str], set[str]] = {}
    for city in await storage.list_reports(survey.id):
        emails[(city.name.casefold(), city.country.casefold())] = await storage.invited_emails(city.id)
    todo: list[_Row] = []
    skipped: list[str] = []
    for row in rows:
        if not again and row.values.get(link_column, "").strip():
            skipped.append(f"line {row.line}: already has a link")
        elif (
            not again
            and row.email
            and row.email.casefold() in emails.get((row.city.casefold(), row.country.casefold()), set())
        ):
            skipped.append(f"line {row.line}: {row.city} already has an invitation for this e-mail address "
                           "(its link is not in this file; --again makes a new one)")  # fmt: skip
        else:
            todo.append(row)
    if not todo:
        return BulkResult(0, skipped)

    tokens = [new_token() for _ in todo]
    links = {row.line: deep_link(bot_username, token) for row, token in zip(todo, tokens, strict=True)}
    pictures: dict[int, str] = {}
    if qr_dir is not None:
        pictures = {row.line: f"{_slug(row.city)}-{row.line}.png" for row in todo}
    output = {line: dict(values) for line, values in raw_rows}
    for row in todo:
        output[row.line][link_column] = links[row.line]
        if qr_column is not None and row.line in pictures:
            output[row.line][qr_column] = pictures[row.line]

    written: list[Path] = []  # temporary files, renamed into place only after the commit
    try:
        written.append(_write_csv(path, out_header, [output[line] for line, _ in raw_rows], delimiter))
        if qr_dir is not None:
            written += _write_qr(qr_dir, {pictures[line]: link for line, link in links.items()})
        await storage.invite_cities(
            survey.id,
            [(row.city, row.country, row.joined, row.name, row.email) for row in todo],
            tokens,
            now,
            max_uses=uses,
            expires_at=now + dt.timedelta(days=days),
        )
    except BaseException:
        for tmp in written:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    os.replace(written[0], path)
    for tmp in written[1:]:
        os.replace(tmp, tmp.with_suffix(""))
    logger.info("invited %d row(s) from a file, skipped %d", len(todo), len(skipped))
    return BulkResult(len(todo), skipped)


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]], delimiter: str) -> Path:
    """Write the rows to a temporary file beside `path` (flushed to disk) and return its path."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(name)


def _write_qr(directory: Path, pictures: dict[str, str]) -> list[Path]:
    """One QR code per link as `<name>.part` files in `directory`; returns their paths."""
    import segno  # only needed when QR codes are asked for

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, link in pictures.items():
        tmp = directory / (file_name + ".part")
        segno.make(link, error="m").save(str(tmp), kind="png", scale=8, border=4)
        written.append(tmp)
    return written
