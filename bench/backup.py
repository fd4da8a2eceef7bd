"""Backup and restore of 1,000 submitted reports with one supporting file each: time and size.

    python -m bench.backup

1,000 submitted reports (every applicable question answered, long texts of 100-400 words) are
created with `Storage`, each with one stored file of 20-300 KB of incompressible bytes (about
160 MB in all, as PDFs and photos are already compressed). Then:

- ours: `bot.backup.write_backup` (SQLite's online backup API, sha256 of every file, manifest,
  archive synced and renamed into place) and `bot.backup.restore_backup` into an empty directory
  (every checksum verified, `PRAGMA integrity_check`);
- baseline: the plainest archive of the same directory, `zipfile` storing the database file and
  every stored file as they are (no consistent snapshot, no checksums, no sync), and `extractall`.

Times are wall times of one run each after a warm-up of the page cache; sizes are the archives'.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import Row, print_table, report_answers, say, seed, time_bound
from conversation.state import AnswerValue

REPORTS = 1000
FILE_BYTES = (20_000, 300_000)
# A scheduled backup runs on a worker thread beside the bot; a few seconds for a whole reporting
# cycle's data keeps the window short, and a restore is a one-off. The ratio to a plain zip is shown
# for what the snapshot, the checksums, compressing the database and the syncs cost.
TARGET_SECONDS = 10.0


async def build(data: Path) -> None:
    """DATA_DIR with 1,000 submitted reports and one stored file each."""
    from bot.service import utc_now
    from bot.storage import Storage
    from conversation.state import Attachment

    def answers_for(index: int, rng: random.Random) -> dict[str, AnswerValue]:
        return report_answers(rng, index, long_words=(100, 400), yes_share=0.8)

    database = data / "gnlc.sqlite3"
    await seed(database, REPORTS, 1, answers_for=answers_for, submitted=True, seed_value=REPORTS)
    rng = random.Random(12)
    storage = await Storage.open(database)
    try:
        for city in await storage.list_reports("gnlc-biennial-2019-2021"):
            content = rng.randbytes(rng.randint(*FILE_BYTES))
            sha = hashlib.sha256(content).hexdigest()
            blob = data / "files" / sha[:2] / sha
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(content)
            attachment = Attachment(
                sha256=sha, name=f"plan-{city.id}.pdf", mime_type="application/pdf", size=len(content)
            )
            contact = (await storage.contact_listing(city.survey_id, city.id))[0].contact
            await storage.add_attachment(city.id, contact.id, attachment, utc_now())
    finally:
        await storage.close()


def plain_zip(data: Path, output: Path) -> None:
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in sorted(data.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(data).as_posix())


def timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> int:
    from bench.common import SURVEY
    from bot import backup

    time_bound(175)
    assert SURVEY.id == "gnlc-biennial-2019-2021"
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        work = Path(tmp)
        data = work / "data"
        t0 = time.perf_counter()
        asyncio.run(build(data))
        stored = sum(p.stat().st_size for p in (data / "files").rglob("*") if p.is_file())
        db_bytes = (data / "gnlc.sqlite3").stat().st_size
        say(
            f"seeded {REPORTS} reports with files in {time.perf_counter() - t0:.1f} s: "
            f"database {db_bytes / 1e6:.1f} MB, files {stored / 1e6:.1f} MB"
        )
        plain_zip(data, work / "warm.zip")  # the page cache holds everything for both runs
        (work / "warm.zip").unlink()

        ours_backup = timed(lambda: backup.write_backup(data, work / "ours.zip", shown=False))
        base_backup = timed(lambda: plain_zip(data, work / "plain.zip"))
        say(f"backup: ours {ours_backup:.2f} s, plain zip {base_backup:.2f} s")
        ours_restore = timed(lambda: backup.restore_backup(work / "ours.zip", work / "restored", shown=False))

        def unzip() -> None:
            with zipfile.ZipFile(work / "plain.zip") as zf:
                zf.extractall(work / "unzipped")

        base_restore = timed(unzip)
        say(f"restore: ours {ours_restore:.2f} s, plain unzip {base_restore:.2f} s")
        ours_size = (work / "ours.zip").stat().st_size
        base_size = (work / "plain.zip").stat().st_size
        shutil.rmtree(work / "restored")

    rows = [
        Row("backup: time", ours_backup, base_backup, "s", limit=TARGET_SECONDS, absolute=True),
        Row("backup: archive size", ours_size / 1e6, base_size / 1e6, "MB", decimals=1),
        Row("restore (verified): time", ours_restore, base_restore, "s", limit=TARGET_SECONDS, absolute=True),
    ]
    ok = print_table(
        f"backup of {REPORTS:,} submitted reports with one file each "
        f"(database {db_bytes / 1e6:.1f} MB, files {stored / 1e6:.1f} MB)",
        rows,
        columns=("ours", "plain zip"),
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
