"""Making a rename durable: the one place that syncs a directory.

Rules of this module:
- POSIX keeps a directory entry apart from the file's data: after writing a file under a temporary
  name, syncing it and renaming it into place, the directory must be synced too, or a power loss
  can forget the rename.
- Best effort: some file systems cannot sync a directory (the file itself was synced already).
"""

from __future__ import annotations

import os
from pathlib import Path


def sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable, where the system allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
