"""Every catalog is complete for the bot and the questionnaire, and the template matches the code."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from conversation.babel_extract import survey_messages
from conversation.i18n import LANGUAGES, check_catalogs
from conversation.loader import load_survey

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "locales" / "messages.pot"


def msgids(path: Path) -> set[str]:
    with open(path, "rb") as fh:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}


def test_template_is_up_to_date_with_the_code(tmp_path):
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "t",
            "-k",
            "n:1,2",
            "-k",
            "pt:1c,2",
            "-k",
            "npt:1c,2,3",
            "--no-wrap",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    missing = msgids(fresh) - msgids(POT)
    assert not missing, f"run `python tools/catalogs.py update`; not in the template: {sorted(missing)[:5]}"


def test_every_catalog_complete_and_consistent():
    required = [*survey_messages(load_survey()), *msgids(POT)]
    assert check_catalogs(required_messages=required) == []


def test_every_language_has_a_catalog():
    for lang in LANGUAGES:
        assert (ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").is_file()
