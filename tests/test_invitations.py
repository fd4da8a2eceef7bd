"""Personal invitations end to end: the real bot over the fake Bot API and a real SQLite file.

A forwarded link refused to a second account, a link shared on purpose, an expired link, a
colleague's link, the team's join notice and its Remove button, a removal in the middle of the
questionnaire, and invitations for a whole network from a CSV file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from bot import admin
from bot.storage import ContactRemoved, Redeemed, Storage
from conversation.state import Report
from tests.fakes.bot_api import FakeBotAPI
from tests.telegram_harness import SURVEY, Harness, Person, running_bot
from tests.test_cli import acli

ADMIN = 900
EMAIL = SURVEY.contact_email
LINK_RE = re.compile(r"https://t\.me/gnlc_test_bot\?start=([A-Za-z0-9_-]{43})")
USED = "This invitation link has already been used by another Telegram account"
EXPIRED = "This invitation link has expired"
REMOVED = "This Telegram account no longer has access to this report"
UNINVITED = "It works with a personal invitation link"


async def personal_link(
    h: Harness, city: str = "Hamburg", country: str = "Germany", *, uses: int = 1, name: str | None = None, **kw: object
) -> str:
    """A link as `python -m bot invite` makes it (by default personal: one account, 60 days)."""
    now = kw.pop("now", dt.datetime.now(dt.UTC))
    assert isinstance(now, dt.datetime)
    _, link = await admin.invite(h.storage, SURVEY, "gnlc_test_bot", city, country, None, now, uses=uses, name=name,
                                 **kw)  # type: ignore[arg-type]  # fmt: skip
    return link.rsplit("start=", 1)[1]


async def refused(person: Person, token: str, refusal: str) -> None:
    """The account opens the link: a polite refusal naming the team's address, nothing of the city."""
    replies = await person.send(f"/start {token}", refusal, EMAIL)
    shown = "\n".join(m.shown_text or "" for m in replies)
    assert "Hamburg" not in shown and "Germany" not in shown
    assert not any(m.buttons() for m in replies)
    assert await person.h.storage.contact_by_telegram_user(person.user_id) is None
    # And nothing afterwards either: the questionnaire and the review stay closed. Someone without an
    # invitation gets one reply per few minutes (a stranger's flood costs one message): the first of
    # these is told how the bot works, the others get nothing.
    mark = person.api.mark()
    for command in ("/review", "/start", "hello"):
        person.api.send_text(person.user_id, command)
    await person.h.quiet()
    (reply,) = person.api.messages_since(mark, person.user_id)
    assert UNINVITED in (reply.shown_text or "") and "Hamburg" not in (reply.shown_text or "")
    assert not reply.buttons()
    assert await person.h.storage.contact_by_telegram_user(person.user_id) is None


async def test_a_forwarded_link_is_refused_to_a_second_account(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        token = await personal_link(h, name="Anna Schmidt")
        anna, forwarded_to = h.person(1101), h.person(1102)
        await anna.send(f"/start {token}", "This report is for Hamburg, Germany")
        await anna.press("Begin", "Official city website address")
        await anna.send("https://www.hamburg.de", "Date of joining the UNESCO GNLC")
        await refused(forwarded_to, token, USED)
        # The owner opening her link again is not refused and loses nothing.
        await anna.send(f"/start {token}", "Welcome back")
        contact = await h.contact(1101)
        assert (await h.storage.answers_of(contact.report_id))["city_website"] == "https://www.hamburg.de"
        (invitation,) = await h.storage.invitations_of(contact.report_id)
        assert (invitation.uses, invitation.max_uses, invitation.name) == (1, 1, "Anna Schmidt")


async def test_a_link_shared_on_purpose_with_uses_2(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        token = await personal_link(h, uses=2)
        first, second, third = h.person(1201), h.person(1202), h.person(1203)
        await first.send(f"/start {token}", "This report is for Hamburg, Germany")
        await second.send(f"/start {token}", "This report is for Hamburg, Germany")
        await refused(third, token, USED)
        report_id = (await h.contact(1201)).report_id
        listing = await h.storage.contact_listing(h.survey.id, report_id)
        assert [c.contact.telegram_user_id for c in listing] == [1201, 1202]


async def test_an_expired_link_lets_nobody_in(tmp_path: Path) -> None:
    async with running_bot(tmp_path, invitation_days=60) as h:
        made = dt.datetime.now(dt.UTC) - dt.timedelta(days=61)
        token = await personal_link(h, now=made, days=60)
        await refused(h.person(1301), token, EXPIRED)
        fresh = await personal_link(h, days=60)
        (_, invitation) = await h.storage.invitations_of((await h.storage.list_reports(SURVEY.id))[0].id)
        assert invitation.expires_at is not None
        assert dt.timedelta(days=59) < invitation.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(days=60)
        await h.person(1302).send(f"/start {fresh}", "This report is for Hamburg, Germany")


async def test_a_colleague_link_from_the_chat(tmp_path: Path) -> None:
    async with running_bot(tmp_path, admin_ids=frozenset({ADMIN})) as h:
        team = h.person(ADMIN)
        await team.send("/start", "coordination team")
        h.api.add_user(1401, first_name="Anna", last_name="Schmidt", username="anna_hh")
        anna = h.person(1401)
        await anna.send(f"/start {await personal_link(h)}", "This report is for Hamburg, Germany")
        replies = await anna.send("/colleague", "Send this personal link to one colleague of Hamburg")
        match = LINK_RE.search("\n".join(m.shown_text or "" for m in replies))
        assert match is not None
        colleague_token = match.group(1)

        h.api.add_user(1402, first_name="Jonas", username="jonas_hh")
        mark = h.api.mark()
        await h.person(1402).send(f"/start {colleague_token}", "This report is for Hamburg, Germany")
        # The team sees who invited whom.
        await team.expect(mark, "Jonas @jonas_hh joined Hamburg (Germany)", "Invited by Anna Schmidt @anna_hh")
        await refused(h.person(1403), colleague_token, USED)  # single-use like any personal link
        listing = await team.send("/contacts Hamburg", "Contacts", "Jonas")
        text = "\n".join(m.shown_text or "" for m in listing)
        assert "Anna Schmidt @anna_hh" in text and "Telegram user id: 1402" in text
        assert "Invited by Anna Schmidt @anna_hh" in text

        # A contact cannot mint links without end: five unused at a time (the first one is used).
        for _ in range(5):
            await anna.send("/colleague", "Send this personal link")
        await anna.send("/colleague", "You already have 5 colleague links that nobody has used yet")


async def test_join_notice_and_its_remove_button(tmp_path: Path) -> None:
    async with running_bot(tmp_path, admin_ids=frozenset({ADMIN})) as h:
        team = h.person(ADMIN)
        await team.send("/start", "coordination team")
        # Someone who was in the team once, no longer in ADMIN_IDS: told nothing.
        await h.storage.remember_admin(901, 901, "en")
        h.api.add_user(1501, first_name="Claire", last_name="Martin", username="claire_lyon")
        claire = h.person(1501)
        mark = h.api.mark()
        await claire.send(f"/start {await personal_link(h, 'Lyon', 'France', name='Claire Martin')}", "Lyon")
        (notice,) = await team.expect(mark, "Claire Martin @claire_lyon joined Lyon (France)")
        assert "Invitation made for: Claire Martin" in (notice.shown_text or "")
        assert "Telegram user id: 1501" in (notice.shown_text or "")
        assert not h.api.messages(901)

        await claire.press("Begin", "Official city website address")
        payload = notice.callback_data_for("Remove")
        await team.press("Remove")
        await h.api.async_wait_until(
            lambda: "Removed by" in (h.api.messages(ADMIN)[-1].shown_text or "") or None, timeout=15
        )
        assert not h.api.messages(ADMIN)[-1].buttons()  # the notice keeps no button
        assert await h.storage.contact_listing(SURVEY.id) == []
        replies = await claire.send("https://www.lyon.fr", UNINVITED)
        assert "Lyon" not in "\n".join(m.shown_text or "" for m in replies)
        # A second tap (a stale copy of the button) removes nothing more and says so.
        query = h.api.press(ADMIN, notice.message_id, payload, force=True)
        answer = await h.api.async_wait_until(lambda: h.api.callback_answer(query), timeout=15)
        assert answer.get("text") == "This contact was already removed."


async def test_removal_takes_effect_in_the_middle_of_the_questionnaire(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as h:
        hamburg = h.person(1601)
        token = await personal_link(h)
        await hamburg.send(f"/start {token}", "This report is for Hamburg, Germany")
        await hamburg.press("Begin", "Official city website address")
        await hamburg.send("https://www.hamburg.de", "Date of joining the UNESCO GNLC")
        contact = await h.contact(1601)

        removed = await h.storage.remove_contact(contact.report_id, telegram_user_id=1601, now=dt.datetime.now(dt.UTC))
        assert removed is not None and removed.id == contact.id

        replies = await hamburg.send("03/2019", UNINVITED)
        assert "Hamburg" not in "\n".join(m.shown_text or "" for m in replies)
        # Now one of those without an invitation: one reply per few minutes, so /review gets none.
        mark = h.api.mark()
        h.api.send_text(1601, "/review")
        await h.quiet()
        assert h.api.messages_since(mark, 1601) == []
        answers = await h.storage.answers_of(contact.report_id)
        assert "joined_gnlc" not in answers and answers["city_website"] == "https://www.hamburg.de"
        # The answers given stay, attributed to the removed contact in the audit trail.
        with sqlite3.connect(tmp_path / "gnlc.sqlite3") as db:
            rows = db.execute(
                "SELECT contact_id, action FROM audit WHERE report_id = ? AND question_id = 'city_website'",
                (contact.report_id,),
            ).fetchall()
        db.close()
        assert rows == [(contact.id, "answer")]
        # The old link does not bring the account back: it is told so, once.
        await hamburg.send(f"/start {token}", REMOVED)
        assert await h.storage.contact_by_telegram_user(1601) is None


async def test_an_input_in_flight_when_the_removal_lands_is_dropped_whole(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "gnlc.sqlite3")
    try:
        now = dt.datetime.now(dt.UTC)
        city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, now)
        token = await storage.create_invitation(city.id, now, max_uses=1)
        result = await storage.redeem(
            token, telegram_user_id=7, chat_id=7, display_name="A", language="en", now=now, username="a"
        )
        assert result.outcome is Redeemed.JOINED and result.contact is not None
        contact = result.contact
        before, session = await storage.load(contact)  # read before the removal …
        await storage.remove_contact(city.id, contact_id=contact.id, now=now)
        after = Report(answers={"mayor_name": "Someone"}, status=before.status)
        with pytest.raises(ContactRemoved):  # … saved after it: nothing is kept
            await storage.save(contact, before, after, session, now)
        assert await storage.answers_of(city.id) == {}
        again = await storage.redeem(token, telegram_user_id=7, chat_id=7, display_name="A", language="en", now=now)
        assert again.outcome is Redeemed.REMOVED and again.contact is None
        # A new link from the team lets the account back in.
        back = await storage.create_invitation(city.id, now + dt.timedelta(seconds=1), max_uses=1)
        rejoined = await storage.redeem(back, telegram_user_id=7, chat_id=7, display_name="A", language="en", now=now)
        assert rejoined.outcome is Redeemed.JOINED
    finally:
        await storage.close()


# -- a whole network from a CSV file


def write_csv(path: Path, rows: list[list[str]]) -> bytes:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path.read_bytes()


async def test_bulk_invitations_from_a_csv_file(tmp_path: Path, api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    sheet = tmp_path / "network.csv"
    header = ["City", "Country", "Joined", "Name", "E-mail", "Notes"]
    good = [
        ["Hamburg", "Germany", "2016-03", "Anna Schmidt", "anna@hamburg.de", "mayor's office"],
        ["Hamburg", "Germany", "2016-03", "Jonas Weber", "jonas@hamburg.de", ""],
        ["Lyon", "France", "", "Claire Martin", "claire@lyon.fr", ""],
    ]
    bad = ["Espoo", "Finland", "March 2019", "Aino", "not-an-address", ""]
    original = write_csv(sheet, [header, good[0], good[1], bad, good[2]])

    failed = await acli(data, api, "invite", "--from", str(sheet))
    assert failed.returncode == 2
    assert "error: line 4: joined 'March 2019' is not YYYY-MM, e-mail 'not-an-address'" in failed.stderr
    assert "nothing was written" in failed.stderr
    assert sheet.read_bytes() == original  # the file is untouched …
    storage = await Storage.open(data / "gnlc.sqlite3")
    try:
        assert await storage.list_reports(SURVEY.id) == []  # … and so is the database
    finally:
        await storage.close()

    write_csv(sheet, [header, *good])
    qr = tmp_path / "qr"
    done = await acli(data, api, "invite", "--from", str(sheet), "--qr", str(qr))
    assert done.returncode == 0, done.stderr
    assert "created 3 link(s)" in done.stdout
    with sheet.open(newline="", encoding="utf-8") as fh:
        written = list(csv.DictReader(fh))
    assert [r["Name"] for r in written] == ["Anna Schmidt", "Jonas Weber", "Claire Martin"]
    assert written[0]["Notes"] == "mayor's office"  # other columns kept as they were
    tokens = [LINK_RE.fullmatch(r["link"]).group(1) for r in written]  # type: ignore[union-attr]
    assert len(set(tokens)) == 3
    for row in written:
        assert (qr / row["qr"]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    rerun = await acli(data, api, "invite", "--from", str(sheet))
    assert rerun.returncode == 0, rerun.stderr
    assert "created 0 link(s)" in rerun.stdout and rerun.stdout.count("already has a link") == 3
    with sheet.open(newline="", encoding="utf-8") as fh:
        assert [r["link"] for r in csv.DictReader(fh)] == [r["link"] for r in written]

    # The same people in a fresh copy of the file (without links): skipped by their e-mail address.
    copy = tmp_path / "copy.csv"
    write_csv(copy, [header, *good])
    again = await acli(data, api, "invite", "--from", str(copy))
    assert again.returncode == 0 and "created 0 link(s)" in again.stdout, again.stdout + again.stderr

    async with running_bot(data, api=api) as h:
        reports = await h.storage.list_reports(SURVEY.id)
        assert [(c.name, c.joined) for c in reports] == [("Hamburg", "2016-03"), ("Lyon", None)]
        links = [invitation for c in reports for invitation in await h.storage.invitations_of(c.id)]
        assert len(links) == 3  # nothing doubled
        jonas = h.person(1701)
        await jonas.send(f"/start {tokens[1]}", "This report is for Hamburg, Germany")
        await refused(h.person(1702), tokens[1], USED)
        listing = await h.storage.contact_listing(SURVEY.id)
        assert [(row.invitation.name if row.invitation else None) for row in listing] == ["Jonas Weber"]


async def test_cli_contacts_and_remove_contact(tmp_path: Path, api: FakeBotAPI) -> None:
    data = tmp_path / "data"
    async with running_bot(data, api=api) as h:
        api.add_user(1801, first_name="Anna", username="anna_hh")
        anna = h.person(1801)
        await anna.send(f"/start {await personal_link(h, name='Anna Schmidt')}", "This report is for Hamburg")
        listing = await acli(data, api, "contacts", "--city", "Hamburg")
        assert listing.returncode == 0, listing.stderr
        assert "Hamburg (Germany)" in listing.stdout
        assert "Anna @anna_hh" in listing.stdout and "Telegram user id: 1801" in listing.stdout
        assert "Invitation made for: Anna Schmidt" in listing.stdout

        removed = await acli(data, api, "remove-contact", "--city", "Hamburg", "--user", "1801")
        assert removed.returncode == 0, removed.stderr
        await anna.send("/review", UNINVITED)
        again = await acli(data, api, "remove-contact", "--city", "Hamburg", "--user", "1801")
        assert again.returncode == 2 and "not a contact of Hamburg" in again.stderr
        after = await acli(data, api, "contacts")
        assert "1801" not in after.stdout


async def test_a_link_from_before_the_migration_keeps_its_behaviour(tmp_path: Path) -> None:
    """A database from before personal invitations, migrated: its link still admits any number of accounts."""
    from bot.storage import MIGRATIONS, SCHEMA_VERSION
    from bot.storage.migrations import _statements

    personal = next(i for i, script in enumerate(MIGRATIONS) if "invitation_uses" in script)
    path = tmp_path / "gnlc.sqlite3"
    token = "A" * 20 + "legacy-link-from-2021" + "xx"
    assert len(token) == 43
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for script in MIGRATIONS[:personal]:
            for statement in _statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {personal:d}")
        db.execute(
            "INSERT INTO reports (id, survey_id, city, country, created_at) VALUES (1, ?, 'Hamburg', 'Germany', ?)",
            (SURVEY.id, "2021-01-01T00:00:00+00:00"),
        )
        db.execute(
            "INSERT INTO invitations (report_id, token_hash, created_at, used_count) VALUES (1, ?, ?, 4)",
            (hashlib.sha256(token.encode()).hexdigest(), "2021-01-01T00:00:00+00:00"),
        )
    finally:
        db.close()
    storage = await Storage.open(path)
    try:
        assert (await storage._fetch("PRAGMA user_version"))[0][0] == SCHEMA_VERSION
        now = dt.datetime.now(dt.UTC)  # years later: no expiry
        for user in (11, 12, 13):
            result = await storage.redeem(
                token, telegram_user_id=user, chat_id=user, display_name=f"U{user}", language="en", now=now
            )
            assert result.outcome is Redeemed.JOINED
        (invitation,) = await storage.invitations_of(1)
        assert (invitation.max_uses, invitation.expires_at, invitation.uses) == (None, None, 3)
        from conversation.i18n import get_translator

        lines = "\n".join(await admin.contacts_report(storage, SURVEY, "Hamburg", get_translator("en"), now))
        assert "shared link from before personal invitations — any number of accounts, no expiry" in lines
    finally:
        await storage.close()
