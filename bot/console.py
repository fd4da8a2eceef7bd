"""The terminal front end: the same engine, storage and texts as Telegram, one line per message.

Rules of this module:
- Buttons become numbered choices; typing the number presses the button.
- Commands are the Telegram ones (`conversation.commands`, /reminders and /mydata included) plus /file PATH
  and /quit; /colleague explains that colleague links are made in Telegram.
- Reads standard input line by line, so it can be scripted (the tests drive it as a subprocess).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from bot import contact_tools
from bot.service import FileTooBig, IntakeService
from bot.storage import Contact, Storage, StorageUnavailable
from conversation import callbacks, commands
from conversation.i18n import get_translator, pick_language
from conversation.model import Survey
from conversation.render import Reply
from conversation.state import CommandInput, FileInput, Input, TextInput

logger = logging.getLogger(__name__)

_TAG_RE = re.compile(r"</?[a-z][^>]*>")


def plain(text: str) -> str:
    """Telegram HTML as terminal text."""
    return html.unescape(_TAG_RE.sub("", text))


class Console:
    """One terminal contact working on one city's report."""

    def __init__(
        self,
        service: IntakeService,
        contact: Contact,
        out: TextIO = sys.stdout,
        regional_defaults: Mapping[str, str] | None = None,
    ) -> None:
        self.service = service
        self.contact = contact
        self.out = out
        # What a bare code typed after /language stands for ("pt" → the team's Portuguese).
        self.regional_defaults = regional_defaults
        self.buttons: list[str] = []

    def show(self, replies: tuple[Reply, ...] | list[Reply]) -> None:
        """Print replies, numbering their buttons across the batch.

        As in a chat, the latest buttons stay pressable until newer buttons replace them.
        """
        if any(reply.buttons for reply in replies):
            self.buttons = []
        for reply in replies:
            self.out.write(plain(reply.text) + "\n")
            labels = []
            for row in reply.buttons:
                for button in row:
                    self.buttons.append(button.payload)
                    labels.append(f"[{len(self.buttons)}] {button.label}")
            if labels:
                self.out.write("   ".join(labels) + "\n")
            self.out.write("\n")
        self.out.flush()

    def parse(self, line: str) -> Input | None:
        """A typed line as an engine input (None for /quit)."""
        stripped = line.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(self.buttons):
            decoded = callbacks.decode(self.buttons[int(stripped) - 1])
            if decoded is not None:
                return decoded
        if stripped.startswith("/"):
            name, _, arg = stripped[1:].partition(" ")
            name = name.lower()
            if name in ("quit", "exit"):
                return None
            if name == "file":
                return self.file_input(arg.strip())
            if name == "language" and arg.strip():
                return CommandInput("set_language", pick_language(arg.strip(), self.regional_defaults))
            return CommandInput(name, arg.strip() or None)
        return TextInput(line.rstrip("\n"))

    def file_input(self, path_text: str) -> Input:
        """A local file offered as an attachment."""
        path = Path(path_text).expanduser()
        size = path.stat().st_size if path.is_file() else None
        return FileInput(file_id=str(path), name=path.name, mime_type=None, size=size)

    async def fetch(self, file: FileInput) -> bytes:
        """Read a local file (the console's 'download')."""
        data = await asyncio.to_thread(Path(file.file_id).read_bytes)
        if len(data) > self.service.survey.uploads.max_file_bytes:
            raise FileTooBig(file.name)
        return data

    async def run(self, lines: TextIO = sys.stdin) -> None:
        """Read lines until end of input or /quit."""
        outcome = await self.service.begin(self.contact)
        self.show(outcome.replies)
        while True:
            line = await asyncio.to_thread(lines.readline)
            if not line:
                break
            event = self.parse(line)
            if event is None:
                break
            if isinstance(event, FileInput) and event.size is None:
                tr = get_translator(outcome.session.language)
                self.show([Reply("⚠️ " + tr.t("No such file: {path}", path=event.file_id))])
                continue
            if isinstance(event, CommandInput) and event.name in commands.CONTACT_TOOLS:
                await self.contact_tool(event.name)
                continue
            try:
                outcome = await self.service.handle(self.contact, event, fetch=self.fetch)
            except StorageUnavailable:
                logger.error("database unavailable", exc_info=True)
                tr = get_translator(outcome.session.language)
                self.show([Reply("⚠️ " + tr.t("Your answer could not be saved just now. Please try again shortly."))])
                continue
            self.show(outcome.replies)

    async def contact_tool(self, name: str) -> None:
        """/reminders, /mydata, /colleague: as in Telegram (bot/contact_tools.py), for the console's contact."""
        if self.contact.console_key is not None:  # the contact as stored now (its language, its reminders)
            self.contact = (
                await self.service.storage.console_contact_if_exists(self.contact.console_key) or self.contact
            )
        reply = await contact_tools.run(
            name,
            self.service.storage,
            self.service.survey,
            self.contact,
            now=self.service.clock(),
            links=None,  # a link needs the bot's Telegram name, which the console does not have
        )
        self.show([reply])


async def run_console(
    survey: Survey,
    storage: Storage,
    files_dir: Path,
    *,
    city: str | None,
    country: str | None,
    key: str,
    language: str,
    lines: TextIO = sys.stdin,
    regional_defaults: Mapping[str, str] | None = None,
) -> None:
    """Bind the terminal user to a city's report and run the questionnaire."""
    service = IntakeService(survey, storage, files_dir)
    existing = await storage.console_contact_if_exists(key)
    if existing is not None and city is None:
        contact = existing
    else:
        city = city or _prompt("City: ", lines)
        country = country or _prompt("Country: ", lines)
        if not city or not country:
            sys.stderr.write("A city and a country are needed to start a report.\n")
            raise SystemExit(2)
        report = await storage.find_or_create_report(survey.id, city, country, None, service.clock())
        contact = await storage.console_contact(key, report.id, language, service.clock())
        await service.prefill(contact, city=city, country=country, joined=None)
    await Console(service, contact, regional_defaults=regional_defaults).run(lines)


def _prompt(label: str, lines: TextIO) -> str:
    sys.stdout.write(label)
    sys.stdout.flush()
    return lines.readline().strip()


def default_console_key() -> str:
    """Who is at the terminal: one report binding per operating-system user."""
    return "console:" + (os.environ.get("USER") or os.environ.get("USERNAME") or "default")
