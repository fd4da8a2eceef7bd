"""The path of one answer, shared by every front end: load, advance, save, then render.

Rules of this module:
- The engine decides; this module only does the I/O around it.
- Every change is committed to the database before any reply is produced, so a reply
  that fails to send never loses an answer.
- Files are stored by content hash, written atomically (partial file, fsync, rename, directory
  fsync), and recorded after they are on disk; an update carrying a file counts as handled only
  in the transaction that records the file. Partial and unreferenced files are removed at start.
- A step's save is committed only if the report is unchanged since it was read; otherwise the
  step is decided again on the fresh report (another contact's append or submission wins).
- Nothing here knows Telegram: files arrive through a `fetch` callback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot import metrics
from bot.durable import sync_directory
from bot.storage import Contact, FilesFull, ReportChanged, ReportClosed, Storage, StorageUnavailable
from conversation import engine
from conversation.i18n import Translator, get_translator
from conversation.model import Survey
from conversation.render import Renderer, Reply, esc, format_size
from conversation.state import (
    Attachment,
    Effect,
    FileInput,
    Input,
    Mode,
    Refusal,
    Rejected,
    RemoveFile,
    Report,
    ReportStatus,
    Session,
    Step,
    StoreFile,
    TextInput,
    TooManyFiles,
)

logger = logging.getLogger(__name__)

Fetch = Callable[[FileInput], Awaitable[bytes]]
MAX_STEP_ATTEMPTS = 5  # decisions re-made when another contact's save got in first
PARTIAL_SUFFIX = ".part"
Clock = Callable[[], dt.datetime]


class Unreachable(Exception):
    """The contact can no longer be written to (they blocked the bot or left the messenger): stop
    writing to them. A front end raises it from its own refusal (Telegram's 403)."""


class FileTooBig(Exception):
    """The downloaded file turned out larger than its declared size allows."""


@dataclass(frozen=True)
class Outcome:
    """What one input produced: replies to show, in the contact's language."""

    replies: tuple[Reply, ...]
    session: Session
    report: Report
    translator: Translator
    effects: tuple[Effect, ...] = ()


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class IntakeService:
    """Runs contacts' inputs through the engine with durable storage."""

    def __init__(
        self, survey: Survey, storage: Storage, files_dir: Path, clock: Clock = utc_now, *, accept_late: bool = True
    ) -> None:
        self.accept_late = accept_late
        self.survey = survey
        self.storage = storage
        self.files_dir = files_dir
        self.clock = clock
        self.renderer = Renderer(survey)

    async def begin(self, contact: Contact, *, update_id: int | None = None) -> Outcome:
        """What a contact sees on /start: the introduction, or where they stopped."""
        report, session = await self.storage.load(contact)
        step = engine.start(self.survey, report, session)
        if step.session != session or update_id is not None:
            await self.storage.save(contact, report, step.report, step.session, self.clock(), update_id=update_id)
        tr = get_translator(step.session.language)
        replies = tuple(self.renderer.render(step.effects, step.report, step.session, tr))
        return Outcome(replies, step.session, step.report, tr, step.effects)

    async def where(self, contact: Contact) -> Outcome:
        """The contact's current question (or state), changing nothing."""
        report, session = await self.storage.load(contact)
        step = engine.current(self.survey, report, session)
        tr = get_translator(session.language)
        replies = tuple(self.renderer.render(step.effects, report, session, tr))
        return Outcome(replies, session, report, tr, step.effects)

    async def handle(
        self,
        contact: Contact,
        event: Input,
        fetch: Fetch | None = None,
        *,
        message_id: int | None = None,
        update_id: int | None = None,
        loaded: tuple[Report, Session] | None = None,
    ) -> Outcome:
        """Apply one input: engine, commit, file work, then the replies.

        `message_id` identifies the contact's message that carried a typed answer, so that
        editing it later updates the answer; `update_id` is the Telegram update it came in.
        `loaded` is the contact's report and session if the caller just read them (one read less).
        """
        now = self.clock()
        report, session = loaded if loaded is not None else await self.storage.load(contact)
        for attempt in range(1, MAX_STEP_ATTEMPTS + 1):
            labels = get_translator(session.language)
            step = engine.advance(
                self.survey, report, session, event, now=now, labels=labels, accept_late=self.accept_late
            )
            carried = None
            answering = session.cursor is not None and session.mode in (Mode.ASKING, Mode.ADDING_MORE)
            if message_id is not None and isinstance(event, TextInput) and answering:
                assert session.cursor is not None
                carried = (message_id, session.cursor, event.text)
            # An update carrying a file counts as handled once the file is stored (see _store_file),
            # so a crash before that downloads it again on the replay.
            files = any(isinstance(e, StoreFile) for e in step.effects)
            try:
                await self.storage.save(
                    contact,
                    report,
                    step.report,
                    step.session,
                    now,
                    answer_message=carried,
                    update_id=None if files else update_id,
                )
                break
            except ReportChanged:
                # Another contact of the city changed the report since it was read: decide again on
                # what is stored now (their append, their submission ...).
                if attempt == MAX_STEP_ATTEMPTS:
                    raise StorageUnavailable("the report kept changing during the save") from None
                logger.info("report %d changed during a step; deciding again", contact.report_id)
                report, session = await self.storage.load(contact)
        _count_changes(report, step.report)
        tr = get_translator(step.session.language)
        replies: list[Reply] = []
        for effect in step.effects:
            if isinstance(effect, StoreFile):
                replies.append(await self._store_file(contact, effect.file, fetch, tr, step, update_id))
            elif isinstance(effect, RemoveFile):
                replies.append(await self._remove_file(contact, effect.sha256, tr, step))
            else:
                replies.extend(self.renderer.one(effect, step.report, step.session, tr))
        return Outcome(tuple(replies), step.session, step.report, tr, step.effects)

    async def prefill(self, contact: Contact, *, city: str, country: str, joined: str | None) -> None:
        """Fill answers the invitation already knows (city, country, joining month) if still empty."""
        answers = engine.prefill_answers(self.survey, city=city, country=country, joined=joined)
        report, session = await self.storage.load(contact)
        for _attempt in range(MAX_STEP_ATTEMPTS):
            missing = {k: val for k, val in answers.items() if val and not report.answers.get(k)}
            if not missing:
                return
            changed = report.model_copy(update={"answers": {**report.answers, **missing}})
            try:
                await self.storage.save(
                    contact, report, engine.with_status(self.survey, changed), session, self.clock()
                )
                return
            except ReportChanged:
                report, session = await self.storage.load(contact)

    # -- files

    async def _store_file(
        self, contact: Contact, file: FileInput, fetch: Fetch | None, tr: Translator, step: Step, update_id: int | None
    ) -> Reply:
        _ = tr.t
        if fetch is None:
            return Reply("⚠️ " + _("Files cannot be received here."))
        limit = self.survey.uploads.max_file_bytes
        try:
            data = await fetch(file)
        except FileTooBig:
            return Reply("⚠️ " + _("This file is larger than {limit}.", limit=format_size(tr, limit)))
        except Exception:  # a download can fail in many ways; the contact can simply resend
            logger.warning("download of %s failed", file.file_id, exc_info=True)
            return Reply("⚠️ " + _("The file could not be received. Please send it again."))
        if len(data) > limit:
            return Reply("⚠️ " + _("This file is larger than {limit}.", limit=format_size(tr, limit)))
        sha = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write_blob, sha, data)
        attachment = Attachment(
            sha256=sha, name=file.name, mime_type=file.mime_type, size=len(data), caption=file.caption
        )
        limits = self.survey.uploads
        try:
            # The file cap and the report's status are checked in the transaction that adds the file
            # (another contact of the city may have added the last one, or submitted, meanwhile).
            added = await self.storage.add_attachment(
                contact.report_id, contact.id, attachment, self.clock(), max_files=limits.max_files, update_id=update_id
            )
        except (FilesFull, ReportClosed) as exc:
            report = await self.storage.attachments(contact.report_id)
            refused = Rejected(
                TooManyFiles(limits.max_files, tuple(a.name for a in report))
                if isinstance(exc, FilesFull)
                else Refusal.READ_ONLY
            )
            return self.renderer.one(refused, step.report, step.session, tr)[0]
        if not added:
            already = _("You have already sent this file ({name}); it is kept once.", name=esc(file.name))
            if file.caption and await self.storage.describe_attachment(
                contact.report_id, sha, file.caption, contact_id=contact.id, now=self.clock()
            ):
                already += "\n" + _("Its new caption is kept as the file's description.")
            return Reply(already)
        count = len(await self.storage.attachments(contact.report_id))
        saved = "📎 " + _(
            "File saved: {name} ({size}). {count} of {limit} files.",
            name=esc(file.name),
            size=format_size(tr, len(data)),
            count=count,
            limit=self.survey.uploads.max_files,
        )
        if file.caption:
            # A caption may look like an answer; say where it went so nothing seems lost.
            saved += "\n" + _(
                "Its caption is kept as the file's description. To answer the question, send your answer as a message."
            )
        return Reply(saved)

    def blob_path(self, sha: str) -> Path:
        """Where a file with this content hash lives."""
        return self.files_dir / sha[:2] / sha

    def _write_blob(self, sha: str, data: bytes) -> None:
        """Write the file under its hash: to a partial file, synced, renamed, and the rename synced."""
        path = self.blob_path(sha)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{sha}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")  # own name: no two writers share it
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        sync_directory(path.parent)

    async def clean_files(self) -> tuple[int, int]:
        """At start-up: remove partial files a crash left, and files no report refers to any more.
        Returns (partial files, unreferenced files) removed."""
        if not self.files_dir.is_dir():
            return 0, 0
        referenced = await self.storage.attachment_hashes()

        def sweep() -> tuple[int, int]:
            partial = unreferenced = 0
            for path in self.files_dir.glob("*/*"):
                if path.name.endswith(PARTIAL_SUFFIX):
                    path.unlink(missing_ok=True)
                    partial += 1
                elif path.is_file() and path.name not in referenced:
                    path.unlink(missing_ok=True)
                    unreferenced += 1
            return partial, unreferenced

        partial, unreferenced = await asyncio.to_thread(sweep)
        if partial or unreferenced:
            logger.info("removed %d partial and %d unreferenced stored file(s)", partial, unreferenced)
        return partial, unreferenced

    async def _remove_file(self, contact: Contact, sha: str, tr: Translator, step: Step) -> Reply:
        _ = tr.t
        try:
            removed = await self.storage.remove_attachment(
                contact.report_id, sha, contact_id=contact.id, now=self.clock(), only_open=True
            )
        except ReportClosed:
            return self.renderer.one(Rejected(Refusal.READ_ONLY), step.report, step.session, tr)[0]
        if removed is None:
            return Reply(_("That file was already removed."))
        return Reply("🗑 " + _("Removed {name}.", name=esc(removed.name)))


def _count_changes(before: Report, after: Report) -> None:
    """Count the answers just committed and a submission (for the metrics)."""
    changed = sum(1 for key, value in after.answers.items() if before.answers.get(key) != value)
    if changed:
        metrics.ANSWERS_STORED.inc(changed)
    if after.status == ReportStatus.SUBMITTED and before.status != ReportStatus.SUBMITTED:
        metrics.SUBMISSIONS.inc()


__all__ = ["FileTooBig", "IntakeService", "Outcome", "StorageUnavailable", "Unreachable", "utc_now"]
