"""Tests of bot.exports against a real SQLite database and real files on disk."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.exports import (
    FORMATS,
    ExportError,
    column_ids,
    column_titles,
    export_files,
    export_reports,
    safe_name,
    spreadsheet_cell,
)
from bot.storage import City, Storage
from conversation.i18n import get_translator
from conversation.loader import load_survey
from conversation.model import Kind, Survey
from conversation.render import format_size
from conversation.state import AnswerValue, Attachment, Report, ReportStatus, Session

NOW = dt.datetime(2021, 11, 3, 14, 5, tzinfo=dt.UTC)
SUBMITTED = dt.datetime(2021, 12, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def survey() -> Survey:
    return load_survey()


@pytest.fixture
async def storage(tmp_path: Path):
    store = await Storage.open(tmp_path / "data" / "gnlc.sqlite3")
    yield store
    await store.close()


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "files"


@dataclass
class Saved:
    """What a test stored for one city, to compare the exports with."""

    city: City
    language: str
    answers: dict[str, AnswerValue]
    status: ReportStatus = ReportStatus.OPEN
    submitted_at: dt.datetime | None = None
    files: list[tuple[Attachment, bytes]] = field(default_factory=list)
    inapplicable: frozenset[str] = frozenset()


async def store_report(
    storage: Storage,
    files_dir: Path,
    name: str,
    country: str,
    language: str,
    answers: dict[str, AnswerValue],
    *,
    status: ReportStatus = ReportStatus.OPEN,
    submitted_at: dt.datetime | None = None,
    files: Sequence[tuple[str, bytes, str | None] | tuple[str, bytes, str | None, str]] = (),
    missing_blobs: frozenset[str] = frozenset(),
    inapplicable: frozenset[str] = frozenset(),
) -> Saved:
    """Create the city's report through Storage as the bot does: a contact saves answers, uploads files."""
    city = await storage.find_or_create_report("gnlc-biennial-2019-2021", name, country, "2016-09", NOW)
    contact = await storage.console_contact(f"{name}-contact", city.id, language, NOW)
    after = Report(answers=answers, status=status, submitted_at=submitted_at)
    await storage.save(contact, Report(), after, Session(language=language), NOW)
    saved = Saved(city, language, answers, status, submitted_at, inapplicable=inapplicable)
    for file_name, data, mime, *caption in files:
        sha = hashlib.sha256(data).hexdigest()
        if file_name not in missing_blobs:
            blob = files_dir / sha[:2] / sha
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
        attachment = Attachment(
            sha256=sha, name=file_name, mime_type=mime, size=len(data), caption=caption[0] if caption else None
        )
        assert await storage.add_attachment(city.id, contact.id, attachment, NOW)
        saved.files.append((attachment, data))
    return saved


@pytest.fixture
async def saved(storage: Storage, files_dir: Path) -> list[Saved]:
    """Three cities: English with a stale branch answer, Arabic, Chinese."""
    hamburg = await store_report(
        storage,
        files_dir,
        "Hamburg",
        "Germany",
        "en",
        {
            "city_name": "Hamburg",
            "country": "Germany",
            "joined_gnlc": "2016-09",
            "contact_phone": "+4940123456",
            "contact_position": "=SUM(A1)",
            "mayor_gender": "male",
            # "yes" then "no": the adoption date is kept in storage but no longer applies.
            "strategy_adopted": "no",
            "strategy_adoption_date": "2019-05",
            "medium_term_progress": 'First line, with "quotes"; and commas.\n\nSecond paragraph.',
            "clusters": ("esd", "literacy", "monitoring_evaluation"),
            "cluster_relevance": "very",
            "further_support": "-more peer learning",
            "overall_experience": "@team thanks",
            "supporting_files": "done",
        },
        status=ReportStatus.SUBMITTED,
        submitted_at=SUBMITTED,
        files=[
            ("plan.pdf", b"%PDF-1.4 plan " * 94_000, "application/pdf"),  # about 1.25 MiB
            ("photo.jpg", b"\xff\xd8\xff jpeg", "image/jpeg", "Learning festival; 2020 = 5,000 visitors"),
        ],
        inapplicable=frozenset({"strategy_adoption_date"}),
    )
    cairo = await store_report(
        storage,
        files_dir,
        "القاهرة",
        "مصر",
        "ar",
        {
            "city_name": "القاهرة",
            "country": "مصر",
            "core_team": "yes",
            "core_team_description": "لجنة المدينة المتعلمة تجتمع كل شهر.\nتضم ممثلين عن الوزارات.",
            "clusters": ("literacy",),
        },
        files=[
            ("report.pdf", b"first report", "application/pdf"),
            ("report.pdf", b"second report", "application/pdf"),
            ("../evil/x.txt", b"path traversal attempt", "text/plain"),
            ("lost.docx", b"this blob was never stored", None),
        ],
        missing_blobs=frozenset({"lost.docx"}),
    )
    shanghai = await store_report(
        storage,
        files_dir,
        "上海",
        "中国",
        "zh",
        {
            "city_name": "上海",
            "country": "中国",
            "participation_barriers": "时间不足，信息不对称。",
            # Clusters were answered, then cleared: the relevance answer no longer applies.
            "cluster_relevance": "somewhat",
        },
        inapplicable=frozenset({"cluster_relevance"}),
    )
    return [hamburg, cairo, shanghai]


def question_ids(survey: Survey) -> list[str]:
    return [q.id for q in survey.questions if q.kind != Kind.FILE_UPLOAD]


def flat(value: AnswerValue | None) -> str:
    if value is None:
        return ""
    return ";".join(value) if isinstance(value, tuple) else value


def expected_attachments_cell(s: Saved) -> str:
    en = get_translator("en")
    return "; ".join(
        f"{a.name} ({format_size(en, a.size)})" + (f": {a.caption}" if a.caption else "") for a, _ in s.files
    )


def expected_row(survey: Survey, s: Saved) -> dict[str, str]:
    """The CSV row for a saved report, cells guarded as the export guards them."""
    row = {
        "city": s.city.name,
        "country": s.city.country,
        "status": s.status.value,
        "submitted_at": s.submitted_at.isoformat() if s.submitted_at else "",
        "languages": s.language,
    }
    for qid in question_ids(survey):
        value = None if qid in s.inapplicable else s.answers.get(qid)
        row[qid] = spreadsheet_cell(flat(value))
    row["attachments"] = spreadsheet_cell(expected_attachments_cell(s))
    row["attachment_count"] = str(len(s.files))
    return row


# ---------------------------------------------------------------- csv


async def test_csv_round_trip(storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path) -> None:
    out = tmp_path / "reports.csv"
    assert await export_reports(storage, survey, "csv", out) == 3
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the file as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == column_ids(survey)
    assert rows[0][:5] == ["city", "country", "status", "submitted_at", "languages"]
    assert rows[0][-2:] == ["attachments", "attachment_count"]
    assert rows[0][5:-2] == question_ids(survey)
    assert "supporting_files" not in rows[0]
    assert len(rows) == 4  # one header row by default
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    for record, s in zip(records, saved, strict=True):
        assert record == expected_row(survey, s)

    hamburg, cairo, shanghai = records
    assert hamburg["strategy_adopted"] == "no"
    assert hamburg["strategy_adoption_date"] == ""  # kept in storage, but no longer applies
    assert hamburg["clusters"] == "esd;literacy;monitoring_evaluation"
    assert hamburg["cluster_relevance"] == "very"
    assert hamburg["joined_gnlc"] == "2016-09"
    assert hamburg["contact_position"] == "'=SUM(A1)"
    assert hamburg["contact_phone"] == "'+4940123456"
    assert hamburg["further_support"] == "'-more peer learning"
    assert hamburg["overall_experience"] == "'@team thanks"
    assert hamburg["medium_term_progress"] == 'First line, with "quotes"; and commas.\n\nSecond paragraph.'
    assert hamburg["submitted_at"] == "2021-12-01T08:00:00+00:00"
    assert hamburg["attachments"] == "plan.pdf (1.3 MiB); photo.jpg (8 bytes): Learning festival; 2020 = 5,000 visitors"
    assert hamburg["attachment_count"] == "2"
    assert cairo["city"] == "القاهرة" and cairo["languages"] == "ar"
    assert cairo["core_team_description"].startswith("لجنة المدينة")
    assert cairo["submitted_at"] == "" and cairo["status"] == "open"
    assert shanghai["participation_barriers"] == "时间不足，信息不对称。"
    assert shanghai["cluster_relevance"] == ""
    assert shanghai["attachments"] == "" and shanghai["attachment_count"] == "0"


async def test_csv_second_header_row_only_for_other_languages(
    storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path
) -> None:
    out = tmp_path / "reports-fr.csv"
    assert await export_reports(storage, survey, "csv", out, header_language="fr") == 3
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    fr = get_translator("fr")
    assert rows[0] == column_ids(survey)
    assert rows[1] == [spreadsheet_cell(t) for t in column_titles(survey, fr)]
    assert rows[1][0] == fr.t("Name of city")
    assert rows[1][5] == fr.gettext(survey.questions[0].text)
    assert len(rows) == 5
    assert rows[2][0] == "Hamburg"


# ---------------------------------------------------------------- xlsx


async def test_xlsx_round_trip(storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path) -> None:
    out = tmp_path / "reports.xlsx"
    assert await export_reports(storage, survey, "xlsx", out) == 3
    wb = load_workbook(out)
    ws = wb["Reports"]
    rows = list(ws.iter_rows(values_only=True))
    ids = column_ids(survey)
    assert list(rows[0]) == ids
    assert list(rows[1]) == column_titles(survey, get_translator("en"))  # titles row, English by default
    assert len(rows) == 5
    for values, s in zip(rows[2:], saved, strict=True):
        record = dict(zip(ids, values, strict=True))
        expected = expected_row(survey, s)
        expected_cells: dict[str, object] = {k: (v if v != "" else None) for k, v in expected.items()}
        expected_cells["attachment_count"] = len(s.files)
        assert record == expected_cells
    hamburg = dict(zip(ids, rows[2], strict=True))
    assert hamburg["strategy_adoption_date"] is None
    assert hamburg["contact_position"] == "'=SUM(A1)"
    assert hamburg["clusters"] == "esd;literacy;monitoring_evaluation"
    assert hamburg["attachment_count"] == 2
    # No cell became a formula.
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)
    assert dict(zip(ids, rows[3], strict=True))["city"] == "القاهرة"
    assert dict(zip(ids, rows[4], strict=True))["participation_barriers"] == "时间不足，信息不对称。"


async def test_xlsx_titles_in_header_language(
    storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path
) -> None:
    out = tmp_path / "reports-ar.xlsx"
    await export_reports(storage, survey, "xlsx", out, header_language="ar")
    rows = list(load_workbook(out)["Reports"].iter_rows(values_only=True, max_row=2))
    assert list(rows[0]) == column_ids(survey)
    assert list(rows[1]) == column_titles(survey, get_translator("ar"))


# ---------------------------------------------------------------- json


async def test_json_round_trip(storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path) -> None:
    out = tmp_path / "reports.json"
    assert await export_reports(storage, survey, "json", out) == 3
    text = out.read_text(encoding="utf-8")
    assert text.startswith("[\n") and text.rstrip().endswith("\n]")
    assert "القاهرة" in text and "上海" in text  # written as UTF-8, not \u escapes
    data = json.loads(text)
    assert len(data) == 3
    for obj, s in zip(data, saved, strict=True):
        assert set(obj) == {"city", "country", "status", "submitted_at", "languages", "answers", "attachments"}
        assert obj["city"] == s.city.name and obj["country"] == s.city.country
        assert obj["status"] == s.status.value
        assert obj["submitted_at"] == (s.submitted_at.isoformat() if s.submitted_at else None)
        assert obj["languages"] == [s.language]
        expected = {
            qid: list(v) if isinstance(v, tuple) else v
            for qid, v in s.answers.items()
            if qid not in s.inapplicable and qid != "supporting_files"
        }
        assert obj["answers"] == expected
        order = question_ids(survey)
        assert list(obj["answers"]) == sorted(obj["answers"], key=order.index)  # the form's order
        assert obj["attachments"] == [
            {"name": a.name, "size": a.size, "mime_type": a.mime_type, "sha256": a.sha256, "caption": a.caption}
            for a, _ in s.files
        ]
        assert any(a["caption"] for a in obj["attachments"]) == (s.city.name == "Hamburg")
    hamburg = data[0]["answers"]
    assert "strategy_adoption_date" not in hamburg
    assert hamburg["contact_position"] == "=SUM(A1)"  # JSON carries values unchanged
    assert hamburg["clusters"] == ["esd", "literacy", "monitoring_evaluation"]
    assert "cluster_relevance" not in data[2]["answers"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_no_reports(storage: Storage, survey: Survey, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"empty.{fmt}"
    assert await export_reports(storage, survey, fmt, out) == 0  # type: ignore[arg-type]
    if fmt == "json":
        assert json.loads(out.read_text(encoding="utf-8")) == []
    elif fmt == "csv":
        with out.open(encoding="utf-8-sig", newline="") as fh:
            assert list(csv.reader(fh)) == [column_ids(survey)]
    else:
        assert load_workbook(out)["Reports"].max_row == 2


async def test_unknown_format(storage: Storage, survey: Survey, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pdf"):
        await export_reports(storage, survey, "pdf", tmp_path / "x.pdf")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]


# ---------------------------------------------------------------- failures


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


@pytest.mark.parametrize("fmt", FORMATS)
async def test_output_inside_a_regular_file(
    storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path, fmt: str
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("plain file")
    out = blocker / f"reports.{fmt}"
    with pytest.raises(ExportError, match="not a directory") as err:
        await export_reports(storage, survey, fmt, out)  # type: ignore[arg-type]
    assert str(out) in str(err.value)
    assert blocker.read_text() == "plain file"
    assert leftovers(tmp_path) == []


async def test_output_is_a_directory(storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    with pytest.raises(ExportError, match="is a directory") as err:
        await export_reports(storage, survey, "csv", out)
    assert str(out) in str(err.value)
    assert list(out.iterdir()) == []
    assert leftovers(tmp_path) == []
    with pytest.raises(ExportError, match="is a directory"):
        await export_files(storage, survey, tmp_path / "files", out)


async def test_output_directory_missing(storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "reports.json"
    with pytest.raises(ExportError, match="does not exist") as err:
        await export_reports(storage, survey, "json", out)
    assert str(out) in str(err.value)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("fmt", FORMATS)
async def test_failure_midway_leaves_previous_export(
    storage: Storage, survey: Survey, saved: list[Saved], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    out = tmp_path / f"reports.{fmt}"
    out.write_bytes(b"previous export")
    real = storage.iter_reports_with_answers

    async def failing(survey_id: str):
        async for item in real(survey_id):
            yield item
            raise RuntimeError("database went away")

    monkeypatch.setattr(storage, "iter_reports_with_answers", failing)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # where openpyxl spools a write-only sheet's rows
    with pytest.raises(RuntimeError, match="went away"):
        await export_reports(storage, survey, fmt, out)  # type: ignore[arg-type]
    assert out.read_bytes() == b"previous export"
    assert leftovers(tmp_path) == []
    assert list(spool.iterdir()) == []


# ---------------------------------------------------------------- files


async def test_export_files_zip(
    storage: Storage, survey: Survey, saved: list[Saved], files_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "files.zip"
    assert await export_files(storage, survey, files_dir, out) == 5  # lost.docx is missing
    hamburg, cairo, _ = saved
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert sorted(names) == sorted(
            [
                "Hamburg (Germany)/plan.pdf",
                "Hamburg (Germany)/photo.jpg",
                "القاهرة (مصر)/report.pdf",
                "القاهرة (مصر)/report (2).pdf",
                "القاهرة (مصر)/_evil_x.txt",
                "MISSING.txt",
            ]
        )
        assert zf.read("Hamburg (Germany)/plan.pdf") == hamburg.files[0][1]
        assert zf.read("Hamburg (Germany)/photo.jpg") == hamburg.files[1][1]
        assert zf.read("القاهرة (مصر)/report.pdf") == b"first report"
        assert zf.read("القاهرة (مصر)/report (2).pdf") == b"second report"
        assert zf.read("القاهرة (مصر)/_evil_x.txt") == b"path traversal attempt"
        missing = zf.read("MISSING.txt").decode("utf-8")
        lost = cairo.files[3][0]
        assert "القاهرة (مصر)/lost.docx" in missing and lost.sha256 in missing
        assert not any(n.startswith("/") or ".." in n.split("/") for n in names)
        # Already-compressed media is stored, the rest deflated.
        assert zf.getinfo("Hamburg (Germany)/photo.jpg").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("Hamburg (Germany)/plan.pdf").compress_type == zipfile.ZIP_DEFLATED
    assert leftovers(tmp_path) == []


async def test_export_files_without_missing(storage: Storage, survey: Survey, files_dir: Path, tmp_path: Path) -> None:
    await store_report(
        storage, files_dir, "Cork", "Ireland", "en", {"city_name": "Cork"}, files=[("a.txt", b"a", None)]
    )
    await store_report(storage, files_dir, "Espoo", "Finland", "en", {"city_name": "Espoo"})
    out = tmp_path / "files.zip"
    assert await export_files(storage, survey, files_dir, out) == 1
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["Cork (Ireland)/a.txt"]


async def test_export_files_unwritable(
    storage: Storage, survey: Survey, saved: list[Saved], files_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    with pytest.raises(ExportError, match="blocker"):
        await export_files(storage, survey, files_dir, blocker / "files.zip")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("plan.pdf", "plan.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a\\b:c*?.txt", "a_b_c__.txt"),
        ("..", "file"),
        ("   ", "file"),
        ("Hamburg (Germany)", "Hamburg (Germany)"),
        ("تقرير.pdf", "تقرير.pdf"),
    ],
)
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_safe_name_shortens_keeping_extension() -> None:
    shortened = safe_name("x" * 400 + ".pdf")
    assert len(shortened) <= 150 and shortened.endswith(".pdf")


@pytest.mark.parametrize(
    ("value", "guarded"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+49 40 1234", "'+49 40 1234"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\t=1", "'\t=1"),
        ("a=b", "a=b"),
        ("", ""),
        ("مرحبا", "مرحبا"),
    ],
)
def test_spreadsheet_cell(value: str, guarded: str) -> None:
    assert spreadsheet_cell(value) == guarded
