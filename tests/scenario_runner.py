"""Runs scenario files (inputs → expected prompts) through the pure engine and the renderer.

A scenario is YAML:

    name: …
    language: en                 # optional
    now: 2021-11-01T10:00:00Z    # optional; the engine's clock
    answers: {city_name: Hamburg} # optional starting answers
    steps:
      - type: "Hamburg"          # a typed message
      - press: "Yes"             # a button of the latest replies, by (the start of) its label
      - choice: core_team:yes    # a raw choice payload (an old keyboard pressed again)
      - command: skip            # /skip (use "edit q:core_team" for an argument)
      - file: {name: a.pdf, size: 1000}
      - contact: {phone: "+4940123456", own: true}
      - edit: {question: medium_term_progress, text: "…", previous: "…"}
        expect: ["substring", …]      # each must appear in the replies' plain text
        expect_not: ["substring", …]
        buttons: ["label", …]          # each must appear among the current buttons' labels
        asks: question_id             # the question now being asked
        rejected: name                # a Rejected effect for this reason was produced (see reason_name)
    final:
      answers: {question_id: value}   # exact stored values
      absent: [question_id]           # no stored answer
      status: submitted
      exported_absent: [question_id]  # stored but not exported (branch no longer applies)
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conversation import callbacks, engine
from conversation.i18n import get_translator
from conversation.model import Survey
from conversation.render import Renderer, Reply
from conversation.state import (
    Ask,
    Attachment,
    ChoiceInput,
    CommandInput,
    ContactInput,
    EditInput,
    Effect,
    FileInput,
    Input,
    Reason,
    Refusal,
    Rejected,
    Report,
    Session,
    StoreFile,
    TextInput,
    TooLong,
)


def reason_name(reason: Reason) -> str:
    """A refusal as scenario files name it: a `Refusal`'s value ("empty"), or the dataclass's name in
    snake case ("file_too_large"), a `TooLong` with its flags ("too_long_combined", "too_long_chars")."""
    if isinstance(reason, Refusal):
        return reason.value
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(reason).__name__).lower()
    if isinstance(reason, TooLong):
        name += "_combined" * reason.combined + "_chars" * reason.characters
    return name


_TAG = re.compile(r"</?[a-z][^>]*>")


def plain(replies: list[Reply]) -> str:
    """Replies as one plain text."""
    return "\n".join(html.unescape(_TAG.sub("", r.text)) for r in replies)


@dataclass
class Run:
    """A scenario's evolving state."""

    survey: Survey
    report: Report
    session: Session
    now: dt.datetime
    replies: list[Reply] = field(default_factory=list)
    effects: tuple[Effect, ...] = ()
    keyboard: list[Reply] = field(default_factory=list)  # newest replies that carried buttons, as in a chat

    def show(self, replies: list[Reply]) -> None:
        """Record replies; buttons stay pressable until newer buttons replace them."""
        self.replies = replies
        if any(r.buttons for r in replies):
            self.keyboard = replies

    def button(self, label: str) -> str:
        """The payload of the newest button whose label starts with (or contains) `label`."""
        buttons = [b for r in self.keyboard for row in r.buttons for b in row]
        for b in reversed(buttons):
            if b.label == label:
                return b.payload
        for b in reversed(buttons):
            if b.label.startswith(label) or label in b.label:
                return b.payload
        raise AssertionError(f"no button {label!r} among {[b.label for b in buttons]}")

    def feed(self, event: Input) -> None:
        """One input through engine and renderer; stored files are simulated as saved."""
        labels = get_translator(self.session.language)
        step = engine.advance(self.survey, self.report, self.session, event, now=self.now, labels=labels)
        self.report, self.session, self.effects = step.report, step.session, step.effects
        for effect in step.effects:
            if isinstance(effect, StoreFile):
                f = effect.file
                att = Attachment(
                    sha256=f"{len(self.report.attachments):064x}", name=f.name, mime_type=f.mime_type, size=f.size or 0
                )
                self.report = self.report.model_copy(update={"attachments": (*self.report.attachments, att)})
        tr = get_translator(self.session.language)
        self.show(Renderer(self.survey).render(step.effects, self.report, self.session, tr))


def to_input(run: Run, step: dict[str, Any]) -> Input:
    """The engine input a scenario step describes."""
    if "type" in step:
        return TextInput(str(step["type"]))
    if "press" in step:
        decoded = callbacks.decode(run.button(str(step["press"])))
        assert decoded is not None
        return decoded
    if "choice" in step:  # a raw button payload, e.g. an old keyboard pressed again
        qid, _, cid = str(step["choice"]).partition(":")
        return ChoiceInput(qid, cid)
    if "command" in step:
        name, _, arg = str(step["command"]).partition(" ")
        return CommandInput(name, arg or None)
    if "file" in step:
        f = step["file"]
        return FileInput(file_id=f["name"], name=f["name"], mime_type=f.get("mime"), size=f.get("size"))
    if "contact" in step:
        c = step["contact"]
        return ContactInput(str(c["phone"]), bool(c.get("own", True)))
    if "edit" in step:
        e = step["edit"]
        return EditInput(e["question"], e["text"], e.get("previous"))
    raise AssertionError(f"unknown step {step}")


def _value(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def run_scenario(path: Path, survey: Survey) -> Run:
    """Play a scenario file, asserting each expectation; returns the final state."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    now = spec.get("now", dt.datetime(2021, 11, 1, 10, 0, tzinfo=dt.UTC))
    if isinstance(now, str):
        now = dt.datetime.fromisoformat(now)
    report = engine.with_status(survey, Report(answers={k: _value(v) for k, v in (spec.get("answers") or {}).items()}))
    run = Run(survey, report, Session(language=spec.get("language", "en")), now)
    start = engine.start(survey, run.report, run.session)
    run.session = start.session
    run.show(Renderer(survey).render(start.effects, run.report, run.session, get_translator(run.session.language)))
    for number, step in enumerate(spec["steps"], 1):
        where = f"{path.name} step {number} {step}"
        run.feed(to_input(run, step))
        text = plain(run.replies)
        for wanted in step.get("expect", []):
            assert str(wanted) in text, f"{where}: expected {wanted!r} in:\n{text}"
        for unwanted in step.get("expect_not", []):
            assert str(unwanted) not in text, f"{where}: did not expect {unwanted!r} in:\n{text}"
        labels = " | ".join(b.label for r in run.keyboard for row in r.buttons for b in row)
        for wanted in step.get("buttons", []):
            assert str(wanted) in labels, f"{where}: expected a button {wanted!r} among {labels}"
        if "asks" in step:
            asked = [e.question_id for e in run.effects if isinstance(e, Ask)]
            assert asked and asked[-1] == step["asks"], f"{where}: asks {asked}, expected {step['asks']}\n{text}"
        if "rejected" in step:
            names = [reason_name(e.reason) for e in run.effects if isinstance(e, Rejected)]
            assert step["rejected"] in names, f"{where}: rejections {names}, expected {step['rejected']}"
    final = spec.get("final") or {}
    for qid, value in (final.get("answers") or {}).items():
        assert run.report.answers.get(qid) == _value(value), f"{path.name}: {qid} = {run.report.answers.get(qid)!r}"
    for qid in final.get("absent") or []:
        assert qid not in run.report.answers, f"{path.name}: {qid} should have no answer"
    if "status" in final:
        assert run.report.status == final["status"], f"{path.name}: status {run.report.status}"
    exported = engine.exported_answers(survey, run.report)
    for qid in final.get("exported_absent") or []:
        assert qid in run.report.answers and qid not in exported, f"{path.name}: {qid} kept but not exported"
    return run
