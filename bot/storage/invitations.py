"""Invitation links: making, opening (redeeming) and revoking them.

Rules of this module:
- Invitation tokens are never stored or logged; only their sha256 is kept. A link admits at most
  `max_uses` accounts until `expires_at` (both NULL for links made before schema v6: unlimited).
- An account removed from a city cannot come back through a link made before its removal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets

from bot.storage.connection import Connection
from bot.storage.reports import _find_or_create
from bot.storage.rows import (
    _INVITATION_COLUMNS,
    _TOKEN_RE,
    City,
    Db,
    Invitation,
    Redeemed,
    Redemption,
    TooManyLinks,
    _all,
    _audit,
    _contact_by_id,
    _invitation,
    _one,
    _parse_ts,
    _require_report,
    _rowid,
    _token_hash,
    _ts,
    _ts_opt,
)

logger = logging.getLogger(__name__)


class Invitations(Connection):
    """The invitation links of reports."""

    async def create_invitation(
        self,
        report_id: int,
        now: dt.datetime,
        *,
        max_uses: int | None = None,
        expires_at: dt.datetime | None = None,
        name: str | None = None,
        email: str | None = None,
        invited_by: int | None = None,
    ) -> str:
        """Create an invitation to the report and return its token (only its hash is stored).

        `max_uses` accounts may join with it (None: any number), until `expires_at` (None: no end);
        the team's policy (personal, single-use, expiring) is chosen by the callers in `bot.admin`.
        """
        ((token, _),) = await self.create_invitations(
            [(report_id, name, email)], now, max_uses=max_uses, expires_at=expires_at, invited_by=invited_by
        )
        return token

    async def create_invitations(
        self,
        rows: list[tuple[int, str | None, str | None]],
        now: dt.datetime,
        *,
        max_uses: int | None,
        expires_at: dt.datetime | None,
        invited_by: int | None = None,
        colleague_cap: int | None = None,
    ) -> list[tuple[str, int]]:
        """Create one invitation per (report id, name, e-mail), all in one transaction; return
        (token, invitation id) in order. `colleague_cap` refuses (TooManyLinks) when `invited_by`
        already has that many links nobody has used yet and that still work."""
        if max_uses is not None and max_uses < 1:
            raise ValueError("max_uses must be at least 1")
        tokens = [new_token() for _ in rows]

        async def work(db: Db) -> list[tuple[str, int]]:
            if colleague_cap is not None and invited_by is not None:
                open_links = [
                    inv
                    for inv in map(_invitation, await _all(
                        db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE invited_by = ?", (invited_by,)
                    ))
                    if inv.uses == 0 and inv.live(now)
                ]  # fmt: skip
                if len(open_links) >= colleague_cap:
                    raise TooManyLinks(f"contact {invited_by} has {len(open_links)} unused links")
            made: list[tuple[str, int]] = []
            for token, (report_id, name, email) in zip(tokens, rows, strict=True):
                await _require_report(db, report_id)
                cur = await db.execute(
                    "INSERT INTO invitations (report_id, token_hash, created_at, max_uses, expires_at, name, email,"
                    " invited_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (report_id, _token_hash(token), _ts(now), max_uses, _ts_opt(expires_at), name, email, invited_by),
                )
                invitation_id = _rowid(cur)
                await _audit(
                    db, report_id, invited_by, None, "invite", None, json.dumps({"invitation": invitation_id}), now
                )
                made.append((token, invitation_id))
            return made

        made = await self._run(work, write=True)
        for _, invitation_id in made:
            logger.info("created invitation %d (uses %s)", invitation_id, max_uses or "any")
        return made

    async def invite_cities(
        self,
        survey_id: str,
        rows: list[tuple[str, str, str | None, str | None, str | None]],
        tokens: list[str],
        now: dt.datetime,
        *,
        max_uses: int,
        expires_at: dt.datetime,
    ) -> list[City]:
        """For each (city, country, joined, name, e-mail): find or create the city's report and make an
        invitation with the given token. All in one transaction: every row, or (on any error) none."""
        if len(rows) != len(tokens) or not all(_TOKEN_RE.fullmatch(t) for t in tokens):
            raise ValueError("one well-formed token per row is needed")

        async def work(db: Db) -> list[City]:
            cities = []
            for token, (city, country, joined, name, email) in zip(tokens, rows, strict=True):
                report, _ = await _find_or_create(
                    db, survey_id=survey_id, city=city, country=country, joined=joined, now=now
                )
                cur = await db.execute(
                    "INSERT INTO invitations (report_id, token_hash, created_at, max_uses, expires_at, name, email)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (report.id, _token_hash(token), _ts(now), max_uses, _ts(expires_at), name, email),
                )
                await _audit(db, report.id, None, None, "invite", None, json.dumps({"invitation": _rowid(cur)}), now)
                cities.append(report)
            return cities

        cities = await self._run(work, write=True)
        logger.info("created %d invitations at once", len(cities))
        return cities

    async def redeem(
        self,
        token: str,
        *,
        telegram_user_id: int,
        chat_id: int,
        display_name: str,
        language: str,
        now: dt.datetime,
        username: str | None = None,
    ) -> Redemption:
        """Open an invitation link for a Telegram account.

        A link binds to the accounts that use it first, up to its `max_uses`; a member of the city
        opening one of its links changes nothing and uses nothing up; an account removed from the
        city cannot come back through a link made before its removal.
        """
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return Redemption(Redeemed.UNKNOWN)
        at = _ts(now)

        async def work(db: Db) -> Redemption:
            row = await _one(
                db, f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?", (_token_hash(token),)
            )
            if row is None or row["revoked_at"] is not None:
                return Redemption(Redeemed.UNKNOWN)
            invitation = _invitation(row)
            report_id = invitation.report_id
            existing = await _one(
                db, "SELECT id, report_id, removed_at FROM contacts WHERE telegram_user_id = ?", (telegram_user_id,)
            )
            used_before = (
                await _one(
                    db,
                    "SELECT 1 FROM invitation_uses WHERE invitation_id = ? AND telegram_user_id = ?",
                    (invitation.id, telegram_user_id),
                )
                is not None
            )
            if existing is not None and int(existing["report_id"]) == report_id:
                removed = _parse_ts(existing["removed_at"])
                if removed is not None and (used_before or invitation.created_at <= removed):
                    return Redemption(Redeemed.REMOVED, invitation=invitation)
                if removed is None:
                    await db.execute(
                        "UPDATE invitations SET used_count = used_count + 1 WHERE id = ?", (invitation.id,)
                    )
                    await db.execute(
                        "UPDATE contacts SET chat_id = ?, blocked = 0, updated_at = ? WHERE id = ?",
                        (chat_id, at, existing["id"]),
                    )
                    return Redemption(Redeemed.AGAIN, await _contact_by_id(db, int(existing["id"])), invitation)
            if not used_before:
                if invitation.expires_at is not None and now >= invitation.expires_at:
                    return Redemption(Redeemed.EXPIRED, invitation=invitation)
                if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
                    return Redemption(Redeemed.USED, invitation=invitation)
                await db.execute(
                    "INSERT INTO invitation_uses (invitation_id, telegram_user_id, used_at) VALUES (?, ?, ?)",
                    (invitation.id, telegram_user_id, at),
                )
            await db.execute("UPDATE invitations SET used_count = used_count + 1 WHERE id = ?", (invitation.id,))
            if existing is None:
                cur = await db.execute(
                    "INSERT INTO contacts (report_id, telegram_user_id, chat_id, display_name, language, username,"
                    " invitation_id, created_at, updated_at, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (report_id, telegram_user_id, chat_id, display_name, language, username, invitation.id, at, at, at),
                )
                contact_id = _rowid(cur)
            else:
                contact_id = int(existing["id"])
                # Another city (or back after a removal): the old place in the questionnaire no longer
                # applies, and the messages that carried answers elsewhere map to nothing here.
                await db.execute(
                    "UPDATE contacts SET report_id = ?, chat_id = ?, display_name = ?, username = ?, blocked = 0,"
                    " updated_at = ?, joined_at = ?, invitation_id = ?, removed_at = NULL, session_json = NULL"
                    " WHERE id = ?",
                    (report_id, chat_id, display_name, username, at, at, invitation.id, contact_id),
                )
                await db.execute("DELETE FROM answer_messages WHERE contact_id = ?", (contact_id,))
            await _audit(db, report_id, contact_id, None, "join", None, json.dumps({"invitation": invitation.id}), now)
            inviter = None if invitation.invited_by is None else await _contact_by_id(db, invitation.invited_by)
            return Redemption(Redeemed.JOINED, await _contact_by_id(db, contact_id), invitation, inviter)

        result = await self._run(work, write=True)
        if result.outcome is Redeemed.JOINED:
            assert result.contact is not None and result.invitation is not None
            logger.info(
                "contact %d joined report %d by invitation %d",
                result.contact.id,
                result.contact.report_id,
                result.invitation.id,
            )
        elif result.outcome is not Redeemed.AGAIN and result.invitation is not None:
            logger.info("invitation %d refused to an account: %s", result.invitation.id, result.outcome.value)
        return result

    async def invitations_of(self, report_id: int) -> list[Invitation]:
        """Every invitation of the report, oldest first."""
        rows = await self._fetch(
            f"SELECT {_INVITATION_COLUMNS} FROM invitations WHERE report_id = ? ORDER BY id", (report_id,)
        )
        return [_invitation(row) for row in rows]

    async def invited_emails(self, report_id: int) -> set[str]:
        """The e-mail addresses (case-folded) the report's links were made for."""
        rows = await self._fetch(
            "SELECT email FROM invitations WHERE report_id = ? AND email IS NOT NULL", (report_id,)
        )
        return {str(row["email"]).casefold() for row in rows}

    async def revoke_invitation(self, token: str, *, now: dt.datetime) -> bool:
        """Revoke one invitation; False if the token is unknown or already revoked."""
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return False

        async def work(db: Db) -> int | None:
            row = await _one(
                db,
                "SELECT id, report_id FROM invitations WHERE token_hash = ? AND revoked_at IS NULL",
                (_token_hash(token),),
            )
            if row is None:
                return None
            await db.execute("UPDATE invitations SET revoked_at = ? WHERE id = ?", (_ts(now), row["id"]))
            await _audit(db, row["report_id"], None, None, "revoke", json.dumps({"invitation": row["id"]}), None, now)
            return int(row["id"])

        invitation_id = await self._run(work, write=True)
        if invitation_id is None:
            return False
        logger.info("revoked invitation %d", invitation_id)
        return True

    async def revoke_report_invitations(self, report_id: int, now: dt.datetime) -> int:
        """Revoke every live invitation of the report; return how many were revoked."""

        async def work(db: Db) -> int:
            cur = await db.execute(
                "UPDATE invitations SET revoked_at = ? WHERE report_id = ? AND revoked_at IS NULL",
                (_ts(now), report_id),
            )
            count = max(cur.rowcount, 0)
            if count:
                await _audit(db, report_id, None, None, "revoke", json.dumps({"invitations": count}), None, now)
            return count

        count = await self._run(work, write=True)
        logger.info("revoked %d invitations of report %d", count, report_id)
        return count


def new_token() -> str:
    """A fresh invitation token (43 URL-safe characters; only its sha256 is ever stored).

    Never starting with "-", so that `revoke --token T` cannot be mistaken for an option."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token
