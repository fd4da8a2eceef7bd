"""Reports: one per member city and survey, with its status.

Rules of this module:
- A city's report is found case-insensitively; there is never a second one.
- Every change of status leaves an `audit` row and raises the report's version.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from bot.storage.connection import Connection
from bot.storage.rows import (
    _REPORT_COLUMNS,
    _STATUS_ACTION,
    City,
    Db,
    _all,
    _audit,
    _city,
    _one,
    _rowid,
    _status_json,
    _ts,
)
from conversation.state import ReportStatus
from conversation.validation import is_month_value

logger = logging.getLogger(__name__)


class Reports(Connection):
    """Finding, listing and changing the status of reports."""

    async def find_or_create_report(
        self, survey_id: str, city: str, country: str, joined: str | None, now: dt.datetime
    ) -> City:
        """Return the report of this city (case-insensitive), creating it if needed."""
        report, created = await self._run(
            partial(_find_or_create, survey_id=survey_id, city=city, country=country, joined=joined, now=now),
            write=True,
        )
        if created:
            logger.info("created report %d for survey %s", report.id, survey_id)
        return report

    async def get_report(self, report_id: int) -> City | None:
        """Return the report with this id, or None."""
        row = await self._fetch_one(f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (report_id,))
        return None if row is None else _city(row)

    async def find_reports(self, survey_id: str, query: str) -> list[City]:
        """Return the cities named `query` (any case), else those whose name contains it."""
        needle = query.strip().casefold()
        if not needle:
            return []
        cities = await self.list_reports(survey_id)
        exact = [c for c in cities if c.name.casefold() == needle]
        return exact or [c for c in cities if needle in c.name.casefold()]

    async def list_reports(self, survey_id: str) -> list[City]:
        """Return every report of the survey, ordered by city and country."""
        rows = await self._fetch(
            f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ?"
            " ORDER BY city COLLATE NOCASE, country COLLATE NOCASE, id",
            (survey_id,),
        )
        return [_city(row) for row in rows]

    async def reports_submitted_before(self, survey_id: str, moment: dt.datetime) -> list[City]:
        """The reports submitted before this time."""
        return [
            city
            for city in await self.list_reports(survey_id)
            if city.submitted_at is not None and city.submitted_at < moment
        ]

    async def reopen(self, report_id: int, now: dt.datetime) -> None:
        """Set the report back to open (clearing its submission time)."""
        await self.set_status(report_id, ReportStatus.OPEN, now)

    async def set_status(self, report_id: int, status: ReportStatus, now: dt.datetime) -> None:
        """Set the report's status; submitted records `now` as its submission time."""
        status = ReportStatus(status)
        submitted_at = _ts(now) if status is ReportStatus.SUBMITTED else None

        async def work(db: Db) -> bool:
            row = await _one(db, "SELECT status, submitted_at FROM reports WHERE id = ?", (report_id,))
            if row is None:
                raise LookupError(f"no report with id {report_id}")
            if row["status"] == status.value:
                return False
            await db.execute(
                "UPDATE reports SET status = ?, submitted_at = ?, version = version + 1 WHERE id = ?",
                (status.value, submitted_at, report_id),
            )
            await _audit(
                db,
                report_id,
                None,
                None,
                _STATUS_ACTION[status],
                _status_json(row["status"], row["submitted_at"]),
                _status_json(status.value, submitted_at),
                now,
            )
            return True

        if await self._run(work, write=True):
            logger.info("report %d is now %s", report_id, status.value)


async def _find_or_create(
    db: Db, *, survey_id: str, city: str, country: str, joined: str | None, now: dt.datetime
) -> tuple[City, bool]:
    """The report of this city (any case), created if needed; and whether it was created."""
    city, country = city.strip(), country.strip()
    if not city or not country:
        raise ValueError("city and country must not be empty")
    if joined is not None and not is_month_value(joined):
        raise ValueError(f"joined must be 'YYYY-MM', got {joined!r}")
    rows = await _all(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE survey_id = ?", (survey_id,))
    for row in rows:
        if row["city"].casefold() == city.casefold() and row["country"].casefold() == country.casefold():
            if joined is not None and row["joined"] is None:
                await db.execute("UPDATE reports SET joined = ? WHERE id = ?", (joined, row["id"]))
                return _city(row, joined=joined), False
            return _city(row), False
    cur = await db.execute(
        "INSERT INTO reports (survey_id, city, country, joined, created_at) VALUES (?, ?, ?, ?, ?)",
        (survey_id, city, country, joined, _ts(now)),
    )
    created = await _one(db, f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = ?", (_rowid(cur),))
    assert created is not None
    return _city(created), True
