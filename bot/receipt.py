"""A city's report as one standalone HTML page: the receipt a contact keeps or prints.

Rules of this module:
- Pure: the report, the translator and the time are passed in; no storage, no clock, no I/O.
- One self-contained UTF-8 document: inline CSS only, no scripts, no external resources,
  readable on screen and on paper.
- In the contact's language: every label goes through the translator with an English
  source string; dates through babel; Arabic pages are laid out right to left.
- Everything a contact wrote (answers, file names, city and country) is HTML-escaped;
  answers keep their line breaks (CSS `white-space: pre-wrap`).
- Only questions that apply are shown, each with its full answer or "(not answered)",
  matching what `/review` shows and what the exports contain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import unicodedata

from conversation import engine
from conversation.i18n import Translator
from conversation.model import Kind, Question, Survey
from conversation.render import esc, format_answer, format_size
from conversation.state import Report, ReportStatus

logger = logging.getLogger(__name__)

#: Letters NFKD does not take apart, spelled in ASCII for file names.
_ASCII_SPELLINGS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D",
     "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i"}
)  # fmt: skip
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_MAX_SLUG = 60

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans Arabic", "Noto Sans SC",
  "PingFang SC", "Microsoft YaHei", Arial, sans-serif; line-height: 1.5; color: #1a1a1a;
  max-width: 50rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.period { margin: 0 0 1rem; color: #444; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 1rem 0; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
h2 { font-size: 1.15rem; border-bottom: 2px solid #0b5ca8; padding-bottom: .2rem; margin: 2rem 0 .75rem;
  break-after: avoid; page-break-after: avoid; }
.q { margin: 0 0 1rem; }
.q h3 { font-size: 1rem; font-weight: 600; margin: 0 0 .25rem; break-after: avoid; page-break-after: avoid; }
.answer { white-space: pre-wrap; overflow-wrap: anywhere; unicode-bidi: plaintext; margin: 0; }
.unanswered { color: #666; font-style: italic; }
ul.files { margin: 0; padding-inline-start: 1.25rem; }
footer { margin-top: 2.5rem; border-top: 1px solid #bbb; padding-top: .5rem; font-size: .85rem; color: #444; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 11pt; }
  h2 { border-bottom-color: #000; }
}
""".strip()


def render_receipt(
    survey: Survey,
    city_name: str,
    country: str,
    report: Report,
    tr: Translator,
    *,
    generated_at: dt.datetime,
    tz: dt.tzinfo | str | None = None,
) -> bytes:
    """Render a city's report as a standalone HTML page in the translator's language.

    The page has the survey's title and reporting period, the city and country, the
    report's status and submission time, every section with each question that applies
    and its full answer (unanswered ones say so), and the supporting files with sizes.

    Args:
        survey: The survey the report answers.
        city_name: The city, as stored.
        country: The country, as stored.
        report: The report (answers, status, attachments, submission time).
        tr: The contact's translator.
        generated_at: When the receipt is made (shown on the page).
        tz: The time zone to show times in (tzinfo or IANA name); None for UTC.

    Returns:
        The HTML document, encoded as UTF-8.
    """
    _ = tr.t
    title = tr.gettext(survey.title)
    lang = tr.language
    direction = "rtl" if tr.is_rtl else "ltr"
    questions = engine.applicable(survey, report)
    answered = sum(1 for q in questions if engine.is_answered(survey, report, q))

    meta = [
        (_("Name of city"), esc(city_name)),
        (_("Country"), esc(country)),
        (_("Reporting period"), esc(tr.gettext(survey.reporting_period))),
        (_("Status"), esc(_status_label(report.status, tr))),
    ]
    if report.submitted_at is not None:
        meta.append((_("Submitted on"), esc(tr.format_datetime(report.submitted_at, tz, "long"))))
    meta.append(
        (
            _("Answers"),
            esc(
                tr.n(
                    "{count} of {total} questions answered.",
                    "{count} of {total} questions answered.",
                    answered,
                    total=len(questions),
                )
            ),
        )
    )
    meta.append((_("Receipt made on"), esc(tr.format_datetime(generated_at, tz, "long"))))

    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{esc(lang)}" dir="{direction}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)} — {esc(city_name)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="period">{esc(tr.gettext(survey.reporting_period))}</p>',
        '<dl class="meta">',
        *(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in meta),
        "</dl>",
        "</header>",
        "<main>",
    ]
    shown = {q.id for q in questions}
    for section in survey.sections:
        section_questions = [q for q in section.questions if q.id in shown]
        if not section_questions:
            continue
        parts.append("<section>")
        parts.append(f"<h2>{esc(tr.gettext(section.title))}</h2>")
        parts.extend(_question_block(survey, report, q, tr) for q in section_questions)
        parts.append("</section>")
    if survey.upload_question is None and report.attachments:
        parts.append("<section>")
        files_title = _("Supporting files")
        parts.append(f"<h2>{esc(files_title)}</h2>")
        parts.append(_files_list(report, tr))
        parts.append("</section>")
    stored_note = _("This is a copy of the report as stored by the intake bot.")
    write_to = _("Questions? Write to {email}.", email=survey.contact_email)
    parts.extend(
        [
            "</main>",
            "<footer>",
            f"<p>{esc(stored_note)}</p>",
            f"<p>{esc(write_to)}</p>",
            "</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )
    return "\n".join(parts).encode("utf-8")


def receipt_filename(city_name: str) -> str:
    """Return the receipt's file name, e.g. "gnlc-report-hamburg.html".

    The city is spelled in lower-case ASCII ("São Paulo" → "sao-paulo"); a name with
    no Latin letters (e.g. "北京") gets a short stable hash instead.

    Args:
        city_name: The city, as stored.

    Returns:
        An ASCII file name safe on every system.
    """
    spelled = unicodedata.normalize("NFKD", city_name.translate(_ASCII_SPELLINGS))
    ascii_name = spelled.encode("ascii", "ignore").decode("ascii").lower()
    slug = _SLUG_JUNK.sub("-", ascii_name).strip("-")[:_MAX_SLUG].rstrip("-")
    if not slug:
        slug = "city-" + hashlib.sha256(city_name.strip().casefold().encode("utf-8")).hexdigest()[:8]
    return f"gnlc-report-{slug}.html"


def _status_label(status: ReportStatus, tr: Translator) -> str:
    """The report's status in words."""
    _ = tr.t
    if status == ReportStatus.SUBMITTED:
        return _("Submitted")
    if status == ReportStatus.EXEMPT:
        return _("Exempt this cycle")
    return _("In progress")


def _question_block(survey: Survey, report: Report, q: Question, tr: Translator) -> str:
    """One question with its answer."""
    heading = f"<h3>{esc(tr.gettext(q.text))}</h3>"
    if q.kind == Kind.FILE_UPLOAD:
        body = _files_list(report, tr)
    else:
        css = "answer" if engine.is_answered(survey, report, q) else "answer unanswered"
        shown = format_answer(survey, report, q, report.answers.get(q.id), tr)  # escaped by render
        body = f'<p class="{css}" dir="auto">{shown}</p>'
    return f'<div class="q" id="q-{q.id}">\n{heading}\n{body}\n</div>'


def _files_list(report: Report, tr: Translator) -> str:
    """The supporting files with their sizes, or "no files"."""
    if not report.attachments:
        return f'<p class="answer unanswered">{esc(tr.t("no files"))}</p>'
    items = "\n".join(
        f'<li dir="auto">{esc(a.name)} ({esc(format_size(tr, a.size))})'
        + (f"<br>{esc(a.caption)}" if a.caption else "")
        + "</li>"
        for a in report.attachments
    )
    return f'<ul class="files">\n{items}\n</ul>'


__all__ = ["receipt_filename", "render_receipt"]
