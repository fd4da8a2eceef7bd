"""Translation catalogs: extract the template, merge it into every language, check them.

    python tools/catalogs.py extract   # locales/messages.pot from the code and the questionnaire
    python tools/catalogs.py update    # extract, then merge new strings into each locales/<lang>/.../messages.po
    python tools/catalogs.py check     # report missing or broken translations (exit 1 if any)
    python tools/catalogs.py init LANG # start a catalog for a new language or regional variant (ko, pt_PT)

`.po` files are the source of truth; nothing compiled is committed (the bot reads .po directly).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from babel.messages.pofile import read_po  # noqa: E402

from conversation.babel_extract import survey_messages  # noqa: E402
from conversation.i18n import LANGUAGES, LOCALES_DIR, PLURAL_FORMS, catalog_path, check_catalogs  # noqa: E402
from conversation.loader import load_survey  # noqa: E402

POT = LOCALES_DIR / "messages.pot"
KEYWORDS = ["-k", "t", "-k", "n:1,2"]


def pybabel(*args: str) -> None:
    """Run one pybabel command from the repository root."""
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], cwd=ROOT, check=True)


def extract() -> None:
    """Write the template from the code and the questionnaire."""
    pybabel(
        "extract",
        "-F",
        "babel.cfg",
        *KEYWORDS,
        "--no-wrap",
        "--sort-by-file",
        "--project",
        "gnlc-intake-bot",
        "--copyright-holder",
        "GNLC intake bot",
        "-o",
        str(POT),
        ".",
    )


def update() -> None:
    """Extract, then merge new and changed strings into every language's catalog."""
    extract()
    for lang in LANGUAGES:
        if lang == "en":
            continue
        if not catalog_path(lang).is_file():
            print(f"{lang}: no catalog yet; start it with `python tools/catalogs.py init {lang}`")
            continue
        pybabel(
            "update",
            "-i",
            str(POT),
            "-d",
            str(LOCALES_DIR),
            "-D",
            "messages",
            "-l",
            lang,
            "--no-wrap",
            "--no-fuzzy-matching",
            "--ignore-obsolete",
        )


def init(lang: str) -> None:
    """Start the catalog of a new language (or regional variant, e.g. pt_PT), with the project's plural rule."""
    if lang not in PLURAL_FORMS:
        sys.exit(f"add {lang!r} to LANGUAGES and PLURAL_FORMS in conversation/i18n.py first")
    extract()
    pybabel("init", "-i", str(POT), "-d", str(LOCALES_DIR), "-D", "messages", "-l", lang, "--no-wrap")
    # pybabel takes the plural rule from CLDR, which may differ from the gettext convention checked here.
    path = catalog_path(lang)
    count, expression = PLURAL_FORMS[lang]
    text = re.sub(
        r'^"Plural-Forms: [^"]*"$',
        lambda _match: f'"Plural-Forms: nplurals={count}; plural={expression};\\n"',
        path.read_text(encoding="utf-8"),
        count=1,
        flags=re.MULTILINE,
    )
    # The new catalog's plural entries are still empty: keep as many forms as the rule has.
    text = re.sub(r'^msgstr\[(\d+)\] ""\n', lambda m: m.group(0) if int(m.group(1)) < count else "", text, flags=re.M)
    path.write_text(text, encoding="utf-8")


def template_messages() -> list[str]:
    """Every msgid of the template (plural entries by their singular)."""
    with open(POT, "rb") as fh:
        catalog = read_po(fh)
    return [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id]


def check() -> int:
    """Print every problem; 1 when there is any."""
    required = [*survey_messages(load_survey()), *template_messages()]
    problems = check_catalogs(required_messages=required)
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        extract()
    elif command == "update":
        update()
    elif command == "init" and len(sys.argv) > 2:
        init(sys.argv[2])
    elif command == "check":
        sys.exit(check())
    else:
        print(__doc__)
        sys.exit(2)
