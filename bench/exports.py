"""Export of 1,000 submitted reports to CSV, XLSX and JSON: time and peak memory.

    python -m bench.exports

Submitted reports with every applicable question answered (long texts of 100-400 words within each
question's limit, about 40 answers per report) are created with `Storage`, in steps of 250, 500 and
1,000 reports (a copy of the database is kept at each step). Every export runs in a fresh process
(`python -m bench.exports child ...`), so memory figures do not depend on what ran before:

- time: wall time of `bot.exports.export_reports` (opening the database excluded);
- peak RSS above the process's RSS just before the export (VmHWM reset through clear_refs);
- tracemalloc peak of a second run in the same process.

Every report has two attachments (one with a caption). What was timed is then read back and
checked against the database (`verify`): one row per report, each row holding exactly that
report's answers (text cells compared with the formula guard undone), its attachments listed and
counted. An export that fails the check fails the benchmark.

The baseline is a minimal exporter doing the same work: stdlib sqlite3 reading all answers and
attachments in ordered queries, the same formula guard, written with csv.writer / openpyxl's
write-only workbook / json.dumps per report (no applicability rules, no atomic replace).
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    SEED_NOW,
    SURVEY,
    Row,
    print_table,
    report_answers,
    reset_peak_rss,
    say,
    seed,
    time_bound,
    vm_kb,
)
from conversation.state import AnswerValue, Attachment

SIZES = (250, 500, 1000)
FORMATS = ("csv", "xlsx", "json")
TARGET_SECONDS = 2.0


# ---------------------------------------------------------------- building the databases


async def build(work: Path) -> dict[int, Path]:
    """Databases of 250, 500 and 1,000 submitted reports."""

    def answers_for(index: int, rng: random.Random) -> dict[str, AnswerValue]:
        return report_answers(rng, index, long_words=(100, 400), yes_share=0.8)

    live = work / "live" / "gnlc.sqlite3"
    paths: dict[int, Path] = {}
    done = 0
    for size in SIZES:
        seeded = await seed(
            live, size - done, 1, answers_for=answers_for, submitted=True, first_index=done, seed_value=size
        )
        await attach_files(live, seeded)
        done = size
        copy = work / f"reports-{size}.sqlite3"
        shutil.copyfile(live, copy)  # closed: the WAL is checkpointed into the main file
        paths[size] = copy
    return paths


async def attach_files(db: Path, seeded: list[list[Any]]) -> None:
    """Two attachments per report (the second with a caption), recorded like the bot records them."""
    from bot.storage import Storage

    storage = await Storage.open(db)
    try:
        for first, *_rest in seeded:
            for n in (1, 2):
                attachment = Attachment(
                    sha256=f"{first.report_index:032x}{n:032x}",
                    name=f"plan-{first.report_index}-{n}.pdf",
                    mime_type="application/pdf",
                    size=1000 * first.report_index + n,
                    caption=f"Annex {n} of city {first.report_index}" if n == 2 else None,
                )
                await storage.add_attachment(first.contact.report_id, first.contact.id, attachment, SEED_NOW)
    finally:
        await storage.close()


def content_of(db: Path) -> tuple[float, float, int]:
    """(answers per report, words per long answer, database bytes)."""
    with sqlite3.connect(db) as conn:
        reports = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        answers = conn.execute("SELECT count(*) FROM answers").fetchone()[0]
        long_ids = [q.id for q in SURVEY.questions if q.kind == "long_text"]
        marks = ",".join("?" * len(long_ids))
        texts = [
            json.loads(v)
            for (v,) in conn.execute(f"SELECT value_json FROM answers WHERE question_id IN ({marks})", long_ids)
        ]
    words = sum(len(t.split()) for t in texts) / max(1, len(texts))
    return answers / reports, words, db.stat().st_size


# ---------------------------------------------------------------- the exporters


def ours(db: Path, fmt: str, output: Path) -> Callable[[], int]:
    from bot.exports import export_reports
    from bot.storage import Storage

    async def run() -> int:
        storage = await Storage.open(db)
        try:
            return await export_reports(storage, SURVEY, fmt, output)  # type: ignore[arg-type]
        finally:
            await storage.close()

    return lambda: asyncio.run(run())


def _baseline_rows(db: Path) -> Iterator[tuple[sqlite3.Row, dict[str, Any]]]:
    """(report row, answers) per report, from one ordered query."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        current: sqlite3.Row | None = None
        answers: dict[str, Any] = {}
        query = (
            "SELECT r.id, r.city, r.country, r.status, r.submitted_at, r.languages, a.question_id, a.value_json"
            " FROM reports AS r LEFT JOIN answers AS a ON a.report_id = r.id ORDER BY r.id"
        )
        for row in conn.execute(query):
            if current is not None and row["id"] != current["id"]:
                yield current, answers
                answers = {}
            current = row
            if row["question_id"] is not None:
                answers[row["question_id"]] = json.loads(row["value_json"])
        if current is not None:
            yield current, answers
    finally:
        conn.close()


def _baseline_attachments(db: Path) -> dict[int, list[dict[str, Any]]]:
    """Attachments per report id, in upload order (one query)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[int, list[dict[str, Any]]] = {}
        query = "SELECT report_id, name, size, mime_type, sha256, caption FROM attachments ORDER BY report_id, id"
        for report_id, name, size, mime, sha256, caption in conn.execute(query):
            item = {"name": name, "size": size, "mime_type": mime, "sha256": sha256, "caption": caption}
            out.setdefault(report_id, []).append(item)
        return out
    finally:
        conn.close()


def baseline(db: Path, fmt: str, output: Path) -> Callable[[], int]:
    from openpyxl import Workbook

    from bot.exports import FORMULA_TRIGGERS, column_ids

    ids = column_ids(SURVEY)
    questions = ids[5:-2]
    files = _baseline_attachments(db)

    def guard(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) else value

    def cells(report: sqlite3.Row, answers: dict[str, Any]) -> list[Any]:
        values = [";".join(v) if isinstance(v, list) else v for v in (answers.get(q, "") for q in questions)]
        head = [report["city"], report["country"], report["status"], report["submitted_at"], report["languages"]]
        attached = files.get(report["id"], [])
        listed = "; ".join(
            f"{a['name']} ({a['size']} B)" + (f": {a['caption']}" if a["caption"] else "") for a in attached
        )
        return [guard(v) for v in (*head, *values, listed)] + [len(attached)]

    def run() -> int:
        count = 0
        if fmt == "csv":
            with output.open("w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(ids)
                for report, answers in _baseline_rows(db):
                    writer.writerow(cells(report, answers))
                    count += 1
        elif fmt == "xlsx":
            wb = Workbook(write_only=True)
            ws = wb.create_sheet("Reports")
            ws.append(ids)
            for report, answers in _baseline_rows(db):
                ws.append(cells(report, answers))
                count += 1
            wb.save(output)
        else:
            with output.open("w", encoding="utf-8") as fh:
                fh.write("[\n")
                for report, answers in _baseline_rows(db):
                    if count:
                        fh.write(",\n")
                    item = {
                        "city": report["city"],
                        "country": report["country"],
                        "answers": answers,
                        "attachments": files.get(report["id"], []),
                    }
                    fh.write(json.dumps(item, ensure_ascii=False))
                    count += 1
                fh.write("\n]\n")
        return count

    return run


# ---------------------------------------------------------------- reading an export back


def read_back(fmt: str, output: Path) -> list[dict[str, Any]]:
    """The export's rows as {column id: cell} (JSON: answers and attachments kept as they are)."""
    from openpyxl import load_workbook

    from bot.exports import column_ids

    ids = column_ids(SURVEY)
    if fmt == "json":
        return list(json.loads(output.read_text(encoding="utf-8")))
    rows: list[list[Any]]
    if fmt == "csv":
        with output.open(encoding="utf-8-sig", newline="") as fh:
            rows = [list(r) for r in csv.reader(fh)]
    else:
        wb = load_workbook(output, read_only=True)
        rows = [["" if c is None else c for c in r] for r in wb.worksheets[0].iter_rows(values_only=True)]
        wb.close()
    assert rows and list(rows[0]) == ids, "the first row is not the column ids"
    body = [r for r in rows[1:] if r and r[0] not in ("", None)]
    return [dict(zip(ids, r, strict=False)) for r in body]


def verify(fmt: str, output: Path, db: Path) -> list[str]:
    """What is wrong with the export compared with the database (empty: nothing)."""
    from bot.exports import column_ids

    questions = column_ids(SURVEY)[5:-2]
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for report, answers in _baseline_rows(db):
        stored[report["city"], report["country"]] = {"id": report["id"], "answers": answers}
    files = _baseline_attachments(db)
    rows = read_back(fmt, output)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (str(row.get("city")), str(row.get("country")))
        if key not in stored:
            continue  # a second (translated) header row, or a city that does not exist: counted below
        if key in seen:
            problems.append(f"{key}: more than one row")
        seen.add(key)
        expected = stored[key]["answers"]
        attached = files.get(stored[key]["id"], [])
        if fmt == "json":
            if row["answers"] != {q: v for q, v in expected.items() if q in questions}:
                problems.append(f"{key}: answers differ from the database")
            if [a["name"] for a in row.get("attachments", [])] != [a["name"] for a in attached]:
                problems.append(f"{key}: attachments not listed")
            continue
        for question in questions:
            cell = row.get(question)
            text = str(cell).removeprefix("'") if cell not in (None, "") else ""
            value = expected.get(question)
            want = ";".join(value) if isinstance(value, list) else ("" if value is None else str(value))
            if text != want:
                problems.append(f"{key}: {question} differs from the database")
                break
        listed = str(row.get("attachments") or "")
        if int(row.get("attachment_count") or 0) != len(attached) or not all(a["name"] in listed for a in attached):
            problems.append(f"{key}: attachments not listed")
    missing = len(stored) - len(seen)
    if missing or len(rows) - len(seen) > 1:
        problems.append(f"{len(seen)} report rows for {len(stored)} reports, {len(rows) - len(seen)} other rows")
    return problems


# ---------------------------------------------------------------- one measurement (child process)


def child(impl: str, fmt: str, db: Path, out_dir: Path) -> dict[str, Any]:
    make = ours if impl == "ours" else baseline
    first = make(db, fmt, out_dir / f"first.{fmt}")
    rss_before = vm_kb("VmRSS")
    if not reset_peak_rss():
        raise SystemExit("cannot reset the peak RSS (/proc/self/clear_refs)")
    start = time.perf_counter()
    count = first()
    seconds = time.perf_counter() - start
    peak_rss_delta = vm_kb("VmHWM") - rss_before
    size = (out_dir / f"first.{fmt}").stat().st_size
    problems = verify(fmt, out_dir / f"first.{fmt}", db)
    second = make(db, fmt, out_dir / f"second.{fmt}")
    tracemalloc.start()
    second()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "reports": count,
        "seconds": seconds,
        "peak_rss_delta_kb": peak_rss_delta,
        "traced_peak_kb": traced_peak / 1024,
        "bytes": size,
        "problems": problems[:5],
        "problem_count": len(problems),
    }


def measure(impl: str, fmt: str, db: Path, work: Path) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(dir=work))
    done = subprocess.run(
        [sys.executable, "-m", "bench.exports", "child", impl, fmt, str(db), str(out_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(f"export child failed ({done.returncode}):\n{done.stderr[-3000:]}")


# ---------------------------------------------------------------- main


def main() -> int:
    if sys.argv[1:2] == ["child"]:
        impl, fmt, db, out_dir = sys.argv[2:6]
        print("RESULT " + json.dumps(child(impl, fmt, Path(db), Path(out_dir))), flush=True)
        return 0
    time_bound(175)
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        dbs = asyncio.run(build(work))
        per_report, words, db_bytes = content_of(dbs[1000])
        say(f"seeded 1,000 submitted reports in {time.perf_counter() - t0:.1f} s")
        results: dict[tuple[str, str, int], dict[str, Any]] = {}
        for size in SIZES:
            for fmt in FORMATS:
                impls = ("ours", "baseline") if size == SIZES[-1] else ("ours",)
                for impl in impls:
                    results[impl, fmt, size] = measure(impl, fmt, dbs[size], work)
                    r = results[impl, fmt, size]
                    say(f"{impl} {fmt} {size}: {r['seconds']:.2f} s, peak RSS +{r['peak_rss_delta_kb'] / 1024:.1f} MB")

    rows: list[Row] = []
    scaling: list[Row] = []
    wrong = {key: r["problems"] for key, r in results.items() if r["problem_count"]}
    for fmt in FORMATS:
        o, b = results["ours", fmt, 1000], results["baseline", fmt, 1000]
        rows += [
            Row(
                f"{fmt}: exports read back with a problem (all sizes)",
                sum(1 for (impl, f, _size) in wrong if impl == "ours" and f == fmt),
                sum(1 for (impl, f, _size) in wrong if impl == "baseline" and f == fmt),
                decimals=0,
                limit=0,
                absolute=True,
                target_text="0",
            ),
            Row(f"{fmt}: time", o["seconds"], b["seconds"], "s", limit=TARGET_SECONDS, absolute=True),
            Row(
                f"{fmt}: peak RSS above start",
                o["peak_rss_delta_kb"] / 1024,
                b["peak_rss_delta_kb"] / 1024,
                "MB",
                decimals=1,
            ),
            Row(f"{fmt}: tracemalloc peak", o["traced_peak_kb"] / 1024, b["traced_peak_kb"] / 1024, "MB", decimals=1),
        ]
        for label, key in (("peak RSS above start", "peak_rss_delta_kb"), ("tracemalloc peak", "traced_peak_kb")):
            at = {size: results["ours", fmt, size][key] / 1024 for size in SIZES}
            allowed = 1.5 * at[250] + 2  # 4x the reports: at most 1.5x the memory (+2 MB of noise)
            scaling.append(
                Row(
                    f"{fmt}: {label} (500 reports: {at[500]:.1f} MB)",
                    at[1000],
                    at[250],
                    "MB",
                    decimals=1,
                    limit=allowed,
                    absolute=True,
                    target_text=f"≤ {allowed:.1f} MB (flat)",
                )
            )
    notes = [
        f"database: {per_report:.1f} answers per report, long answers {words:.0f} words on average, "
        f"{db_bytes / 1e6:.0f} MB for 1,000 reports; output sizes: "
        + ", ".join(f"{fmt} {results['ours', fmt, 1000]['bytes'] / 1e6:.0f} MB" for fmt in FORMATS),
        "each export in a fresh process; baseline = minimal exporter (sqlite3 queries, csv/openpyxl/json)",
        "read back: one row per report, every answer equal to the database, 2 attachments listed per report",
    ] + [f"{impl} {fmt} {size}: {problems}" for (impl, fmt, size), problems in wrong.items()]
    ok = print_table("export of 1,000 submitted reports", rows, notes)
    ok &= print_table(
        "export memory vs number of reports (ours)",
        scaling,
        ["'flat' = at 1,000 reports at most 1.5x the figure at 250 reports, plus 2 MB"],
        columns=("1,000 reports", "250 reports"),
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
