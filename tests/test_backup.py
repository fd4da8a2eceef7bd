"""Backups while contacts answer, restores that check everything, and the copy kept before a migration.

- `test_backup_while_contacts_answer_restores_everything_acknowledged`: several contacts answer over
  the fake Bot API (real python-telegram-bot, real SQLite) while a backup is taken; restored into a
  new directory, every answer acknowledged before the backup began is there, every stored file is
  byte-identical, and the integrity check passes. The restored data opens and serves again.
- The `restore` command refuses a non-empty DATA_DIR (one line) and a damaged archive.
- Opening a database of an older schema keeps a copy beside it first and logs where.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bot import backup
from bot.settings import ENVIRONMENT_VARIABLES
from bot.storage import MIGRATIONS, SCHEMA_VERSION, Storage
from bot.storage.migrations import _statements
from tests.bot_process import ROOT
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY, running_bot
from tests.test_resilience import Contact, integrity, plan_for, stored_answers

CONTACTS = 6
FINISHED_FIRST = 2  # complete reports (with their supporting file) before the rush
BACKUPS = 5


def file_content(index: int) -> bytes:
    """What contact `index` uploads (as tests.test_resilience.Contact.upload sends it)."""
    return f"%PDF-1.4 supporting file of contact {index}".encode()


def never_give_up(contact: object, key: object, started: float, last_new: float) -> bool:
    return time.monotonic() - started > 20.0


async def test_backup_while_contacts_answer_restores_everything_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Flood control off: scripted contacts answer whole reports in milliseconds, which Telegram's pace
    # would stretch over minutes; this test is about backups (the pace is tested in test_telegram_e2e).
    api = FakeBotAPI(rate_limit_per_chat_per_second=None, rate_limit_per_second=None).start()
    try:
        async with running_bot(data, api=api) as h:
            cities = [(f"Backupburg {i}", "Archiveland") for i in range(CONTACTS)]
            tokens = [await h.invite(city, country) for city, country in cities]
            contacts = [
                Contact(api, i, 8100 + i, tokens[i], plan_for(i, *cities[i], "Yes" if i % 2 else "No"), never_give_up)
                for i in range(CONTACTS)
            ]
            for contact in contacts[:FINISHED_FIRST]:
                await contact.run(timeout=90)
            rush = [asyncio.create_task(c.run(timeout=120)) for c in contacts[FINISHED_FIRST:]]
            # Once the rush is under way, back up again and again while the contacts answer.
            await api.async_wait_until(lambda: all(len(c.acked) >= 3 for c in contacts[FINISHED_FIRST:]), 60)
            taken: list[tuple[Path, dict[int, set[str]], dict[str, bytes]]] = []
            answered_during = 0
            while not all(task.done() for task in rush) and len(taken) < BACKUPS:
                acknowledged = {c.user_id: set(c.acked) for c in contacts}
                files_before = {p.name: p.read_bytes() for p in (data / "files").glob("*/*")}
                before = sum(len(c.acked) for c in contacts)
                archive = tmp_path / "backups" / f"during-{len(taken)}.zip"
                result = await asyncio.to_thread(backup.write_backup, data, archive, shown=False)
                answered_during += sum(len(c.acked) for c in contacts) - before
                assert result.schema_version == SCHEMA_VERSION and not result.missing
                taken.append((archive, acknowledged, files_before))
                await asyncio.sleep(0.3)
            await asyncio.gather(*rush)
    finally:
        api.shutdown()
    print(f"\n{len(taken)} backups; {answered_during} answers acknowledged while one was being written")
    assert len(taken) >= 2

    for n, (archive, acknowledged, files_before) in enumerate(taken):
        restored = tmp_path / f"restored-{n}"
        backup.restore_backup(archive, restored, shown=False)
        db_path = restored / "gnlc.sqlite3"
        assert integrity(db_path) == "ok"
        problems: list[str] = []
        for contact in contacts:
            answers, _audits, _files = stored_answers(db_path, contact.user_id)
            for qid in sorted(acknowledged[contact.user_id]):
                if answers.get(qid) != contact.plan[qid].expected:
                    problems.append(f"user {contact.user_id}: {qid} acknowledged, restored as {answers.get(qid)!r}")
        assert not problems, f"backup {n}:\n" + "\n".join(problems)
        # Every stored file, byte-identical; the ones uploaded before the backup among them.
        restored_files = {p.name: p.read_bytes() for p in (restored / "files").glob("*/*")}
        for sha, content in files_before.items():
            assert restored_files.get(sha) == content
        for i in range(FINISHED_FIRST):
            content = file_content(i)
            assert restored_files[hashlib.sha256(content).hexdigest()] == content
        with sqlite3.connect(db_path) as db:
            referenced = {row[0] for row in db.execute("SELECT sha256 FROM attachments")}
        assert referenced <= restored_files.keys()
    # The restored data is the bot's own again: it opens at the current schema.
    storage = await Storage.open(db_path)
    try:
        assert await storage.contact_by_telegram_user(contacts[0].user_id) is not None
    finally:
        await storage.close()


def run_command(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=ROOT / "tests",
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def small_data_dir(data: Path) -> None:
    """A data directory with one report and one stored file."""
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        from bot.service import utc_now
        from conversation.state import Attachment

        city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, utc_now())
        content = b"a stored file"
        sha = hashlib.sha256(content).hexdigest()
        (data / "files" / sha[:2]).mkdir(parents=True)
        (data / "files" / sha[:2] / sha).write_bytes(content)
        attachment = Attachment(sha256=sha, name="plan.pdf", mime_type="application/pdf", size=len(content))
        contact = await storage.console_contact("backup-test", city.id, "en", utc_now())
        await storage.add_attachment(city.id, contact.id, attachment, utc_now())
    finally:
        await storage.close()


def test_backup_and_restore_commands_and_a_refused_non_empty_target(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(small_data_dir(data))
    archive = tmp_path / "b.zip"
    made = run_command(data, "backup", "--output", str(archive))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"backup written to {archive}: schema v{SCHEMA_VERSION}, 1 file(s)")
    assert made.stderr == ""  # no progress bar in a pipe

    target = tmp_path / "new"
    done = run_command(target, "restore", "--input", str(archive))
    assert done.returncode == 0, done.stderr
    assert "checksums and integrity check passed" in done.stdout
    assert (target / "gnlc.sqlite3").exists()

    before = (target / "gnlc.sqlite3").read_bytes()
    refused = run_command(target, "restore", "--input", str(archive))
    assert refused.returncode != 0
    assert refused.stderr.splitlines() == [
        f"error: DATA_DIR {target} is not empty; restore into an empty directory, or pass --force to replace it"
    ]
    assert (target / "gnlc.sqlite3").read_bytes() == before
    forced = run_command(target, "restore", "--input", str(archive), "--force")
    assert forced.returncode == 0, forced.stderr


def test_a_damaged_archive_is_refused_before_touching_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(small_data_dir(data))
    archive = tmp_path / "b.zip"
    backup.write_backup(data, archive, shown=False)
    # Rewrite the archive with one stored file changed (its own CRC is right, the manifest's sha256 not).
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename.startswith("files/"):
                content = b"tampered" + content
            dst.writestr(info, content)
    target = tmp_path / "target"
    with pytest.raises(backup.BackupError, match="does not match its checksum"):
        backup.restore_backup(damaged, target, shown=False)
    assert not (target / "gnlc.sqlite3").exists()
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["schema_version"] == SCHEMA_VERSION and len(manifest["files"]) == 1


def test_restore_refuses_a_directory_a_running_bot_holds(tmp_path: Path) -> None:
    from bot.startup import StartupError, prepare_data_dir

    data = tmp_path / "data"
    asyncio.run(small_data_dir(data))
    archive = tmp_path / "b.zip"
    backup.write_backup(data, archive, shown=False)
    target = tmp_path / "target"
    lock = prepare_data_dir(target)  # as a running bot holds it
    try:
        result = run_command(target, "restore", "--input", str(archive))
        assert result.returncode != 0
        assert len(result.stderr.splitlines()) == 1 and "is in use by bot pid" in result.stderr
    finally:
        lock.release()
    held = prepare_data_dir(target)
    try:
        with pytest.raises(StartupError):  # even within one process, a second holder is refused
            prepare_data_dir(target)
    finally:
        held.release()


def older_database(path: Path, version: int) -> None:
    """A database at schema `version` holding one report."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        for statement in _statements(script):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {version:d}")
    db.execute(
        "INSERT INTO reports (survey_id, city, country, created_at) VALUES ('s', 'Hamburg', 'Germany', '2021-01-01')"
    )
    db.close()


async def test_migrating_an_older_schema_keeps_a_copy_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    old = SCHEMA_VERSION - 1
    path = tmp_path / "gnlc.sqlite3"
    older_database(path, old)
    storage = await Storage.open(path)
    await storage.close()
    (copy,) = tmp_path.glob(f"gnlc.sqlite3.v{old}-*.bak")
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == old
        assert db.execute("SELECT city FROM reports").fetchall() == [("Hamburg",)]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and str(copy) in r.getMessage()]
    assert said, "the log does not say where the copy is"
    # A current database is not copied again.
    storage = await Storage.open(path)
    await storage.close()
    assert len(list(tmp_path.glob("*.bak"))) == 1


def test_scheduled_backups_are_pruned_to_the_newest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(small_data_dir(data))
    target = tmp_path / "backups"
    for _ in range(4):
        assert asyncio.run(backup.scheduled_backup(data, target, keep=2)) is not None
        time.sleep(1.05)  # names carry the second they were taken
    kept = sorted(p.name for p in target.iterdir())
    assert len(kept) == 2 and all(name.startswith(backup.SCHEDULED_PREFIX) for name in kept)
    assert not [p for p in target.iterdir() if p.name.endswith(".part")]


def test_progress_bars_on_a_terminal_only(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    data = tmp_path / "data"
    asyncio.run(small_data_dir(data))
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
    env.update(DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    shown: dict[str, str] = {}
    for command in (
        ("backup", "--output", str(tmp_path / "t.zip")),
        ("export-files", "--output", str(tmp_path / "f.zip")),
    ):
        main, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bot", *command],
                env=env,
                cwd=ROOT / "tests",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=terminal,
                timeout=120,
            )
            os.close(terminal)
            chunks: list[bytes] = []
            with contextlib.suppress(OSError):  # the terminal reports EOF as an error once drained
                while chunk := os.read(main, 4096):
                    chunks.append(chunk)
        finally:
            os.close(main)
        assert proc.returncode == 0
        shown[command[0]] = b"".join(chunks).decode(errors="replace")
    assert "backup" in shown["backup"] and "100%" in shown["backup"] and "B" in shown["backup"]
    assert "export-files" in shown["export-files"] and "13.0B" in shown["export-files"]  # the stored file's size
    # In a pipe (as under cron) the same commands print nothing on standard error.
    quiet = run_command(data, "export-files", "--output", str(tmp_path / "g.zip"))
    assert quiet.returncode == 0 and quiet.stderr == ""


async def test_the_running_bot_takes_scheduled_backups_and_keeps_the_newest(tmp_path: Path) -> None:
    target = tmp_path / "backups"
    async with running_bot(tmp_path / "data", backup_dir=target, backup_every_hours=1.2 / 3600, backup_keep=2) as h:
        user = h.person(8301)
        await user.send(f"/start {await h.invite('Scheduleville', 'Cronland')}", "This report is for Scheduleville")

        def taken() -> list[Path] | None:
            names = sorted(target.glob(f"{backup.SCHEDULED_PREFIX}*.zip")) if target.is_dir() else []
            return names if len(names) >= 2 else None

        first = await h.api.async_wait_until(taken, 20)
        await h.api.async_wait_until(lambda: ((n := taken()) is not None and n[0] != first[0]) or None, 20)
    kept = sorted(target.iterdir())
    assert len(kept) == 2, kept  # the oldest were pruned
    restored = tmp_path / "restored"
    backup.restore_backup(kept[-1], restored, shown=False)
    with sqlite3.connect(restored / "gnlc.sqlite3") as db:
        assert db.execute("SELECT city FROM reports").fetchall() == [("Scheduleville",)]
