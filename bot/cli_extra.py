"""Command-line commands for reminders and exports (loaded only when used)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from bot.settings import Settings
from bot.storage import Storage
from conversation.model import Survey

Command = Callable[[argparse.Namespace, Settings, Survey, Storage], Awaitable[int]]

COMMANDS: dict[str, Command] = {}
