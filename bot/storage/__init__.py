"""Durable storage of reports, contacts and sessions in one SQLite file.

`Storage` is the one facade the rest of the bot uses; each of its parts is one module of this
package and holds its own rules:
- `connection`: opening the file, pragmas, the transaction runner (`Connection._run`);
- `migrations`: the schema (`MIGRATIONS`, `SCHEMA_VERSION`);
- `reports`, `invitations`, `contacts`: cities' reports, invitation links, the people and admins;
- `answers`: answers, files and their audit trail (loading and saving a contact's step);
- `delivery`: the inbox of updates, handled updates, keyboards, answer messages, reminders;
- `rows`: the records returned (`City`, `Contact`, …) and the row helpers all parts share.

Rules of this package:
- Storage never reads the clock: every method that records or compares a time takes `now`
  (or an explicit moment) from its caller.
"""

from bot.storage.answers import Answers
from bot.storage.connection import StorageUnavailable
from bot.storage.contacts import Contacts
from bot.storage.delivery import ANSWER_MESSAGES_KEPT, Delivery
from bot.storage.invitations import Invitations, new_token
from bot.storage.migrations import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew
from bot.storage.reports import Reports
from bot.storage.rows import (
    City,
    Contact,
    ContactListing,
    ContactRemoved,
    FilesFull,
    Invitation,
    Purged,
    Redeemed,
    Redemption,
    ReportChanged,
    ReportClosed,
    ReportExport,
    TooManyLinks,
)

__all__ = [
    "ANSWER_MESSAGES_KEPT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "City",
    "Contact",
    "ContactListing",
    "ContactRemoved",
    "FilesFull",
    "Invitation",
    "Purged",
    "Redeemed",
    "Redemption",
    "ReportChanged",
    "ReportClosed",
    "ReportExport",
    "SchemaTooNew",
    "Storage",
    "StorageUnavailable",
    "TooManyLinks",
    "new_token",
]


class Storage(Reports, Invitations, Contacts, Answers, Delivery):
    """Async access to the bot's SQLite database (`Storage.open(path)`), one part per concern."""
