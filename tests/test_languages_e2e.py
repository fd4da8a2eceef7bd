"""Every language end to end: the whole questionnaire over the fake Bot API and in the console.

Each walk identifies the question on screen by its *translated* text, presses translated
buttons and types answers the way a contact of that language would (month names, yes/no
words, names in their script), then submits; the stored answers are language-independent.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.console import Console
from bot.service import IntakeService, utc_now
from bot.storage import Storage
from conversation.i18n import LANGUAGES, Translator, get_translator
from conversation.model import Kind, Question
from conversation.render import language_label
from conversation.state import ReportStatus
from tests.fakes.bot_api import BotMessage
from tests.telegram_harness import SURVEY, Harness, Person, running_bot

TIMEOUT = 15.0
PHONE = "+49 40 428231234"
ALL_VISITED = "You have been through every question."
SUBMITTED = "Thank you. Your report has been submitted to the UNESCO GNLC Coordination Team."
CONFIRM = "Submit the report to the UNESCO GNLC Coordination Team? After submission it can no longer be changed."
PICKED_CLUSTERS = ("Literacy", "Health and Well-being")


@dataclass(frozen=True)
class Lang:
    """How a contact of one language answers."""

    code: str
    telegram_code: str  # the Telegram client's language_code
    city: str
    country: str
    domain: str
    march_2016: str  # "March 2016" as typed in the language
    yes: str  # a typed yes
    no: str  # a typed no
    mayor: str
    contact: str
    position: str
    long: str  # a long-text answer


LANGS: dict[str, Lang] = {
    lang.code: lang
    for lang in (
        Lang("en", "en-GB", "Cork", "Ireland", "corkcity.ie", "March 2016", "yes", "no", "Mary Murphy",
             "Sean Walsh", "Head of Unit", "Twelve learning centres opened and 3,400 adults enrolled."),
        Lang("fr", "fr", "Lyon", "France", "lyon.fr", "mars 2016", "oui", "non", "Grégory Doucet",
             "Claire Martin", "Cheffe de service",
             "Douze centres d'apprentissage ont ouvert et 3 400 adultes se sont inscrits."),
        Lang("es", "es-419", "Medellín", "Colombia", "medellin.gov.co", "marzo de 2016", "sí", "no",
             "Daniel Quintero", "Lucía Gómez", "Jefa de unidad",
             "Se abrieron doce centros de aprendizaje y se inscribieron 3.400 adultos."),
        Lang("ar", "ar", "أسوان", "مصر", "aswan.gov.eg", "مارس 2016", "نعم", "لا", "أحمد محمود",
             "فاطمة علي", "رئيسة الوحدة", "افتتحنا اثني عشر مركزاً للتعلم وسجّل 3400 بالغ."),
        Lang("zh", "zh-hans", "北京", "中国", "beijing.gov.cn", "2016年3月", "是", "否", "张伟", "李娜", "处长",
             "开设了十二个学习中心，3400名成人报名参加。"),
        Lang("ru", "ru", "Гатчина", "Россия", "gatchina.ru", "март 2016", "да", "нет", "Анна Иванова",
             "Сергей Петров", "Начальник отдела", "Открыто двенадцать учебных центров, записались 3400 взрослых."),
        Lang("pt_BR", "pt-br", "Contagem", "Brasil", "contagem.mg.gov.br", "março de 2016", "sim", "não",
             "Marília Campos", "João Silva", "Chefe de divisão",
             "Foram abertos doze centros de aprendizagem e 3.400 adultos inscritos."),
        # A bare "pt" is European Portuguese unless the team sets PORTUGUESE_DEFAULT.
        Lang("pt_PT", "pt", "Braga", "Portugal", "cm-braga.pt", "março de 2016", "sim", "não",
             "Ricardo Rio", "Ana Sousa", "Chefe de divisão",
             "Foram abertos doze centros de aprendizagem e inscreveram-se 3400 adultos."),
        Lang("ko", "ko", "수원", "대한민국", "suwon.go.kr", "2016년 3월", "네", "아니요", "이재준", "김민지", "팀장",
             "열두 개의 학습 센터를 열었고 성인 3,400명이 등록했습니다."),
    )
}  # fmt: skip


def test_every_language_has_a_walk() -> None:
    assert set(LANGS) == set(LANGUAGES)


# ---------------------------------------------------------------- what the contact does


@dataclass(frozen=True)
class Press:
    label: str


@dataclass(frozen=True)
class Type:
    text: str


@dataclass(frozen=True)
class SendFile:
    pass


@dataclass(frozen=True)
class FinishFiles:
    pass


@dataclass(frozen=True)
class Finished:
    pass


Action = Press | Type | SendFile | FinishFiles | Finished


@dataclass
class Respondent:
    """Decides, from what is on screen, what a contact of `lang` does next."""

    lang: Lang
    asked: list[str] = field(default_factory=list)
    file_sent: bool = False
    repeats: int = 0

    @property
    def tr(self) -> Translator:
        return get_translator(self.lang.code)

    def label(self, english: str) -> str:
        return self.tr.gettext(english)

    def question_on_screen(self, text: str) -> Question | None:
        """The question whose translated text is a line of `text` (the newest one if several)."""
        lines = [line.strip() for line in text.splitlines()]
        best: tuple[int, Question] | None = None
        for q in SURVEY.questions:
            shown = self.tr.gettext(q.text).strip()
            if shown in lines:
                at = len(lines) - 1 - lines[::-1].index(shown)
                if best is None or at > best[0]:
                    best = (at, q)
        return None if best is None else best[1]

    def expected_month(self) -> str:
        """The strategy's adoption month, written as the bot itself writes months in this language."""
        return self.tr.format_month(2018, 5)

    def next(self, text: str, labels: list[str]) -> Action:
        _ = self.label
        if _(SUBMITTED) in text:
            return Finished()
        if _(CONFIRM) in text and _("Submit now") in labels:
            return Press(_("Submit now"))
        if _(ALL_VISITED) in text:
            return Type("/submit")
        if _("Begin") in labels:
            return Press(_("Begin"))
        if "📎" in text:  # a file was saved; nothing more to send
            return FinishFiles()
        if _("Next question") + " ➡" in labels:
            return Press(_("Next question") + " ➡")
        q = self.question_on_screen(text)
        if q is None:
            raise AssertionError(f"[{self.lang.code}] no question recognised in:\n{text}\nbuttons: {labels}")
        if not self.asked or self.asked[-1] != q.id:
            self.asked.append(q.id)
            self.repeats = 0
        else:
            self.repeats += 1
            if self.repeats > 4:  # an answer keeps being refused
                raise AssertionError(f"[{self.lang.code}] {q.id} asked again and again:\n{text}")
        return self.answer(q, labels)

    def answer(self, q: Question, labels: list[str]) -> Action:
        _ = self.label
        lang = self.lang
        match q.kind:
            case Kind.URL:
                return Type(f"www.{lang.domain}")
            case Kind.MONTH_YEAR:
                return Type(lang.march_2016 if q.id == "joined_gnlc" else self.expected_month())
            case Kind.PERSON_NAME:
                return Type(lang.mayor if q.id == "mayor_name" else lang.contact)
            case Kind.EMAIL:
                return Type(("mayor@" if q.id == "mayor_email" else "contact@") + lang.domain)
            case Kind.PHONE:
                return Type(PHONE)
            case Kind.SHORT_TEXT:
                return Type(lang.position)
            case Kind.GENDER:  # one pressed, one typed in the language
                return Press(_("Female")) if q.id == "mayor_gender" else Type(_("Male"))
            case Kind.YES_NO:
                if q.id == "strategy_adopted":
                    return Type(lang.yes)
                if q.id == "international_cooperation":
                    return Type(lang.no)
                return Press(_("No") if q.id == "celebratory_events" else _("Yes"))
            case Kind.LONG_TEXT:
                return Type(lang.long)
            case Kind.MULTI_CHOICE:
                for choice in PICKED_CLUSTERS:
                    if "▫️ " + _(choice) in labels:
                        return Press("▫️ " + _(choice))
                return Press(_("Done"))
            case Kind.SINGLE_CHOICE:
                return Press(_("Very relevant"))
            case Kind.FILE_UPLOAD:
                if not self.file_sent:
                    self.file_sent = True
                    return SendFile()
                return FinishFiles()
        raise AssertionError(f"unexpected question kind {q.kind}")


def expected_answers(lang: Lang) -> dict[str, object]:
    """The stored values: language-independent wherever the question allows."""
    long_ids = [
        q.id
        for q in SURVEY.questions
        if q.kind == Kind.LONG_TEXT
        and q.id not in {"core_team_why_not", "partnerships_description", "events_implementation",
                         "events_contribution", "monitoring_why_not"}
    ]  # fmt: skip
    return {
        "city_name": lang.city,
        "country": lang.country,
        "joined_gnlc": "2016-03",
        "mayor_name": lang.mayor,
        "mayor_email": f"mayor@{lang.domain}",
        "mayor_gender": "female",
        "contact_name": lang.contact,
        "contact_email": f"contact@{lang.domain}",
        "contact_phone": "+4940428231234",
        "contact_position": lang.position,
        "contact_gender": "male",
        "strategy_adopted": "yes",
        "strategy_adoption_date": "2018-05",
        "core_team": "yes",
        "international_cooperation": "no",
        "celebratory_events": "no",
        "monitoring": "yes",
        "clusters": ("health_wellbeing", "literacy"),
        "cluster_relevance": "very",
        "gnlc_activities": "yes",
        **{qid: lang.long for qid in long_ids},
    }


EXPECTED_ASKED = [
    q.id
    for q in SURVEY.questions
    if q.id not in {"city_name", "country", "core_team_why_not", "partnerships_description",
                    "events_implementation", "events_contribution", "monitoring_why_not"}
]  # fmt: skip


async def check_stored(storage: Storage, report_id: int, lang: Lang) -> None:
    answers = await storage.answers_of(report_id)
    for qid, value in expected_answers(lang).items():
        assert answers.get(qid) == value, (lang.code, qid, answers.get(qid))
    assert answers["city_website"] == f"https://www.{lang.domain}"
    city = await storage.get_report(report_id)
    assert city is not None
    assert city.status == ReportStatus.SUBMITTED
    assert lang.code in city.languages
    names = [a.name for a in await storage.attachments(report_id)]
    assert names == ["plan.pdf"]


# ---------------------------------------------------------------- over Telegram


def newest_keyboard(messages: list[BotMessage]) -> BotMessage | None:
    return next((m for m in reversed(messages) if m.buttons()), None)


def labels_of(message: BotMessage | None) -> list[str]:
    return [str(b.get("text", "")) for b in message.buttons()] if message else []


class TelegramRespondent:
    """A Telegram user of one language driving the bot by what it shows."""

    def __init__(self, h: Harness, person: Person, lang: Lang) -> None:
        self.h = h
        self.api = h.api
        self.person = person
        self.respondent = Respondent(lang)
        self.view: list[BotMessage] = []

    async def settle(self, mark: int) -> None:
        """Wait until the bot has answered the last action (a keyboard, a saved file, the thank-you)."""
        thanks = self.respondent.label(SUBMITTED)
        phone = SURVEY.question("contact_phone")
        assert phone is not None
        phone_question = self.respondent.label(phone.text)

        def answered() -> list[BotMessage] | None:
            msgs = self.api.messages_since(mark, self.person.user_id)
            if not msgs:
                return None
            text = "\n".join(m.shown_text or "" for m in msgs)
            if phone_question in text and "📱" not in text:
                return None  # the phone question is followed by its "share my number" keyboard: wait for it
            if msgs[-1].buttons() or "📎" in text or thanks in text:
                return msgs
            return None

        try:
            await self.api.async_wait_until(answered, TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"[{self.respondent.lang.code}] no answer; got {self.person.texts_since(mark)!r}"
            ) from None
        # The whole reply, not its first part: a question is followed by its "share my phone number"
        # message, which would otherwise land after the next mark.
        await self.h.quiet()
        self.view = self.api.messages_since(mark, self.person.user_id)

    async def tick(self, label: str) -> None:
        """Press a multiple-choice option: the question is updated in place."""
        message = newest_keyboard(self.view)
        assert message is not None
        mark = self.api.mark()
        self.api.press(self.person.user_id, message.message_id, button_text=label)
        ticked = "✅ " + label.removeprefix("▫️ ")

        def edited() -> BotMessage | None:
            current = next(m for m in self.api.messages(self.person.user_id) if m.message_id == message.message_id)
            return current if ticked in labels_of(current) else None

        await self.api.async_wait_for_call("answerCallbackQuery", since=mark, timeout=TIMEOUT)
        self.view = [await self.api.async_wait_until(edited, TIMEOUT)]

    async def do(self, action: Action) -> None:
        user_id = self.person.user_id
        mark = self.api.mark()
        match action:
            case Type(text):
                self.api.send_text(user_id, text, language_code=self.person.language_code)
            case Press(label) if label.startswith("▫️ "):
                await self.tick(label)
                return
            case Press(label):
                message = newest_keyboard(self.view)
                assert message is not None and label in labels_of(message), (label, labels_of(message))
                self.api.press(user_id, message.message_id, button_text=label)
            case SendFile():
                self.api.send_document(user_id, file_name="plan.pdf", content=b"%PDF-1.4 plan", file_size=13)
            case FinishFiles():
                done = self.respondent.label("Done")
                message, _exact = self.person.keyboard_message(done)
                self.api.press(user_id, message.message_id, button_text=done)
        await self.settle(mark)

    async def walk(self, token: str) -> None:
        mark = self.api.mark()
        self.api.send_text(self.person.user_id, f"/start {token}", language_code=self.person.language_code)
        await self.settle(mark)
        for _ in range(150):
            text = "\n".join(m.shown_text or "" for m in self.view)
            action = self.respondent.next(text, labels_of(newest_keyboard(self.view)))
            if isinstance(action, Finished):
                return
            await self.do(action)
        raise AssertionError(f"[{self.respondent.lang.code}] did not finish; asked {self.respondent.asked}")


@pytest.mark.parametrize("code", LANGUAGES)
async def test_whole_questionnaire_over_telegram_in_every_language(tmp_path: Path, code: str) -> None:
    lang = LANGS[code]
    tr = get_translator(code)
    # Flood control off: a scripted contact walks the whole questionnaire (~190 calls in one chat) in
    # milliseconds; at Telegram's ~1 message/s per chat each of the 7 runs would take minutes, and the
    # overall 30/s would still pace this one chat. The limits are exercised in tests/test_telegram_e2e.py.
    async with running_bot(
        tmp_path, api_settings={"rate_limit_per_chat_per_second": None, "rate_limit_per_second": None}
    ) as h:
        token = await h.invite(lang.city, lang.country)
        person = h.person(2000 + LANGUAGES.index(code), lang.telegram_code)
        driver = TelegramRespondent(h, person, lang)
        await driver.walk(token)
        first = h.api.messages(person.user_id)[0].shown_text or ""
        assert tr.t("This report is for {city}, {country}. If that is wrong, use /edit.",
                    city=lang.city, country=lang.country) in first  # fmt: skip
        assert driver.respondent.asked == EXPECTED_ASKED
        # Every question was shown in the language: no English text of a translated question appeared.
        shown = "\n".join(m.shown_text or "" for m in h.api.messages(person.user_id))
        for qid in EXPECTED_ASKED:
            q = SURVEY.question(qid)
            assert q is not None and tr.gettext(q.text) in shown
            if tr.gettext(q.text) != q.text:
                assert q.text not in shown, (code, qid)
        receipt = await h.api.async_wait_for_call("sendDocument", timeout=TIMEOUT)
        assert receipt.ok
        contact = await h.contact(person.user_id)
        assert contact.language == code
        await check_stored(h.storage, contact.report_id, lang)


# ---------------------------------------------------------------- in the console


BUTTON_RE = re.compile(r"\[(\d+)\] (.+?)(?=   \[\d+\] |$)", re.MULTILINE)


class ScriptedTerminal:
    """A `lines` object for `Console.run`: reads what was printed and types the next answer."""

    def __init__(self, out: io.StringIO, respondent: Respondent, document: Path) -> None:
        self.out = out
        self.respondent = respondent
        self.document = document
        self.seen = 0
        self.typed: list[str] = []
        self.screens: list[str] = []

    def readline(self) -> str:
        if len(self.typed) > 200:
            raise AssertionError(f"[{self.respondent.lang.code}] too many lines; asked {self.respondent.asked}")
        printed = self.out.getvalue()
        screen, self.seen = printed[self.seen :], len(printed)
        self.screens.append(screen)
        buttons: dict[str, str] = {label.strip(): number for number, label in BUTTON_RE.findall(screen)}
        action = self.respondent.next(screen, list(buttons))
        match action:
            case Finished():
                return ""
            case Press(label):
                line = buttons[label]
            case Type(text):
                line = text
            case SendFile():
                line = f"/file {self.document}"
            case FinishFiles():
                # After "File saved" no buttons are printed, so Done is typed, in the language.
                line = buttons.get(self.respondent.label("Done"), self.respondent.label("Done"))
        self.typed.append(line)
        return line + "\n"


async def console_walk(tmp_path: Path, lang: Lang) -> tuple[Storage, int, ScriptedTerminal]:
    storage = await Storage.open(tmp_path / "gnlc.sqlite3")
    service = IntakeService(SURVEY, storage, tmp_path / "files")
    city = await storage.find_or_create_report(SURVEY.id, lang.city, lang.country, None, utc_now())
    contact = await storage.console_contact(f"console:{lang.code}", city.id, lang.code, utc_now())
    await service.prefill(contact, city=lang.city, country=lang.country, joined=None)
    document = tmp_path / "plan.pdf"
    document.write_bytes(b"%PDF-1.4 plan")
    out = io.StringIO()
    terminal = ScriptedTerminal(out, Respondent(lang), document)
    await asyncio.wait_for(Console(service, contact, out).run(terminal), 60)  # type: ignore[arg-type]
    return storage, city.id, terminal


@pytest.mark.parametrize("code", LANGUAGES)
async def test_whole_questionnaire_in_the_console_in_every_language(tmp_path: Path, code: str) -> None:
    lang = LANGS[code]
    tr = get_translator(code)
    storage, report_id, terminal = await console_walk(tmp_path, lang)
    try:
        assert terminal.respondent.asked == EXPECTED_ASKED
        assert "[1] " + tr.gettext("Begin") in terminal.screens[0]
        # Typed in the language: the month, yes and no, the gender, and Done after the file.
        for typed in (lang.march_2016, lang.yes, lang.no, tr.gettext("Male"), tr.gettext("Done")):
            assert typed in terminal.typed, (typed, terminal.typed)
        assert tr.gettext(SUBMITTED) in terminal.screens[-1]
        await check_stored(storage, report_id, lang)
    finally:
        await storage.close()


# ---------------------------------------------------------------- switching language


async def test_switching_language_mid_report_keeps_answers_and_reasks(tmp_path: Path) -> None:
    en, fr, ar = (get_translator(code) for code in ("en", "fr", "ar"))
    async with running_bot(tmp_path) as h:
        user = h.person(2100, "en")
        await user.send(f"/start {await h.invite('Hamburg', 'Germany')}", "This report is for Hamburg")
        await user.press("Begin", "Official city website address")
        await user.send("www.hamburg.de", "Date of joining")
        await user.send("March 2016", "Mayor: name")
        await user.send("Peter Tschentscher", "Mayor: e-mail")
        contact = await h.contact(2100)
        before = dict(await h.storage.answers_of(contact.report_id))
        assert before["joined_gnlc"] == "2016-03"

        # English -> French: the current question is asked again, in French, with French buttons.
        await user.send("/language", "Choose your language")
        msgs = await user.press(
            language_label("fr"),
            fr.t("The language is now {language}.", language=language_label("fr")),
            fr.gettext("Mayor: e-mail"),
        )
        question = msgs[-1]
        assert fr.gettext("Mayor: e-mail") in (question.shown_text or "")
        assert en.gettext("Mayor: e-mail") not in (question.shown_text or "")
        assert "⬅ " + fr.t("Back") in [b["text"] for b in question.buttons()]
        assert dict(await h.storage.answers_of(contact.report_id)) == before
        await user.send("maire@hamburg.de", fr.gettext("Mayor: gender"))

        # Mid-way through a long answer (French) -> Arabic: the part already sent is kept, and the
        # contact is still offered to add to it.
        medium_term = SURVEY.question("medium_term_progress")
        assert medium_term is not None
        await user.send("/edit q:medium_term_progress", fr.gettext(medium_term.text))
        more = "Send more text to add to this answer, or continue to the next question."
        await user.send("Premier paragraphe en français.", fr.t(more))
        await user.send("/language", fr.t("Choose your language:"))
        msgs = await user.press(
            language_label("ar"),
            ar.t("The language is now {language}.", language=language_label("ar")),
            ar.t(more),  # still adding to that answer: the offer to add more, now in Arabic
        )
        assert ar.t("Next question") + " ➡" in [b["text"] for b in msgs[-1].buttons()]
        kept = (await h.storage.answers_of(contact.report_id)).get("medium_term_progress")
        assert kept == "Premier paragraphe en français."
        text = "\n".join(m.shown_text or "" for m in msgs)
        assert fr.t(more) not in text and fr.gettext(medium_term.text) not in text  # nothing in the old language
        # Back to the gender question, answered with the Arabic button.
        await user.send("/edit q:mayor_gender", ar.gettext("Mayor: gender"))
        await user.press(ar.gettext("Female"), ar.gettext("Contact person for the GNLC: name"))
        answers = dict(await h.storage.answers_of(contact.report_id))
        assert answers == {
            **before,
            "mayor_email": "maire@hamburg.de",
            "medium_term_progress": "Premier paragraphe en français.",
            "mayor_gender": "female",
        }
        review = await user.send("/review", ar.t("Your answers"))
        shown = "\n".join(m.shown_text or "" for m in review)
        assert "https://www.hamburg.de" in shown and "Peter Tschentscher" in shown
        assert ar.format_month(2016, 3) in shown  # the stored month, written in Arabic
        city = await h.storage.get_report(contact.report_id)
        assert city is not None and {"en", "fr", "ar"} <= set(city.languages)


async def test_switching_language_in_the_console(tmp_path: Path) -> None:
    zh = get_translator("zh")
    storage = await Storage.open(tmp_path / "gnlc.sqlite3")
    try:
        service = IntakeService(SURVEY, storage, tmp_path / "files")
        city = await storage.find_or_create_report(SURVEY.id, "Hamburg", "Germany", None, utc_now())
        contact = await storage.console_contact("console:switch", city.id, "en", utc_now())
        await service.prefill(contact, city="Hamburg", country="Germany", joined=None)
        out = io.StringIO()
        lines = io.StringIO("1\nwww.hamburg.de\n03/2016\n/language zh\n张伟\n")
        await Console(service, contact, out).run(lines)
        printed = out.getvalue()
        after_switch = printed.split(zh.t("The language is now {language}.", language=language_label("zh")), 1)
        assert len(after_switch) == 2, printed
        assert zh.gettext("Mayor: name") in after_switch[1]
        assert "Mayor: name" not in after_switch[1]
        assert zh.gettext("Mayor: e-mail") in after_switch[1]  # the typed name was taken, in Chinese
        answers = await storage.answers_of(city.id)
        assert answers["city_website"] == "https://www.hamburg.de"
        assert answers["joined_gnlc"] == "2016-03"
        assert answers["mayor_name"] == "张伟"
    finally:
        await storage.close()


LANGUAGE_MENU = [
    "English",
    "Français",
    "Español",
    "العربية",
    "中文",
    "Русский",
    "Português (Brasil)",
    "Português (Portugal)",
    "한국어",
]


async def test_language_menu_names_every_language_and_variant_in_itself(tmp_path: Path) -> None:
    pt_pt = get_translator("pt_PT")
    async with running_bot(tmp_path) as h:
        user = h.person(2200, "en")
        await user.send(f"/start {await h.invite('Braga', 'Portugal')}", "This report is for Braga")
        msgs = await user.send("/language", "Choose your language")
        assert [b["text"] for b in msgs[-1].buttons()] == LANGUAGE_MENU
        await user.press(
            "Português (Portugal)",
            pt_pt.t("The language is now {language}.", language="Português (Portugal)"),
        )
        assert (await h.contact(2200)).language == "pt_PT"
