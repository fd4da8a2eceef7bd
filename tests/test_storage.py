"""Tests of bot.storage against a real SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import aiosqlite
import pytest

from bot.storage import (
    MIGRATIONS,
    SCHEMA_VERSION,
    City,
    Contact,
    ReportChanged,
    Storage,
    StorageUnavailable,
)
from conversation.state import Attachment, Mode, Report, ReportStatus, Session

SURVEY = "gnlc-biennial-2019-2021"
NOW = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parent.parent


def later(minutes: int) -> dt.datetime:
    """Return NOW plus some minutes."""
    return NOW + dt.timedelta(minutes=minutes)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
async def storage(db_path: Path):
    store = await Storage.open(db_path)
    yield store
    await store.close()


async def new_city(storage: Storage, name: str = "Espoo", country: str = "Finland") -> City:
    return await storage.find_or_create_report(SURVEY, name, country, "2016-09", NOW)


async def telegram_contact(storage: Storage, city: City, user_id: int = 1001, language: str = "en") -> Contact:
    token = await storage.create_invitation(city.id, NOW)
    contact = (
        await storage.redeem(
            token, telegram_user_id=user_id, chat_id=user_id, display_name=f"user {user_id}", language=language, now=NOW
        )
    ).contact
    assert contact is not None
    return contact


def raw(db_path: Path) -> sqlite3.Connection:
    """A second, plain connection to inspect the file."""
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    return conn


def audit_rows(db_path: Path, report_id: int) -> list[sqlite3.Row]:
    with raw(db_path) as conn:
        return conn.execute("SELECT * FROM audit WHERE report_id = ? ORDER BY id", (report_id,)).fetchall()


# ---------------------------------------------------------------- schema


async def test_schema_created_with_version_and_pragmas(storage: Storage, db_path: Path) -> None:
    assert db_path.exists()  # parent directory was created
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "reports",
        "contacts",
        "invitations",
        "answers",
        "audit",
        "attachments",
        "answer_messages",
        "reminders_sent",
        "admins",
    } <= tables
    db = storage._db
    assert db is not None
    for pragma, expected in (("synchronous", 2), ("foreign_keys", 1), ("busy_timeout", 5000)):
        async with db.execute(f"PRAGMA {pragma}") as cur:
            row = await cur.fetchone()
        assert row is not None and row[0] == expected, pragma


async def test_reopening_is_idempotent(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        await new_city(store)
    async with await Storage.open(db_path) as store:
        assert [c.name for c in await store.list_reports(SURVEY)] == ["Espoo"]


async def test_v1_database_is_migrated(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO reports (id, survey_id, city, country, joined, created_at)"
            " VALUES (1, ?, 'Cork', 'Ireland', '2015-09', '2023-01-01T00:00:00+00:00')",
            (SURVEY,),
        )
        conn.execute(
            "INSERT INTO reports (id, survey_id, city, country, created_at)"
            " VALUES (2, ?, 'Unanswered', 'Nowhere', '2023-01-01T00:00:00+00:00')",
            (SURVEY,),
        )
        conn.execute(
            "INSERT INTO contacts (id, report_id, telegram_user_id, chat_id, display_name, language,"
            " created_at, updated_at) VALUES (7, 1, 77, 77, 'Aoife', 'fr', 'x', 'x')"
        )
        conn.execute(
            "INSERT INTO answers VALUES (1, 'q_name', '\"Cork City\"', 7, 'x'), (1, 'q_areas', '[\"a\",\"b\"]', 7, 'x')"
        )
    conn.close()

    async with await Storage.open(db_path) as store:
        cork = await store.get_report(1)
        assert cork is not None and cork.languages == ("fr",) and cork.joined == "2015-09"
        empty = await store.get_report(2)
        assert empty is not None and empty.languages == ()
        contact = await store.contact_by_telegram_user(77)
        assert contact is not None
        report, session = await store.load(contact)
        assert report.answers == {"q_name": "Cork City", "q_areas": ("a", "b")}
        assert session == Session(language="fr")
        # Tables added by v2 work.
        assert await store.record_reminder(contact.id, "first", NOW)
        await store.remember_answer_message(contact.id, 5, "q_name")
        await store.remember_admin(1, 1, "en")
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    async with await Storage.open(db_path):
        pass
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await Storage.open(db_path)


# ---------------------------------------------------------------- reports


async def test_find_or_create_report_is_case_insensitive(storage: Storage) -> None:
    espoo = await storage.find_or_create_report(SURVEY, "Espoo", "Finland", None, NOW)
    again = await storage.find_or_create_report(SURVEY, " ESPOO ", "finland", "2016-09", NOW)
    assert again.id == espoo.id and again.joined == "2016-09"
    munich = await storage.find_or_create_report(SURVEY, "München", "Germany", None, NOW)
    assert (await storage.find_or_create_report(SURVEY, "MÜNCHEN", "GERMANY", None, NOW)).id == munich.id
    other_survey = await storage.find_or_create_report("other", "Espoo", "Finland", None, NOW)
    assert other_survey.id != espoo.id
    assert espoo.status is ReportStatus.OPEN and espoo.submitted_at is None and espoo.languages == ()
    with pytest.raises(ValueError):
        await storage.find_or_create_report(SURVEY, "X", "Y", "2016-13", NOW)
    with pytest.raises(ValueError):
        await storage.find_or_create_report(SURVEY, " ", "Y", None, NOW)


async def test_find_and_list_reports(storage: Storage) -> None:
    for name in ("Hamburg", "Ham", "Gotham", "Bath"):
        await storage.find_or_create_report(SURVEY, name, "Somewhere", None, NOW)
    assert [c.name for c in await storage.find_reports(SURVEY, "ham")] == ["Ham"]
    assert [c.name for c in await storage.find_reports(SURVEY, "AMBU")] == ["Hamburg"]
    assert [c.name for c in await storage.find_reports(SURVEY, "tha")] == ["Gotham"]
    assert await storage.find_reports(SURVEY, "zzz") == []
    assert await storage.find_reports(SURVEY, "  ") == []
    assert [c.name for c in await storage.list_reports(SURVEY)] == ["Bath", "Gotham", "Ham", "Hamburg"]
    assert await storage.get_report(999) is None


# ---------------------------------------------------------------- state


async def test_round_trip_of_every_answer_kind(storage: Storage) -> None:
    city = await new_city(storage)
    contact = await telegram_contact(storage, city)
    before, session = await storage.load(contact)
    assert before == Report() and session == Session(language="en")
    answers = {
        "long": 'Line one\nline two — with «quotes», emoji 🎓 and "json" chars: {}[]',
        "choice": "yes",
        "month": "2016-09",
        "email": "someone@example.org",
        "phone": "+358401234567",
        "multi": ("youth", "elderly", "migrants"),
        "multi_one": ("youth",),
        "multi_none": (),
        "upload": "done",
        "looks_like_list": '["not", "a", "list"]',
    }
    submitted = later(5)
    after = Report(answers=answers, status=ReportStatus.SUBMITTED, submitted_at=submitted)
    new_session = Session(language="fr", mode=Mode.DONE, cursor="upload", history=("long", "multi"), picked=("a",))
    await storage.save(contact, before, after, new_session, later(5))

    report, session = await storage.load(contact)
    assert report == after.model_copy(update={"version": before.version + 1})  # the save raised the version
    assert isinstance(report.answers["multi"], tuple) and isinstance(report.answers["looks_like_list"], str)
    assert session == new_session
    city = await storage.get_report(city.id)  # type: ignore[assignment]
    assert city.status is ReportStatus.SUBMITTED and city.submitted_at == submitted
    assert city.languages == ("fr",)
    assert await storage.answers_of(city.id) == answers
    refreshed = await storage.contact_by_telegram_user(contact.telegram_user_id or 0)
    assert refreshed is not None and refreshed.language == "fr"


async def test_save_writes_only_the_diff(storage: Storage) -> None:
    city = await new_city(storage)
    alice = await telegram_contact(storage, city, 1)
    bob = await storage.console_contact("bob", city.id, "es", NOW)
    stale, _ = await storage.load(alice)
    base = Report(answers={"shared": "old"})
    await storage.save(alice, stale, base, Session(), NOW)

    before, alice_session = await storage.load(alice)
    bob_before, bob_session = await storage.load(bob)
    assert before == bob_before
    # Both start from the same snapshot and change different questions: Alice's save gets in first,
    # so Bob's (decided on a report that is no longer there) writes nothing until he reads again.
    await storage.save(alice, before, Report(answers={**before.answers, "q1": "alice"}), alice_session, later(1))
    bob_after = Report(answers={**bob_before.answers, "q2": ("x", "y")})
    with pytest.raises(ReportChanged):
        await storage.save(bob, bob_before, bob_after, bob_session.model_copy(update={"cursor": "q2"}), later(2))
    assert (await storage.load(bob))[1] == bob_session  # not even his session was written
    bob_before, bob_session = await storage.load(bob)
    await storage.save(
        bob,
        bob_before,
        bob_before.model_copy(update={"answers": {**bob_before.answers, "q2": ("x", "y")}}),
        bob_session,
        later(2),
    )

    report, _ = await storage.load(alice)
    assert report.answers == {"shared": "old", "q1": "alice", "q2": ("x", "y")}
    with raw(storage._path) as conn:
        who = dict(
            conn.execute("SELECT question_id, updated_by FROM answers WHERE report_id = ?", (city.id,)).fetchall()
        )
    assert who == {"shared": alice.id, "q1": alice.id, "q2": bob.id}
    refreshed = await storage.get_report(city.id)
    assert refreshed is not None and refreshed.languages == ("en", "es")


async def test_two_processes_sharing_a_report(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    alice = await telegram_contact(storage, city, 1)
    async with await Storage.open(db_path) as other:
        bob = await other.console_contact("bob", city.id, "en", NOW)
        a_before, a_session = await storage.load(alice)
        b_before, b_session = await other.load(bob)
        await asyncio.gather(
            save_fresh(storage, alice, {"a": "1"}, (a_before, a_session)),
            save_fresh(other, bob, {"b": "2"}, (b_before, b_session)),
        )
        assert await other.answers_of(city.id) == {"a": "1", "b": "2"}


async def save_fresh(
    storage: Storage, contact: Contact, answers: dict[str, str], loaded: tuple[Report, Session]
) -> int:
    """Add `answers` to the snapshot read, reading again when another save got in first (as the
    service does); return how many times the report had changed."""
    before, session = loaded
    conflicts = 0
    while True:
        try:
            after = before.model_copy(update={"answers": {**before.answers, **answers}})
            await storage.save(contact, before, after, session, NOW)
            return conflicts
        except ReportChanged:
            conflicts += 1
            before, session = await storage.load(contact)


async def test_concurrent_saves_on_one_storage(storage: Storage) -> None:
    city = await new_city(storage)
    contacts = [await storage.console_contact(f"c{i}", city.id, "en", NOW) for i in range(8)]
    loaded = [await storage.load(c) for c in contacts]
    conflicts = await asyncio.gather(
        *(
            save_fresh(storage, c, {f"q{i}": str(i)}, state)
            for i, (c, state) in enumerate(zip(contacts, loaded, strict=True))
        )
    )
    assert await storage.answers_of(city.id) == {f"q{i}": str(i) for i in range(8)}
    assert sum(conflicts) >= 7  # all eight read one snapshot: each save but the first found the report changed


async def test_clearing_and_audit_rows(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await telegram_contact(storage, city)
    r0, s0 = await storage.load(contact)
    r1 = Report(answers={"q1": "a", "q2": ("x",)})
    await storage.save(contact, r0, r1, s0, later(1))
    r1 = r1.model_copy(update={"version": r0.version + 1})  # as stored
    r2 = Report(answers={"q1": "b"}, version=r1.version)
    await storage.save(contact, r1, r2, s0, later(2))
    r2 = r2.model_copy(update={"version": r1.version + 1})
    # Unchanged answers write nothing.
    await storage.save(contact, r2, r2, s0, later(3))

    rows = [r for r in audit_rows(db_path, city.id) if r["question_id"] is not None]
    assert [(r["action"], r["question_id"], r["old_json"], r["new_json"]) for r in rows] == [
        ("answer", "q1", None, '"a"'),
        ("answer", "q2", None, '["x"]'),
        ("answer", "q1", None, '"b"'),  # the old value is the previous row's: stored once
        ("clear", "q2", '["x"]', None),
    ]
    assert all(r["contact_id"] == contact.id for r in rows)
    assert rows[-1]["at"] == later(2).isoformat()
    assert await storage.answers_of(city.id) == {"q1": "b"}


async def test_status_changes_are_saved_and_audited(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await telegram_contact(storage, city)
    r0, session = await storage.load(contact)
    r1 = Report(answers={"q": "a"}, status=ReportStatus.SUBMITTED, submitted_at=later(1))
    await storage.save(contact, r0, r1, session, later(1))
    await storage.reopen(city.id, later(2))
    report, _ = await storage.load(contact)
    assert report.status is ReportStatus.OPEN and report.submitted_at is None and report.answers == {"q": "a"}
    await storage.set_status(city.id, ReportStatus.EXEMPT, later(3))
    await storage.set_status(city.id, ReportStatus.EXEMPT, later(4))  # no change, no audit
    await storage.set_status(city.id, ReportStatus.SUBMITTED, later(5))
    report, _ = await storage.load(contact)
    assert report.status is ReportStatus.SUBMITTED and report.submitted_at == later(5)
    actions = [r["action"] for r in audit_rows(db_path, city.id) if r["action"] in {"submit", "reopen", "exempt"}]
    assert actions == ["submit", "reopen", "exempt", "submit"]
    with pytest.raises(LookupError):
        await storage.set_status(999, ReportStatus.OPEN, NOW)


async def test_restart_resumes_where_the_contact_was(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        city = await new_city(store)
        contact = await telegram_contact(store, city, 42)
        before, _ = await store.load(contact)
        after = Report(answers={"q1": "a", "q2": ("b", "c")})
        session = Session(language="ar", mode=Mode.ASKING, cursor="q3", history=("q1", "q2"), picked=("p",))
        await store.save(contact, before, after, session, NOW)
        await store.add_attachment(
            city.id, contact.id, Attachment(sha256="a" * 64, name="f.pdf", mime_type=None, size=3), NOW
        )
        expected = await store.load(contact)
    async with await Storage.open(db_path) as store:
        again = await store.contact_by_telegram_user(42)
        assert again is not None and again.language == "ar"
        assert await store.load(again) == expected
        assert expected[1] == session and expected[0].answers == after.answers


async def test_sigkill_after_save_loses_nothing(db_path: Path) -> None:
    async with await Storage.open(db_path) as store:
        city = await new_city(store)
        contact = await store.console_contact("k", city.id, "en", NOW)
    child = textwrap.dedent(
        f"""
        import asyncio, datetime as dt, os, signal, sys
        from pathlib import Path
        from bot.storage import Storage
        from conversation.state import Report, Session

        async def main():
            store = await Storage.open(Path({str(db_path)!r}))
            contact = await store.console_contact("k", {city.id}, "en", dt.datetime.now(dt.UTC))
            before, session = await store.load(contact)
            await store.save(contact, before, Report(answers={{"q": "acked"}}), session, dt.datetime.now(dt.UTC))
            print("ok", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.stdout == "ok\n", proc.stderr
    assert proc.returncode == -9
    async with await Storage.open(db_path) as store:
        report, _ = await store.load(contact)
        assert report.answers == {"q": "acked"}


async def test_unreadable_session_restarts_at_default(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "pt", NOW)
    with raw(db_path) as conn:
        conn.execute('UPDATE contacts SET session_json = \'{"mode": "nonsense"}\' WHERE id = ?', (contact.id,))
    conn.close()
    _, session = await storage.load(contact)
    assert session == Session(language="pt")


async def test_contact_stored_with_the_old_portuguese_code_reads_as_brazilian(storage: Storage, db_path: Path) -> None:
    # Before the split into pt_BR and pt_PT, "pt" was the one (Brazilian) catalog.
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    with raw(db_path) as conn:
        conn.execute(
            "UPDATE contacts SET language = 'pt', session_json = ? WHERE id = ?",
            (Session(mode=Mode.ASKING, cursor="q1").model_dump_json().replace('"en"', '"pt"'), contact.id),
        )
    conn.close()
    report, session = await storage.load(contact)
    assert session == Session(language="pt_BR", mode=Mode.ASKING, cursor="q1")
    await storage.save(contact, report, report, session, NOW)
    with raw(db_path) as conn:
        (stored,) = conn.execute("SELECT language FROM contacts WHERE id = ?", (contact.id,)).fetchone()
    conn.close()
    assert stored == "pt_BR"  # written back under the current code at the next save


async def test_a_saved_language_updates_session_and_contact(storage: Storage) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    before, session = await storage.load(contact)
    await storage.save(contact, before, before, session.model_copy(update={"language": "ru"}), NOW)
    assert (await storage.load(contact))[1] == Session(language="ru")
    before, _ = await storage.load(contact)
    await storage.save(contact, before, before, Session(language="ru", mode=Mode.ASKING, cursor="q1"), NOW)
    before, session = await storage.load(contact)
    await storage.save(contact, before, before, session.model_copy(update={"language": "zh"}), NOW)
    _, session = await storage.load(contact)
    assert session == Session(language="zh", mode=Mode.ASKING, cursor="q1")
    assert (await storage.console_contact_if_exists("c")) == dataclasses.replace(contact, language="zh")
    with pytest.raises(LookupError):
        await storage.save(dataclasses.replace(contact, id=999), before, before, Session(language="en"), NOW)


async def test_iter_reports_with_answers_streams_each_report(storage: Storage) -> None:
    first = await new_city(storage, "A", "X")
    second = await new_city(storage, "B", "Y")
    await storage.find_or_create_report("other", "C", "Z", None, NOW)
    contact = await storage.console_contact("c", first.id, "en", NOW)
    before, session = await storage.load(contact)
    await storage.save(contact, before, Report(answers={"q": ("1", "2")}), session, NOW)
    att = Attachment(sha256="b" * 64, name="plan.pdf", mime_type="application/pdf", size=10)
    await storage.add_attachment(first.id, contact.id, att, NOW)

    seen = []
    async for city, answers, attachments in storage.iter_reports_with_answers(SURVEY):
        # The storage stays usable between items (nothing is held open).
        await storage.get_report(city.id)
        seen.append((city.name, answers, attachments))
    assert seen == [("A", {"q": ("1", "2")}, (att,)), ("B", {}, ())]
    assert second.id != first.id


# ---------------------------------------------------------------- invitations and contacts


async def test_invitation_token_format_and_hashing(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    tokens = [await storage.create_invitation(city.id, NOW) for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert re.fullmatch(r"^[A-Za-z0-9_-]{43}$", token)
    await storage.close()
    blob = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.name.startswith(db_path.name))
    for token in tokens:
        assert token.encode() not in blob
    with raw(db_path) as conn:
        hashes = {r[0] for r in conn.execute("SELECT token_hash FROM invitations")}
    conn.close()
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}


async def test_redeem_rebind_and_revoke(storage: Storage, db_path: Path) -> None:
    espoo = await new_city(storage)
    cork = await new_city(storage, "Cork", "Ireland")
    token = await storage.create_invitation(espoo.id, NOW)
    contact = (
        await storage.redeem(token, telegram_user_id=5, chat_id=50, display_name="Ann", language="fi", now=NOW)
    ).contact
    assert contact is not None
    assert contact == Contact(
        id=contact.id,
        report_id=espoo.id,
        telegram_user_id=5,
        chat_id=50,
        console_key=None,
        display_name="Ann",
        language="fi",
        reminders_paused=False,
        blocked=False,
    )
    # A second person may use the same token; the same person again is idempotent.
    other = (
        await storage.redeem(token, telegram_user_id=6, chat_id=60, display_name="B", language="en", now=NOW)
    ).contact
    assert other is not None and other.report_id == espoo.id
    same = (
        await storage.redeem(token, telegram_user_id=5, chat_id=51, display_name="Ann", language="en", now=NOW)
    ).contact
    assert same is not None and same.id == contact.id and same.chat_id == 51 and same.language == "fi"
    assert [c.contact.telegram_user_id for c in await storage.contact_listing(SURVEY, espoo.id)] == [5, 6]

    # Rebinding to another city's report starts a fresh session there.
    before, _ = await storage.load(contact)
    await storage.save(contact, before, before, Session(language="fi", mode=Mode.ASKING, cursor="q9"), NOW)
    await storage.mark_blocked(contact.id, now=NOW)
    cork_token = await storage.create_invitation(cork.id, NOW)
    moved = (
        await storage.redeem(cork_token, telegram_user_id=5, chat_id=50, display_name="Ann", language="fi", now=NOW)
    ).contact
    assert moved is not None and moved.id == contact.id and moved.report_id == cork.id and not moved.blocked
    assert (await storage.load(moved))[1] == Session(language="fi")
    assert await storage.contact_by_telegram_user(5) == moved
    assert await storage.contact_by_telegram_user(12345) is None

    assert await storage.revoke_invitation(token, now=NOW)
    assert not await storage.revoke_invitation(token, now=NOW)
    assert (
        await storage.redeem(token, telegram_user_id=7, chat_id=7, display_name="", language="en", now=NOW)
    ).contact is None
    assert await storage.revoke_report_invitations(cork.id, NOW) == 1
    assert await storage.revoke_report_invitations(cork.id, NOW) == 0
    assert (
        await storage.redeem(cork_token, telegram_user_id=8, chat_id=8, display_name="", language="en", now=NOW)
    ).contact is None
    with raw(db_path) as conn:
        used = dict(conn.execute("SELECT report_id, used_count FROM invitations").fetchall())
    conn.close()
    assert used == {espoo.id: 3, cork.id: 1}
    assert {"invite", "join", "revoke"} <= {r["action"] for r in audit_rows(db_path, espoo.id)}


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "x",
        "A" * 43,  # well-formed but unknown
        "A" * 44,
        "A" * 42 + "=",
        "'; DROP TABLE contacts; --",
        "\ud800" * 43,
        "é" * 43,
        "\x00" * 43,
        "A" * 10_000,
    ],
)
async def test_garbage_tokens_are_refused_quietly(storage: Storage, garbage: str) -> None:
    await new_city(storage)
    result = (
        await storage.redeem(garbage, telegram_user_id=1, chat_id=1, display_name="x", language="en", now=NOW)
    ).contact
    assert result is None
    assert not await storage.revoke_invitation(garbage, now=NOW)
    assert await storage.contact_listing(SURVEY) == []


async def test_console_contact_get_or_create(storage: Storage) -> None:
    espoo = await new_city(storage)
    cork = await new_city(storage, "Cork", "Ireland")
    first = await storage.console_contact("alice", espoo.id, "en", NOW)
    assert first.console_key == "alice" and first.telegram_user_id is None and first.report_id == espoo.id
    assert await storage.console_contact("alice", espoo.id, "fr", NOW) == first
    moved = await storage.console_contact("alice", cork.id, "en", NOW)
    assert moved.id == first.id and moved.report_id == cork.id
    with pytest.raises(LookupError):
        await storage.console_contact("bob", 999, "en", NOW)


async def test_contact_flags(storage: Storage) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    await storage.set_reminders_paused(contact.id, True, now=NOW)
    await storage.mark_blocked(contact.id, now=NOW)
    (flagged,) = [listed.contact for listed in await storage.contact_listing(SURVEY, city.id)]
    assert flagged.reminders_paused and flagged.blocked
    await storage.set_reminders_paused(contact.id, False, now=NOW)
    await storage.mark_blocked(contact.id, blocked=False, now=NOW)
    (cleared,) = [listed.contact for listed in await storage.contact_listing(SURVEY)]
    assert not cleared.reminders_paused and not cleared.blocked
    with pytest.raises(LookupError):
        await storage.mark_blocked(999, now=NOW)


# ---------------------------------------------------------------- attachments, messages, reminders, admins


async def test_attachments_dedupe_order_and_audit(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    a = Attachment(sha256="a" * 64, name="plan.pdf", mime_type="application/pdf", size=1000, caption="Strategy 2021")
    b = Attachment(sha256="b" * 64, name="photo.jpg", mime_type=None, size=5)
    assert await storage.add_attachment(city.id, contact.id, b, later(1))
    assert await storage.add_attachment(city.id, contact.id, a, later(2))
    assert not await storage.add_attachment(city.id, contact.id, b.model_copy(update={"name": "again.jpg"}), later(3))
    assert await storage.attachments(city.id) == (b, a)
    report, _ = await storage.load(contact)
    assert report.attachments == (b, a)

    assert await storage.describe_attachment(city.id, b.sha256, "The festival", contact_id=contact.id, now=later(4))
    assert not await storage.describe_attachment(city.id, b.sha256, "The festival", now=later(5))  # no change
    assert not await storage.describe_attachment(city.id, "c" * 64, "No such file", now=later(5))
    b = b.model_copy(update={"caption": "The festival"})
    assert await storage.attachments(city.id) == (b, a)
    assert await storage.remove_attachment(city.id, b.sha256, contact_id=contact.id, now=NOW) == b
    assert await storage.remove_attachment(city.id, b.sha256, now=NOW) is None
    assert await storage.attachments(city.id) == (a,)
    actions = [
        (r["action"], r["contact_id"])
        for r in audit_rows(db_path, city.id)
        if r["action"] in {"attach", "describe", "detach"}
    ]
    assert actions == [("attach", contact.id), ("attach", contact.id), ("describe", contact.id), ("detach", contact.id)]
    # save never touches attachments.
    before, session = await storage.load(contact)
    await storage.save(contact, before, before.model_copy(update={"attachments": ()}), session, NOW)
    assert await storage.attachments(city.id) == (a,)


async def test_answer_messages_mapping(storage: Storage) -> None:
    city = await new_city(storage)
    alice = await storage.console_contact("a", city.id, "en", NOW)
    bob = await storage.console_contact("b", city.id, "en", NOW)
    await storage.remember_answer_message(alice.id, 10, "q1", "first text")
    await storage.remember_answer_message(bob.id, 10, "q2", "other text")
    assert await storage.answer_message(alice.id, 10) == ("q1", "first text")
    assert await storage.answer_message(bob.id, 10) == ("q2", "other text")
    assert await storage.answer_message(alice.id, 11) is None
    await storage.remember_answer_message(alice.id, 10, "q3", "edited text")
    assert await storage.answer_message(alice.id, 10) == ("q3", "edited text")


async def test_reminders_recorded_once(storage: Storage) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    assert await storage.record_reminder(contact.id, "2024-03-week1", NOW)
    assert not await storage.record_reminder(contact.id, "2024-03-week1", later(1))
    await storage.forget_reminder(contact.id, "2024-03-week1")  # a failed send releases it
    assert await storage.record_reminder(contact.id, "2024-03-week1", later(2))
    assert await storage.record_reminder(contact.id, "other", NOW)


async def test_admins(storage: Storage) -> None:
    assert await storage.admin_chats() == []
    await storage.remember_admin(2, 20, "en")
    await storage.remember_admin(1, 10, "fr")
    await storage.remember_admin(2, 21, "es")
    assert await storage.admin_chats() == [(1, 10, "fr"), (2, 21, "es")]


# ---------------------------------------------------------------- failures


async def test_read_only_database_raises_unavailable_and_keeps_data(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await telegram_contact(storage, city)
    before, session = await storage.load(contact)
    saved = Report(answers={"q1": "kept"})
    await storage.save(contact, before, saved, session, NOW)
    expected = await storage.load(contact)

    assert storage._db is not None
    await storage._db.execute("PRAGMA query_only = ON")
    changed = Report(answers={"q1": "lost", "q2": "lost"}, status=ReportStatus.SUBMITTED, submitted_at=NOW)
    with pytest.raises(StorageUnavailable, match="read-only"):
        await storage.save(contact, saved, changed, Session(mode=Mode.DONE), later(1))
    with pytest.raises(StorageUnavailable):
        await storage.create_invitation(city.id, NOW)
    # Reads still work on a read-only database.
    assert await storage.load(contact) == expected
    await storage._db.execute("PRAGMA query_only = OFF")
    await storage.close()

    async with await Storage.open(db_path) as store:
        assert await store.load(contact) == expected
    assert len([r for r in audit_rows(db_path, city.id) if r["question_id"]]) == 1


async def test_read_only_file_raises_unavailable(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    # Swap the storage's connection for a read-only one (chmod does not stop root).
    assert storage._db is not None
    await storage._db.close()
    storage._db = await aiosqlite.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    storage._db.row_factory = sqlite3.Row
    before, session = await storage.load(contact)
    with pytest.raises(StorageUnavailable):
        await storage.save(contact, before, Report(answers={"q": "x"}), session, NOW)
    assert await storage.answers_of(city.id) == {}


async def test_full_disk_rolls_back_the_whole_save(storage: Storage) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    before, session = await storage.load(contact)
    await storage.save(contact, before, Report(answers={"small": "kept"}), session, NOW)
    before, session = await storage.load(contact)
    db = storage._db
    assert db is not None
    async with db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await db.execute(f"PRAGMA max_page_count = {row[0] + 2}")
    big = Report(answers={**before.answers, **{f"q{i}": "x" * 4000 for i in range(20)}})
    with pytest.raises(StorageUnavailable, match="full"):
        await storage.save(contact, before, big, Session(mode=Mode.DONE), NOW)
    assert await storage.load(contact) == (before, session)
    await db.execute("PRAGMA max_page_count = 1073741823")
    await storage.save(contact, before, big, session, NOW)
    assert (await storage.load(contact))[0].answers == big.answers


async def test_locked_database_raises_unavailable(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    before, session = await storage.load(contact)
    assert storage._db is not None
    await storage._db.execute("PRAGMA busy_timeout = 20")
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable, match="locked"):
            await storage.save(contact, before, Report(answers={"q": "x"}), session, NOW)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await storage.save(contact, before, Report(answers={"q": "x"}), session, NOW)
    assert await storage.answers_of(city.id) == {"q": "x"}


async def test_unknown_contact_fails_without_writing(storage: Storage) -> None:
    city = await new_city(storage)
    ghost = Contact(
        id=999,
        report_id=city.id,
        telegram_user_id=None,
        chat_id=None,
        console_key="ghost",
        display_name="",
        language="en",
        reminders_paused=False,
        blocked=False,
    )
    with pytest.raises(LookupError):
        await storage.load(ghost)
    with pytest.raises((LookupError, sqlite3.IntegrityError)):
        await storage.save(ghost, Report(), Report(answers={"q": "x"}), Session(), NOW)
    assert await storage.answers_of(city.id) == {}


async def test_closed_storage_refuses_calls(db_path: Path) -> None:
    store = await Storage.open(db_path)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.list_reports(SURVEY)


async def test_audit_json_is_valid(storage: Storage, db_path: Path) -> None:
    city = await new_city(storage)
    contact = await storage.console_contact("c", city.id, "en", NOW)
    before, session = await storage.load(contact)
    after = Report(answers={"q": ("a",)}, status=ReportStatus.SUBMITTED, submitted_at=NOW)
    await storage.save(contact, before, after, session, NOW)
    rows = audit_rows(db_path, city.id)
    assert {r["action"] for r in rows} == {"answer", "submit"}
    for row in rows:
        for column in ("old_json", "new_json"):
            if row[column] is not None:
                json.loads(row[column])


async def test_live_keyboards_round_trip(storage: Storage) -> None:
    assert await storage.live_keyboards() == {}
    await storage.update_keyboards({10: 100, 11: 110})
    await storage.update_keyboards({10: 101, 11: None, 12: None})  # replaced, retired, never had one
    assert await storage.live_keyboards() == {10: 101}


async def test_keyboard_ledger_writes_lazily_and_on_flush(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.telegram import keyboards

    monkeypatch.setattr(keyboards, "FLUSH_AFTER", 0.05)
    ledger = keyboards.KeyboardLedger(storage)
    ledger.set(1, 10)
    ledger.set(2, 20)
    assert await storage.live_keyboards() == {}  # nothing written on the answer's own path
    for _ in range(100):  # one transaction once the timer fires
        if await storage.live_keyboards():
            break
        await asyncio.sleep(0.05)
    assert await storage.live_keyboards() == {1: 10, 2: 20}
    assert ledger.pop(1) == 10 and ledger.pop(1) is None
    ledger.set(2, 21)
    await ledger.close()  # as on stopping
    assert await storage.live_keyboards() == {2: 21}
    fresh = keyboards.KeyboardLedger(storage)
    await fresh.load()
    assert fresh.get(2) == 21 and fresh.get(1) is None and len(fresh) == 1
