"""A strict, in-process fake of the Telegram Bot API for end-to-end tests.

The fake is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a daemon thread, bound to
127.0.0.1 on an ephemeral port).  A real python-telegram-bot ``Application`` -- in the test
process or in a subprocess -- talks to it over HTTP exactly as it would talk to
``api.telegram.org``::

    with FakeBotAPI(token="123:ABC") as api:
        app = (
            Application.builder()
            .token("123:ABC")
            .base_url(api.base_url)            # http://127.0.0.1:PORT/bot
            .base_file_url(api.base_file_url)  # http://127.0.0.1:PORT/file/bot
            .build()
        )
        ...  # initialize/start the app, updater.start_polling(...)
        mark = api.mark()
        api.send_text(42, "/start")                       # enqueue an update for getUpdates
        [reply] = await api.async_wait_for_message(42, mark)
        assert reply.text == "Welcome!"

Design notes
------------
* All state lives behind one ``threading.Condition``; every public method is thread-safe.  The
  server never touches the test's event loop, so it works for in-process and subprocess bots.
* Validation follows the Bot API documentation and the behaviour of the reference server
  (tdlib/telegram-bot-api + TDLib's entity parsers): error codes and descriptions are the ones
  Telegram returns ("Bad Request: message is too long", "Forbidden: bot was blocked by the user",
  ...), parameters are read the way the reference server reads them (everything arrives as a
  string; JSON bodies are flattened first), methods are case-insensitive, a malformed token gives
  404 and a wrong token 401.
* Deliberately *stricter* than Telegram (the bot will also be checked against independent
  implementations, so the fake errs on the side of the documentation):

  - HTML: a bare ``&`` (or an unknown named entity such as ``&nbsp;``, or an entity without the
    terminating ``;``) is rejected with "can't parse entities".  Telegram itself keeps such text
    literally, but the documentation requires escaping.  ``api.html_strict_entities = False``
    restores Telegram's lenient behaviour.
  - Inline keyboard buttons must use *exactly one* action field (Telegram silently picks one).
  - Reply keyboard buttons may use at most one ``request_*``/``web_app`` field.

* As strict as Telegram *by default* (turn a limit off per test, saying why -- see tests/README.md):

  - flood control: a token bucket per chat (``rate_limit_per_chat_per_second`` = 1 message/s,
    bursts of ``rate_limit_per_chat_burst`` = 10) and one over all chats (``rate_limit_per_second``
    = 30/s, bursts of 30), counted over every sending and editing method and
    ``answerCallbackQuery``; a call over the limit is refused with 429 and
    ``parameters.retry_after`` (whole seconds until it would pass), as the Bot API documents;
  - callback queries expire ``callback_answer_timeout`` = 15 s after the press, and a second
    answer is refused ("query is too old and response timeout expired or query ID is invalid");
  - optionally (``lost_response_rate``, default 0) a call is carried out but its answer is lost:
    the connection closes without a response, as when a network path fails mid-request.

* Telegram behaviours that often surprise bots and are reproduced: ``editMessageText`` without
  ``reply_markup`` removes the inline keyboard; identical edits fail with "message is not
  modified"; only inline keyboards are echoed in returned messages; a whitespace-only text is
  "text must be non-empty"; updates whose type is not in ``allowed_updates`` are dropped when they
  are created; ``leaveChat`` produces a ``my_chat_member`` update; ``getMyCommands`` answers for
  exactly the given scope and language; a second ``answerCallbackQuery`` fails; a newer
  ``getUpdates`` terminates an older one with 409; ``close`` answers 429 during the first 10 minutes.
* Not modelled: the ``Markdown`` and ``MarkdownV2`` parse modes (the bot sends HTML only; they are
  refused with a 400 that names the fake, so a bot that starts using them fails its tests at once,
  rather than passing on text Telegram would format or refuse), link previews, message effects other than a
  few known ids, forum topics, business connections, payments, inline mode, webhooks delivery
  (``setWebhook`` only records the URL and blocks ``getUpdates`` like Telegram does).

Blocking vs. async helpers
--------------------------
``wait_until``/``wait_for_message`` block the calling thread -- use them only when the bot runs
in another thread or process.  With an in-process PTB application use the ``async_*`` variants,
which poll with ``asyncio.sleep`` and so let the bot make progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import math
import mimetypes
import random
import re
import socket
import threading
import time
import traceback
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, NamedTuple, TypeVar

__all__ = [
    "DEFAULT_ALLOWED_UPDATES",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_CAPTION_LENGTH",
    "MAX_DOWNLOAD_FILE_SIZE",
    "MAX_MESSAGE_LENGTH",
    "ApiError",
    "BotMessage",
    "Call",
    "CallRecord",
    "EntityParseError",
    "FakeBotAPI",
    "UploadedFile",
    "parse_html",
    "utf16_len",
]

# --------------------------------------------------------------------------------------------
# Limits (https://core.telegram.org/bots/api and the reference server)
# --------------------------------------------------------------------------------------------

MAX_MESSAGE_LENGTH = 4096  # characters (code points) after entity parsing and trimming
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_DOWNLOAD_FILE_SIZE = 20 * 1024 * 1024  # getFile refuses larger files
MAX_UPLOAD_FILE_SIZE = 50 * 1024 * 1024  # multipart uploads
MAX_REQUEST_BODY = MAX_UPLOAD_FILE_SIZE + 1024 * 1024
MAX_INLINE_BUTTONS = 100
MAX_COMMANDS = 100
MAX_DESCRIPTION_LENGTH = 512
MAX_SHORT_DESCRIPTION_LENGTH = 120
MAX_BOT_NAME_LENGTH = 64
LONG_POLL_MAX_TIMEOUT = 50

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
#: What Telegram delivers when ``allowed_updates`` was never set (or set to ``[]``).
DEFAULT_ALLOWED_UPDATES = frozenset(ALL_UPDATE_TYPES) - {"chat_member", "message_reaction", "message_reaction_count"}

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# A few real message effect ids (private chats only); anything else is EFFECT_ID_INVALID.
KNOWN_MESSAGE_EFFECTS = frozenset(
    {
        "5104841245755180586",
        "5107584321108051014",
        "5104858069142078462",
        "5044134455711629726",
        "5046509860389126442",
        "5046589136895476101",
    }
)
# Parameters whose value is a JSON-serialized object; decoded in ``CallRecord.params``.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "commands",
        "scope",
        "allowed_updates",
        "media",
        "message_ids",
        "menu_button",
        "options",
        "question_entities",
        "explanation_entities",
    }
)
_DEFAULT_MIME = {"voice": "audio/ogg", "audio": "audio/mpeg", "video": "video/mp4", "animation": "video/mp4"}
FAULT_KINDS = ("429", "500", "502", "drop", "drop_after", "timeout")
_FAULT_RESPONSES = ("429", "500", "502")
_TOKEN_RE = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{1,100}")
_BOT_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANG_RE = re.compile(r"[a-z]{2}")
_SPACES = " \t\r\n\x0b\x0c"
_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered to the bot as ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class EntityParseError(ValueError):
    """Raised by the HTML parser; the message is TDLib's wording."""


def _bad(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


def _forbidden(message: str) -> ApiError:
    return ApiError(403, f"Forbidden: {message}")


def _too_many(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


# --------------------------------------------------------------------------------------------
# Text helpers: UTF-16 lengths, URLs, entities
# --------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of MessageEntity offsets)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _w16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _utf16_to_index(text: str, offset: int) -> int:
    """Code-point index of the UTF-16 ``offset`` in ``text`` (clamped to the end)."""
    units = 0
    for index, ch in enumerate(text):
        if units >= offset:
            return index
        units += _w16(ch)
    return len(text)


_HOST_LABEL_RE = re.compile(r"[0-9A-Za-z\u00a1-\uffff](?:[0-9A-Za-z\u00a1-\uffff-]{0,61}[0-9A-Za-z\u00a1-\uffff])?")
_IPV4_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _url_problem(url: str, *, https_only: bool = False) -> str | None:
    """Why Telegram would reject ``url`` (TDLib wording), or ``None`` if it is acceptable."""
    if not url:
        return "URL host is empty"
    lowered = url.lower()
    if "://" in url:
        scheme, rest = url.split("://", 1)
        scheme = scheme.lower()
        if not re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme):
            return "Wrong HTTP URL"
        if scheme in ("tg", "ton") and not https_only:
            return None if rest else "Wrong URL"
        if scheme not in ("http", "https"):
            return "Unsupported URL protocol"
        if https_only and scheme != "https":
            return "Only HTTPS links are allowed"
    else:
        if lowered.startswith(("tg:", "ton:")) and not https_only:
            return None
        if https_only:
            return "Only HTTPS links are allowed"
        rest = url
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
        return None if host else "URL host is empty"
    host = host.split(":", 1)[0]
    if not host:
        return "URL host is empty"
    if _IPV4_RE.fullmatch(host):
        return None
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        return "Wrong HTTP URL"
    tld = labels[-1]
    if not (tld.isalpha() or tld.lower().startswith("xn--")) or len(tld) < 2:
        return "Wrong HTTP URL"
    return None


def _checked_link(url: str) -> str | None:
    """TDLib's ``get_checked_link``: the normalized link, or ``None`` if it is not a valid link."""
    if _url_problem(url) is not None:
        return None
    if "://" not in url and not url.lower().startswith(("tg:", "ton:")):
        return "http://" + url
    return url


def _tg_user_link(url: str) -> int | None:
    match = re.fullmatch(r"tg://user\?id=(\d{1,19})", url.strip(), flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


_ENTITY_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}


def _sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entities.sort(key=lambda e: (e["offset"], -e["length"], _ENTITY_PRIORITY.get(e["type"], 50)))
    return entities


def _make_entity(kind: str, offset: int, length: int, argument: str = "") -> dict[str, Any]:
    """Convert a TDLib entity (kind + argument) into a Bot API ``MessageEntity`` dict."""
    names = {
        "Bold": "bold",
        "Italic": "italic",
        "Underline": "underline",
        "Strikethrough": "strikethrough",
        "Spoiler": "spoiler",
        "Code": "code",
        "Pre": "pre",
        "PreCode": "pre",
        "TextUrl": "text_link",
        "MentionName": "text_mention",
        "CustomEmoji": "custom_emoji",
        "BlockQuote": "blockquote",
        "ExpandableBlockQuote": "expandable_blockquote",
    }
    entity: dict[str, Any] = {"type": names[kind], "offset": offset, "length": length}
    if kind == "PreCode":
        entity["language"] = argument
    elif kind == "TextUrl":
        entity["url"] = argument
    elif kind == "MentionName":
        entity["user"] = {"id": int(argument), "is_bot": False, "first_name": ""}
    elif kind == "CustomEmoji":
        entity["custom_emoji_id"] = argument
    return entity


def _link_entity(offset: int, length: int, url: str) -> dict[str, Any] | None:
    user_id = _tg_user_link(url)
    if user_id is not None:
        return _make_entity("MentionName", offset, length, str(user_id))
    checked = _checked_link(url)
    return None if checked is None else _make_entity("TextUrl", offset, length, checked)


# --------------------------------------------------------------------------------------------
# HTML parse mode (port of TDLib's parse_html)
# --------------------------------------------------------------------------------------------

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(text: str, pos: int, *, strict: bool) -> tuple[str, int] | None:
    """Decode the entity starting at ``text[pos] == '&'``; returns (character, next position)."""
    n = len(text)
    end = pos + 1
    code = 0
    if end < n and text[end] == "#":
        end += 1
        digits_start = end
        if end < n and text[end] == "x":
            end += 1
            digits_start = end
            while end < n and text[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and text[end].isascii() and text[end].isdigit():
                code = code * 10 + int(text[end])
                end += 1
        if end == digits_start or code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        name = text[pos + 1 : end]
        if name not in _HTML_NAMED_ENTITIES:
            return None
        char = _HTML_NAMED_ENTITIES[name]
    if end < n and text[end] == ";":
        return char, end + 1
    if strict:
        return None
    return char, end


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """Parse Bot API "HTML style" text; returns (plain text, entities with UTF-16 offsets).

    Raises :class:`EntityParseError` with TDLib's message (without the "can't parse entities: "
    prefix) on malformed input.  With ``strict_entities`` (the default) a ``&`` that does not start
    one of the supported entities is an error (Telegram would keep it literally).
    """
    n = len(text)
    out: list[str] = []
    utf16 = 0
    entities: list[dict[str, Any]] = []
    # open tags: [tag_name, argument, utf16_offset, index into out]
    stack: list[list[Any]] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_html_entity(text, i, strict=strict_entities)
            if decoded is not None:
                char, i = decoded
                out.append(char)
                utf16 += _w16(char)
                continue
            if strict_entities:
                raise EntityParseError(
                    f'Unescaped "&" at byte offset {_byte_offset(text, i)}; only &lt;, &gt;, &amp;, &quot; '
                    'and numeric character references terminated by ";" are supported'
                )
        if c != "<":
            out.append(c)
            utf16 += _w16(c)
            i += 1
            continue

        begin = i
        i += 1
        if i >= n or text[i] != "/":
            # start tag
            while i < n and text[i] not in _SPACES and text[i] != ">":
                i += 1
            if i >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
            argument = ""
            expandable = False
            while i < n and text[i] != ">":
                while i < n and text[i] in _SPACES:
                    i += 1
                if i < n and text[i] == ">":
                    break
                attr_begin = i
                while i < n and text[i] not in _SPACES and text[i] not in "=>":
                    i += 1
                attr_name = text[attr_begin:i]
                if not attr_name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                while i < n and text[i] in _SPACES:
                    i += 1
                if i >= n or text[i] != "=":
                    if tag == "blockquote" and attr_name.lower() == "expandable":
                        expandable = True
                        continue
                    raise EntityParseError(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                        f"at byte offset {_byte_offset(text, begin)}"
                    )
                i += 1
                while i < n and text[i] in _SPACES:
                    i += 1
                if i >= n:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
                if text[i] not in "'\"":
                    token_begin = i
                    while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i < n and text[i] not in _SPACES and text[i] != ">":
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_html_entity(text, i, strict=False)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
                )
            if tag == "blockquote" and expandable:
                argument = "expandable"
            stack.append([tag, argument, utf16, len(out)])
            i += 1  # skip '>'
            continue

        # end tag
        if not stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        while i < n and text[i] not in _SPACES and text[i] != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while i < n and text[i] in _SPACES:
            i += 1
        if i >= n or text[i] != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        i += 1
        tag, argument, offset, out_begin = stack[-1]
        if end_tag and end_tag != tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, expected "</{tag}>", '
                f'found "</{end_tag}>"'
            )
        stack.pop()
        if utf16 <= offset:
            continue
        length = utf16 - offset
        if tag in ("i", "em"):
            entities.append(_make_entity("Italic", offset, length))
        elif tag in ("b", "strong"):
            entities.append(_make_entity("Bold", offset, length))
        elif tag in ("s", "strike", "del"):
            entities.append(_make_entity("Strikethrough", offset, length))
        elif tag in ("u", "ins"):
            entities.append(_make_entity("Underline", offset, length))
        elif tag in ("tg-spoiler", "span"):
            entities.append(_make_entity("Spoiler", offset, length))
        elif tag == "tg-emoji":
            if not re.fullmatch(r"[0-9]{1,19}", argument) or int(argument) == 0 or int(argument) >= 2**63:
                raise EntityParseError("Invalid custom emoji identifier specified")
            entities.append(_make_entity("CustomEmoji", offset, length, str(int(argument))))
        elif tag == "a":
            url = argument or "".join(out[out_begin:])
            link = _link_entity(offset, length, url)
            if link is not None:
                entities.append(link)
        elif tag == "pre":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "code"
                and last["offset"] == offset
                and last["length"] == length
                and last.get("_language")
            ):
                last["type"] = "pre"
                last["language"] = last.pop("_language")
            else:
                entities.append(_make_entity("Pre", offset, length))
        elif tag == "code":
            last = entities[-1] if entities else None
            if (
                last is not None
                and last["type"] == "pre"
                and "language" not in last
                and last["offset"] == offset
                and last["length"] == length
                and argument
            ):
                last["language"] = argument
            else:
                entity = _make_entity("Code", offset, length)
                if argument:
                    entity["_language"] = argument
                entities.append(entity)
        elif tag == "blockquote":
            kind = "ExpandableBlockQuote" if argument == "expandable" else "BlockQuote"
            entities.append(_make_entity(kind, offset, length))
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        entity.pop("_language", None)
    result = "".join(out)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in result):
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched "
            "surrogate code units"
        )
    return result, _sort_entities(entities)


# --------------------------------------------------------------------------------------------
# Automatic entities (bot commands, mentions, hashtags, URLs, e-mails)
# --------------------------------------------------------------------------------------------

_AUTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")),
    ("mention", re.compile(r"(?<!\w)@[A-Za-z0-9_]{2,32}(?!\w)")),
    ("hashtag", re.compile(r"(?<!\w)#\w*[^\W\d]\w*")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?!\w)")),
    (
        "url",
        re.compile(
            r"(?<![\w@])(?:https?://)?(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?::\d+)?(?:[/?#](?:\S*[^\s.,;:!?'\x22)\]])?)?",
            re.ASCII,
        ),
    ),
)


_AUTO_TYPES = frozenset(
    {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bank_card_number"}
)


# Telegram only links bare domains with a real top-level domain ("plan.pdf" is not a link).
# fmt: off
_COMMON_TLDS = frozenset({
    "com", "org", "net", "edu", "gov", "int", "info", "io", "me", "app", "dev", "biz", "eu", "de", "fr", "es",
    "it", "pt", "nl", "be", "ch", "at", "uk", "ru", "ua", "pl", "cz", "se", "no", "fi", "dk", "ie", "gr", "tr",
    "cn", "jp", "kr", "in", "br", "ar", "mx", "ca", "us", "au", "nz", "za", "ng", "ke", "eg", "ma", "sa", "ae",
    "il", "ir", "pk", "bd", "id", "my", "sg", "th", "vn", "ph", "org.uk",
})
# fmt: on


def _looks_like_link(candidate: str) -> bool:
    if _url_problem(candidate) is not None:
        return False
    if re.match(r"https?://", candidate, flags=re.IGNORECASE):
        return True
    host = re.split(r"[/:?#]", candidate, maxsplit=1)[0]
    return host.rsplit(".", 1)[-1].lower() in _COMMON_TLDS


def _auto_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram detects by itself (simplified)."""
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if kind == "url" and not _looks_like_link(match.group(0)):
                continue
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            offset = utf16_len(text[:start])
            found.append({"type": kind, "offset": offset, "length": utf16_len(text[start:end])})
    return _sort_entities(found)


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart/form-data request."""

    name: str
    filename: str
    content_type: str
    data: bytes


class Call(NamedTuple):
    """``(method, params)`` of one request; ``method`` uses the canonical Bot API spelling."""

    method: str
    params: dict[str, Any]


@dataclass
class CallRecord:
    """Everything known about one Bot API request (see ``FakeBotAPI.call_records``).

    ``params`` holds strings as received (the Bot API reads every parameter as a string; JSON
    bodies are flattened first), except JSON-serialized parameters such as ``reply_markup`` or
    ``entities``, which are decoded when they are valid JSON.  Uploaded files are in ``files``.
    """

    index: int
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    time: float
    status: int | None = None
    ok: bool | None = None
    result: Any = None
    error: str | None = None
    fault: str | None = None

    def int_param(self, name: str) -> int | None:
        value = self.params.get(name)
        try:
            return None if value is None else int(value)
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class BotMessage:
    """Snapshot of a message the bot sent (``FakeBotAPI.messages``)."""

    chat_id: int
    message_id: int
    kind: str  # "text", "document", "photo", "voice", ...
    text: str | None
    caption: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None  # the markup as last set by the bot (any keyboard kind)
    parse_mode: str | None
    edited: bool
    edit_count: int
    deleted: bool
    date: int
    reply_to_message_id: int | None
    document: dict[str, Any] | None
    content: bytes | None  # uploaded bytes for media sent by the bot
    raw: dict[str, Any]  # the Message object as Telegram would return it now
    seq: int  # index of the call record that created the message

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]] | None:
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else None

    def buttons(self) -> list[dict[str, Any]]:
        """Flat list of the buttons of the inline or reply keyboard (reply buttons as dicts)."""
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [btn if isinstance(btn, dict) else {"text": btn} for row in rows for btn in row]

    def callback_data_for(self, button_text: str) -> str:
        for button in self.buttons():
            if button.get("text") == button_text and "callback_data" in button:
                return str(button["callback_data"])
        raise KeyError(f"no callback button {button_text!r} in {[b.get('text') for b in self.buttons()]}")

    @property
    def shown_text(self) -> str | None:
        return self.text if self.text is not None else self.caption


# --------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------


@dataclass
class _StoredMessage:
    chat_id: int
    message_id: int
    from_bot: bool
    data: dict[str, Any]
    seq: int
    kind: str
    sent_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    edited: bool = False
    edit_count: int = 0
    deleted: bool = False
    content: bytes | None = None


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    blocked: bool = False
    bot_is_member: bool = True
    next_message_id: int = 1
    messages: dict[int, _StoredMessage] = field(default_factory=dict)
    reply_keyboard: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name", "last_name"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    content: bytes
    file_size: int
    kind: str
    file_name: str | None = None
    mime_type: str | None = None
    file_path: str | None = None


@dataclass
class _CallbackQuery:
    id: str
    user_id: int
    chat_id: int | None
    message_id: int | None
    data: str | None
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None
    answered_after: float | None = None  # seconds from the press to the accepted answer


@dataclass
class _Bucket:
    """A token bucket: `take` spends one token, or says how long until one is there."""

    tokens: float | None = None  # None: full
    stamp: float = 0.0

    def wait(self, rate: float, capacity: float, now: float) -> float:
        """Seconds until a token is available (0: one is), after refilling."""
        held = capacity if self.tokens is None else min(capacity, self.tokens + (now - self.stamp) * rate)
        self.tokens, self.stamp = held, now
        return 0.0 if held >= 1 else (1 - held) / rate

    def take(self) -> None:
        assert self.tokens is not None
        self.tokens -= 1


@dataclass
class _Fault:
    kind: str
    method: str | None
    times: int
    retry_after: int = 1
    error: tuple[int, str] | None = None


@dataclass
class _Outcome:
    status: int
    body: bytes
    content_type: str = "application/json"
    drop: bool = False
    delay: float = 0.0


@dataclass
class _Req:
    method: str
    params: dict[str, str]
    files: dict[str, UploadedFile]
    record: CallRecord


class _Result(NamedTuple):
    value: Any
    description: str | None = None


# --------------------------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------------------------


def _flatten_json(obj: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in obj.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            params[key] = json.dumps(value)
        elif isinstance(value, str):
            params[key] = value
        else:
            params[key] = json.dumps(value, ensure_ascii=False)
    return params


_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def _header_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for match in _PARAM_RE.finditer(value):
        name = match.group(1).lower()
        raw = match.group(2)
        param = re.sub(r"\\(.)", r"\1", raw) if raw is not None else match.group(3).strip()
        if name.endswith("*"):
            charset, _, encoded = param.partition("''")
            with contextlib.suppress(LookupError, ValueError):
                params[name[:-1]] = urllib.parse.unquote(encoded, encoding=charset or "utf-8")
            continue
        params.setdefault(name, param)
    return params


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    boundary = _header_params(content_type).get("boundary")
    if not boundary:
        raise _bad("can't parse multipart/form-data request: boundary is missing")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    params: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    chunks = (b"\r\n" + body).split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.lstrip(b" \t")
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, _sep, data = chunk.partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            continue
        if "filename" in disposition:
            files[name] = UploadedFile(
                name=name,
                filename=disposition["filename"],
                content_type=headers.get("content-type", "application/octet-stream").split(";")[0].strip(),
                data=data,
            )
        else:
            charset = _header_params(headers.get("content-type", "")).get("charset", "utf-8")
            try:
                params[name] = data.decode(charset, "replace")
            except LookupError:
                params[name] = data.decode("utf-8", "replace")
    return params, files


def _parse_body(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    mime = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}, {}
    if mime == "application/json":
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _bad("can't parse JSON object") from None
        if not isinstance(obj, dict):
            raise _bad("can't parse JSON object")
        return _flatten_json(obj), {}
    if mime == "application/x-www-form-urlencoded":
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        return dict(pairs), {}
    if mime == "multipart/form-data":
        return _parse_multipart(content_type, body)
    raise _bad(f"unsupported Content-Type {mime!r}")


def _decode_for_record(params: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for key, value in params.items():
        if key in JSON_PARAMS:
            try:
                decoded[key] = json.loads(value)
                continue
            except ValueError:
                pass
        decoded[key] = value
    return decoded


# --------------------------------------------------------------------------------------------
# Parameter readers (the reference server's semantics)
# --------------------------------------------------------------------------------------------


def _arg(params: dict[str, str], name: str) -> str:
    return params.get(name, "")


def _leading_int(value: str) -> int:
    """TDLib's ``to_integer``: optional sign and leading digits; anything else reads as 0."""
    match = re.match(r"\s*([+-]?)(\d+)", value)
    if not match:
        return 0
    number = int(match.group(2))
    return -number if match.group(1) == "-" else number


def _int_arg(params: dict[str, str], name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = params.get(name, "")
    value = default if raw == "" else _leading_int(raw)
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value


def _bool_arg(params: dict[str, str], name: str) -> bool:
    return params.get(name, "").strip().lower() in ("true", "1")


def _json_arg(params: dict[str, str], name: str, error: str) -> Any:
    raw = params.get(name, "")
    if raw == "":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise _bad(error) from None


def _field_label(name: str, prefix: str) -> str:
    return f'{prefix}Field "{name}"' if prefix else f'field "{name}"'


def _missing_field(name: str, prefix: str) -> ApiError:
    return _bad(f'{prefix}Can\'t find field "{name}"' if prefix else f'can\'t find field "{name}"')


def _field_str(obj: dict[str, Any], name: str, prefix: str, *, required: bool = False) -> str | None:
    if name not in obj:
        if required:
            raise _missing_field(name, prefix)
        return None
    value = obj[name]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise _bad(f"{_field_label(name, prefix)} must be of type String")


def _field_bool(obj: dict[str, Any], name: str, prefix: str) -> bool | None:
    if name not in obj:
        return None
    value = obj[name]
    if not isinstance(value, bool):
        raise _bad(f"{_field_label(name, prefix)} must be of type Boolean")
    return value


def _field_int(obj: dict[str, Any], name: str, prefix: str, *, required: bool = False) -> int | None:
    if name not in obj:
        if required:
            raise _missing_field(name, prefix)
        return None
    value = obj[name]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        return int(value)
    raise _bad(f"{_field_label(name, prefix)} must be a valid Number")


def _deep(value: T) -> T:
    return copy.deepcopy(value)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's listen backlog of 5 resets connections when a bot opens its pool in a burst
    # (a restarted bot with 50 chats waiting); Telegram does not. A reset after the request went out
    # is an answer lost, which the bot rightly does not repeat: only lost_response_rate makes those.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], api: FakeBotAPI) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.server.api._register_connection(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.api._unregister_connection(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_REQUEST_BODY:
                    return None
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        api = self.server.api
        body = self._read_body()
        if body is None:
            self.close_connection = True
            payload = ApiError(413, "Request Entity Too Large").payload()
            outcome = _Outcome(413, json.dumps(payload).encode())
        else:
            outcome = api._handle_http(self.path, self.headers.get("Content-Type", ""), body)
        if outcome.delay > 0:
            api._sleep(outcome.delay)
        if outcome.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(outcome.status)
            self.send_header("Content-Type", outcome.content_type)
            self.send_header("Content-Length", str(len(outcome.body)))
            self.end_headers()
            self.wfile.write(outcome.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class FakeBotAPI:
    """Fake Telegram Bot API server; see the module docstring for an overview.

    Configuration attributes (may be changed at any time, also while the bot runs):

    ``latency``                 seconds added to every request.
    ``method_latency``          extra seconds for some methods, e.g. ``{"getFile": 2.0}``.
    ``fail_rate``               probability (0..1) that a request gets a random fault.
    ``fault_weights``           relative weights of the random fault kinds: ``"429"`` (retry_after
                                ``fault_retry_after``), ``"500"``, ``"502"`` (nginx HTML page),
                                ``"drop"`` (socket closed without a response, request not executed),
                                ``"drop_after"`` (executed, then dropped; weight 0 by default) and
                                ``"timeout"`` (executed, response delayed by ``timeout_delay``;
                                only used when ``timeout_delay`` is set -- default off).
    ``fault_methods``           methods subject to random faults; ``None`` = all but ``getUpdates``.
    ``rate_limit_per_second``   global flood control (token bucket) over ``rate_limited_methods``:
                                30/s by default, ``None`` = off.
    ``rate_limit_burst``        calls the global bucket holds (default ``None`` = one second's worth).
    ``rate_limit_per_chat_per_second``  the same per chat: 1/s by default (Telegram: "avoid sending
                                more than one message per second" in a chat), ``None`` = off.
    ``rate_limit_per_chat_burst``  calls a chat's bucket holds (default 10: short bursts pass).
    ``lost_response_rate``      probability that a call of ``lost_response_methods`` (default: the
                                rate-limited ones) is carried out and its answer lost (default 0).
    ``html_strict_entities``    reject bare ``&`` in HTML (default ``True``; see module docstring).
    ``callback_answer_timeout`` seconds after the press when a callback query can no longer be
                                answered (default 15, ``None`` = never).

    Every one of these can also be given to the constructor as a keyword.
    ``strict_chats``            unknown chat ids give "chat not found" (default ``True``).
    ``emulate_poll_throttling`` the reference server's getUpdates quirks: a repeated offset within
                                3 s waits at least 3 s (slows PTB's shutdown), within 0.5 s limit=1.
    """

    def __init__(
        self,
        token: str = "123456789:TEST-token_for_fake",
        *,
        bot_username: str = "gnlc_test_bot",
        bot_first_name: str = "GNLC Test Bot",
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        first_update_id: int = 100_000,
        **settings: Any,
    ) -> None:
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError(f"not a valid bot token: {token!r}")
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.host = host
        self._port = port

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._started_at = time.monotonic()

        # configuration
        self.latency = 0.0
        self.method_latency: dict[str, float] = {}
        self.fail_rate = 0.0
        self.fault_weights: dict[str, float] = {
            "429": 1.0,
            "500": 1.0,
            "502": 1.0,
            "drop": 1.0,
            "drop_after": 0.0,
            "timeout": 1.0,
        }
        self.fault_methods: set[str] | None = None
        self.fault_retry_after = 1
        self.timeout_delay: float | None = None
        self.rate_limit_per_second: float | None = 30.0
        self.rate_limit_burst: int | None = None
        self.rate_limit_per_chat_per_second: float | None = 1.0
        self.rate_limit_per_chat_burst: int = 10
        self.lost_response_rate = 0.0
        self.lost_response_methods: set[str] | None = None
        self.rate_limited_methods: set[str] = {
            "sendMessage",
            "sendDocument",
            "sendPhoto",
            "sendVoice",
            "sendAudio",
            "sendVideo",
            "sendAnimation",
            "sendSticker",
            "sendLocation",
            "sendContact",
            "sendPoll",
            "copyMessage",
            "forwardMessage",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "answerCallbackQuery",
        }
        self.html_strict_entities = True
        self.callback_answer_timeout: float | None = 15.0
        self.strict_chats = True
        self.emulate_poll_throttling = False
        self.close_allowed_after = 600.0

        # random sources: one for faults, one for ids (so fault settings do not change ids)
        self.rng = random.Random(seed)
        self._id_rng = random.Random(seed + 1)

        # state
        self._records: list[CallRecord] = []
        self._updates: deque[dict[str, Any]] = deque()
        self._sent_updates: list[dict[str, Any]] = []
        self._dropped_updates: list[dict[str, Any]] = []
        self._next_update_id = first_update_id
        self._allowed_updates: frozenset[str] = DEFAULT_ALLOWED_UPDATES
        self._poll_generation = 0
        self._prev_poll_offset: int | None = None
        self._prev_poll_start = 0.0
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, _File] = {}
        self._file_paths: dict[str, _File] = {}
        self._file_counter = 0
        self._callback_queries: dict[str, _CallbackQuery] = {}
        self._commands: dict[tuple[tuple[str, int | None, int | None], str], list[dict[str, str]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._webhook: dict[str, Any] = {"url": "", "secret_token": "", "max_connections": 40}
        self._logged_out = False
        self._scheduled_faults: list[_Fault] = []
        self._global_bucket = _Bucket()
        self._chat_buckets: dict[int, _Bucket] = {}
        self.stats: Counter[str] = Counter()
        self.chat_actions: list[tuple[int, str]] = []
        #: Tracebacks of unexpected exceptions inside the fake (answered as 500); should stay empty.
        self.internal_errors: list[str] = []
        self._menu_button: dict[str, Any] = {"type": "default"}

        self._methods: dict[str, tuple[str, Callable[[_Req], Any]]] = {}
        for name in (
            "getMe",
            "logOut",
            "close",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "sendDocument",
            "sendPhoto",
            "sendVoice",
            "sendAudio",
            "sendVideo",
            "sendAnimation",
            "sendChatAction",
            "editMessageText",
            "editMessageCaption",
            "editMessageReplyMarkup",
            "deleteMessage",
            "deleteMessages",
            "answerCallbackQuery",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "setMyDescription",
            "getMyDescription",
            "setMyShortDescription",
            "getMyShortDescription",
            "setMyName",
            "getMyName",
            "setChatMenuButton",
            "getChatMenuButton",
            "getFile",
            "getChat",
            "leaveChat",
        ):
            handler = getattr(self, "_m_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
            self._methods[name.lower()] = (name, handler)
        for name, value in settings.items():
            if name.startswith("_") or not hasattr(self, name) or callable(getattr(self, name)):
                raise TypeError(f"FakeBotAPI has no setting {name!r}")
            setattr(self, name, value)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeBotAPI:
        """Bind 127.0.0.1:port and start serving in a daemon thread (idempotent)."""
        with self._lock:
            if self._server is not None:
                return self
            self._stop.clear()
            self._server = _Server((self.host, self._port), self)
            self._port = self._server.server_address[1]
            self._started_at = time.monotonic()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"FakeBotAPI:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving, wake long polls, close all client connections (idempotent)."""
        with self._cond:
            server, thread = self._server, self._thread
            self._server = None
            self._thread = None
            self._stop.set()
            self._cond.notify_all()
            connections = list(self._connections)
        if server is None:
            return
        server.shutdown()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeBotAPI is not running; use start() or a with-block")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url`` (PTB appends ``<token>/<method>``)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder.base_file_url`` (PTB appends ``<token>/<file_path>``)."""
        return f"{self.url}/file/bot"

    # ---------------------------------------------------------------- connection bookkeeping

    def _register_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # ---------------------------------------------------------------- HTTP entry point

    def _json_outcome(self, status: int, payload: dict[str, Any]) -> _Outcome:
        return _Outcome(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def _error_outcome(self, error: ApiError) -> _Outcome:
        return self._json_outcome(error.error_code, error.payload())

    def _handle_http(self, raw_path: str, content_type: str, body: bytes) -> _Outcome:
        with self._lock:
            self.stats["requests"] += 1
        split = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(split.path)
        if path.startswith("/file/bot"):
            return self._handle_file_download(path[len("/file/bot") :])
        match = re.fullmatch(r"/bot([^/]*)/([^/]+)", path)
        if match is None:
            return self._error_outcome(ApiError(404, "Not Found"))
        token, method_raw = match.groups()
        if not _TOKEN_RE.fullmatch(token):
            return self._error_outcome(ApiError(404, "Not Found"))
        if token != self.token or self._logged_out:
            return self._error_outcome(ApiError(401, "Unauthorized"))
        entry = self._methods.get(method_raw.lower())
        if entry is None:
            return self._error_outcome(ApiError(404, "Not Found"))
        method, handler = entry

        try:
            params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
            body_params, files = _parse_body(content_type, body)
            params.update(body_params)
        except ApiError as exc:
            with self._cond:
                record = self._new_record(method, {}, {})
                self._finish_record(record, exc.error_code, False, error=exc.description)
            return self._error_outcome(exc)

        with self._cond:
            record = self._new_record(method, params, files)
        delay = self.latency + self.method_latency.get(method, 0.0)
        if delay > 0:
            self._sleep(delay)

        with self._cond:
            fault = self._choose_fault(method)
            if fault is not None:
                record.fault = fault.kind
                self.stats[fault.kind] += 1
                if fault.kind in _FAULT_RESPONSES or fault.kind in ("drop", "error"):
                    outcome = self._fault_outcome(fault)
                    if fault.kind == "429":
                        self.stats["429_total"] += 1
                    self._finish_record(record, outcome.status if not outcome.drop else None, False, error=fault.kind)
                    return outcome
            req = _Req(method, params, files, record)
            try:
                value = handler(req)
                result = value if isinstance(value, _Result) else _Result(value)
                payload: dict[str, Any] = {"ok": True, "result": result.value}
                if result.description:
                    payload["description"] = result.description
                self._finish_record(record, 200, True, result=result.value)
                outcome = self._json_outcome(200, payload)
            except ApiError as exc:
                if exc.error_code == 429:
                    self.stats["429_total"] += 1
                self._finish_record(record, exc.error_code, False, error=exc.description)
                outcome = self._error_outcome(exc)
            except Exception:  # a bug in the fake: answer like Telegram would, keep the traceback
                self.internal_errors.append(traceback.format_exc())
                self._finish_record(record, 500, False, error="Internal Server Error (fake bug, see internal_errors)")
                outcome = self._error_outcome(ApiError(500, "Internal Server Error"))
            if fault is not None and fault.kind == "drop_after":
                outcome.drop = True
            elif fault is not None and fault.kind == "timeout":
                outcome.delay = self.timeout_delay or 0.0
            return outcome

    def _fault_outcome(self, fault: _Fault) -> _Outcome:
        if fault.kind == "429":
            return self._error_outcome(_too_many(fault.retry_after))
        if fault.kind == "500":
            return self._error_outcome(ApiError(500, "Internal Server Error"))
        if fault.kind == "502":
            return _Outcome(502, _NGINX_502, content_type="text/html")
        if fault.kind == "error" and fault.error is not None:
            return self._error_outcome(ApiError(*fault.error))
        return _Outcome(0, b"", drop=True)

    def _handle_file_download(self, rest: str) -> _Outcome:
        token, _, file_path = rest.partition("/")
        if token != self.token or self._logged_out:
            return self._error_outcome(ApiError(404, "Not Found"))
        with self._lock:
            stored = self._file_paths.get(file_path)
            self.stats["file_downloads"] += 1
        if stored is None:
            return self._error_outcome(ApiError(404, "Not Found"))
        return _Outcome(200, stored.content, content_type=stored.mime_type or "application/octet-stream")

    # ---------------------------------------------------------------- records

    def _new_record(self, method: str, params: dict[str, str], files: dict[str, UploadedFile]) -> CallRecord:
        record = CallRecord(
            index=len(self._records),
            method=method,
            params=_decode_for_record(params),
            files=dict(files),
            time=time.time(),
        )
        self._records.append(record)
        self._cond.notify_all()
        return record

    def _finish_record(
        self, record: CallRecord, status: int | None, ok: bool, *, result: Any = None, error: str | None = None
    ) -> None:
        record.status = status
        record.ok = ok
        record.result = _deep(result)
        record.error = error
        self._cond.notify_all()

    # ---------------------------------------------------------------- faults & rate limits

    def _choose_fault(self, method: str) -> _Fault | None:
        for index, fault in enumerate(self._scheduled_faults):
            if fault.method is None or fault.method.lower() == method.lower():
                fault.times -= 1
                if fault.times <= 0:
                    del self._scheduled_faults[index]
                return fault
        lost_methods = self.rate_limited_methods if self.lost_response_methods is None else self.lost_response_methods
        if self.lost_response_rate > 0 and method in lost_methods and self.rng.random() < self.lost_response_rate:
            return _Fault(kind="drop_after", method=method, times=1)
        if self.fail_rate <= 0:
            return None
        if self.fault_methods is None:
            if method == "getUpdates":
                return None
        elif method not in self.fault_methods:
            return None
        if self.rng.random() >= self.fail_rate:
            return None
        choices = [
            (kind, weight)
            for kind, weight in self.fault_weights.items()
            if weight > 0 and kind in FAULT_KINDS and (kind != "timeout" or (self.timeout_delay or 0) > 0)
        ]
        if not choices:
            return None
        kinds, weights = zip(*choices, strict=True)
        kind = self.rng.choices(kinds, weights=weights)[0]
        return _Fault(kind=kind, method=method, times=1, retry_after=self.fault_retry_after)

    def _rate_limit(self, method: str, chat_id: int) -> None:
        """Raise 429 if the call would exceed a limit now; otherwise spend a token of each bucket."""
        if method not in self.rate_limited_methods:
            return
        now = time.monotonic()
        spend: list[_Bucket] = []
        wait = 0.0
        limits = (
            (self._global_bucket, self.rate_limit_per_second, self.rate_limit_burst),
            (
                self._chat_buckets.setdefault(chat_id, _Bucket()),
                self.rate_limit_per_chat_per_second,
                self.rate_limit_per_chat_burst,
            ),
        )
        for bucket, rate, burst in limits:
            if rate and rate > 0:
                wait = max(wait, bucket.wait(rate, max(1.0, burst if burst is not None else rate), now))
                spend.append(bucket)
        if wait > 0:
            self.stats["rate_limited"] += 1
            raise _too_many(max(1, math.ceil(wait)))
        for bucket in spend:
            bucket.take()

    # ---------------------------------------------------------------- shared validation helpers

    def _resolve_chat(self, params: dict[str, str], name: str = "chat_id") -> _Chat:
        raw = _arg(params, name).strip()
        if raw == "":
            raise _bad(f"{name} is empty")
        chat: _Chat | None = None
        if raw.startswith("@"):
            username = raw[1:].lower()
            chat = next((c for c in self._chats.values() if (c.username or "").lower() == username), None)
        elif re.fullmatch(r"-?\d{1,19}", raw):
            chat_id = int(raw)
            chat = self._chats.get(chat_id)
            if chat is None and not self.strict_chats and chat_id != 0:
                chat = self._ensure_chat(chat_id, "private" if chat_id > 0 else "group")
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _check_can_write(self, chat: _Chat) -> None:
        if chat.type == "private" and chat.blocked:
            raise _forbidden("bot was blocked by the user")
        if chat.type != "private" and not chat.bot_is_member:
            kind = {"group": "group chat", "supergroup": "supergroup chat", "channel": "channel chat"}[chat.type]
            raise _forbidden(f"bot is not a member of the {kind}")

    def _check_unsupported_options(self, params: dict[str, str], chat: _Chat) -> None:
        if _arg(params, "business_connection_id"):
            raise _bad("business connection not found")
        if _int_arg(params, "message_thread_id", 0) != 0:
            raise _bad("message thread not found")
        effect = _arg(params, "message_effect_id")
        if effect and (effect not in KNOWN_MESSAGE_EFFECTS or chat.type != "private"):
            raise _bad("EFFECT_ID_INVALID")

    def _format_text(
        self, params: dict[str, str], text_name: str, entities_name: str
    ) -> tuple[str, list[dict[str, Any]]]:
        """Apply ``parse_mode`` or the ``entities`` parameter, trim, add automatic entities.

        Length limits and emptiness are checked by the callers (after the chat checks, as Telegram
        does).
        """
        raw = _arg(params, text_name)
        mode = _arg(params, "parse_mode").lower()
        if mode in ("", "none"):
            text = raw
            entities = self._parse_entities_param(params, entities_name, raw)
        elif mode == "html":
            try:
                text, entities = parse_html(raw, strict_entities=self.html_strict_entities)
            except EntityParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        elif mode in ("markdown", "markdownv2"):
            # Telegram accepts these, but the bot sends HTML only, so the fake does not model them.
            # Accepting the text unparsed would record markup the user would never see and let
            # invalid Markdown through; a refusal Telegram would not give makes any test of a bot
            # that starts using Markdown fail at its first message, saying why.
            raise _bad(f"parse_mode {_arg(params, 'parse_mode')} is not modelled by the fake Bot API (HTML only)")
        else:
            raise _bad("unsupported parse_mode")
        text, entities = self._trim(text, entities)
        manual = [e for e in entities if e["type"] not in _AUTO_TYPES]
        no_auto = [
            (e["offset"], e["offset"] + e["length"]) for e in manual if e["type"] in ("code", "pre", "text_link")
        ]
        automatic = [
            e
            for e in _auto_entities(text)
            if not any(start < e["offset"] + e["length"] and e["offset"] < end for start, end in no_auto)
        ]
        return text, _sort_entities(manual + automatic)

    @staticmethod
    def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        stripped_left = text.lstrip(_SPACES)
        left = utf16_len(text) - utf16_len(stripped_left)
        result = stripped_left.rstrip(_SPACES)
        total = utf16_len(result)
        trimmed: list[dict[str, Any]] = []
        for entity in entities:
            start = max(entity["offset"] - left, 0)
            end = min(entity["offset"] + entity["length"] - left, total)
            if end > start:
                trimmed.append({**entity, "offset": start, "length": end - start})
        return result, trimmed

    def _parse_entities_param(self, params: dict[str, str], name: str, text: str) -> list[dict[str, Any]]:
        value = _json_arg(params, name, f"can't parse {name} JSON object")
        if value is None:
            return []
        if not isinstance(value, list):
            raise _bad(f"can't parse {name} JSON object")
        total = utf16_len(text)
        allowed = set(_ENTITY_PRIORITY) | {
            "mention",
            "hashtag",
            "cashtag",
            "bot_command",
            "url",
            "email",
            "phone_number",
        }
        result: list[dict[str, Any]] = []
        prefix = "can't parse MessageEntity: "
        for item in value:
            if not isinstance(item, dict):
                raise _bad(f"{prefix}MessageEntity must be an Object")
            kind = _field_str(item, "type", prefix, required=True)
            if kind not in allowed:
                raise _bad(f"{prefix}Unsupported type specified")
            offset = _field_int(item, "offset", prefix, required=True)
            length = _field_int(item, "length", prefix, required=True)
            assert offset is not None and length is not None
            if offset < 0:
                raise _bad(f"receive an entity with incorrect offset {offset}")
            if length < 0:
                raise _bad(f"receive an entity with incorrect length {length}")
            if offset > total:
                raise _bad(f"entity begins after the end of the text at UTF-16 offset {offset}")
            if offset + length > total:
                raise _bad(
                    f"entity beginning at UTF-16 offset {offset} ends after the end of the text at UTF-16 offset "
                    f"{offset + length}"
                )
            entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
            if kind == "text_link":
                url = _field_str(item, "url", prefix, required=True) or ""
                problem = _url_problem(url)
                if problem is not None:
                    raise _bad(f"entity URL '{url}' is invalid: {problem}")
                entity["url"] = url
            elif kind == "text_mention":
                user = item.get("user")
                if user is None:
                    raise _bad(f'{prefix}Can\'t find field "user"')
                user_id = (
                    _field_int(user, "id", "can't parse User: ", required=True) if isinstance(user, dict) else None
                )
                if user_id not in self._users:
                    raise _bad("user not found")
                entity["user"] = _deep(self._users[user_id])
            elif kind == "custom_emoji":
                emoji_id = _field_str(item, "custom_emoji_id", prefix, required=True) or ""
                if not re.fullmatch(r"[0-9]{1,19}", emoji_id) or int(emoji_id) >= 2**63 or int(emoji_id) == 0:
                    raise _bad(f'{prefix}Field "custom_emoji_id" must be a valid Number')
                entity["custom_emoji_id"] = emoji_id
            elif kind == "pre":
                language = _field_str(item, "language", prefix)
                if language:
                    entity["language"] = language
            if length > 0:
                result.append(entity)
        return _sort_entities(result)

    # --- reply markup

    def _parse_reply_markup(self, params: dict[str, str], *, inline_only: bool) -> dict[str, Any] | None:
        markup = _json_arg(params, "reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return self._check_inline_markup(markup)
        if inline_only:
            if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply", "hide_keyboard")):
                raise _bad("inline keyboard expected")
            return None
        if "keyboard" in markup:
            return self._check_reply_keyboard(markup)
        if "remove_keyboard" in markup or "hide_keyboard" in markup:
            key = "remove_keyboard" if "remove_keyboard" in markup else "hide_keyboard"
            _field_bool(markup, key, "")
            _field_bool(markup, "selective", "")
            return markup
        if "force_reply" in markup:
            _field_bool(markup, "force_reply", "")
            _field_bool(markup, "selective", "")
            placeholder = markup.get("input_field_placeholder")
            if placeholder is not None and (not isinstance(placeholder, str) or len(placeholder) > 64):
                raise _bad("input_field_placeholder must be a String of 0-64 characters")
            return markup
        return None

    def _check_inline_markup(self, markup: dict[str, Any]) -> dict[str, Any]:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list):
            raise _bad('field "inline_keyboard" must be of type Array')
        total = 0
        for row in rows:
            if not isinstance(row, list):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
            for button in row:
                self._check_inline_button(button)
                total += 1
        if total > MAX_INLINE_BUTTONS:
            raise _bad("reply markup is too long")
        return markup

    def _check_inline_button(self, button: Any) -> None:
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise _bad(f"{prefix}InlineKeyboardButton must be an Object")
        text = _field_str(button, "text", prefix, required=True)
        if not text or not text.strip(_SPACES):
            raise _bad("BUTTON_TEXT_INVALID")
        style = button.get("style")
        if style is not None and style not in ("danger", "success", "primary"):
            raise _bad("BUTTON_STYLE_INVALID")
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        present = [
            key
            for key in actions
            if key in button and not (key in ("url", "callback_data") and button[key] in ("", None))
        ]
        if not present:
            raise _bad(f"{prefix}Text buttons are unallowed in the inline keyboard")
        if len(present) > 1:
            raise _bad(f"{prefix}exactly one of the fields {', '.join(present)} must be used")
        action = present[0]
        if action == "url":
            url = _field_str(button, "url", prefix) or ""
            problem = _url_problem(url)
            if problem is not None:
                raise _bad(f"inline keyboard button URL '{url}' is invalid: {problem}")
        elif action == "callback_data":
            data = _field_str(button, "callback_data", prefix) or ""
            if not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad("BUTTON_DATA_INVALID")
        elif action == "web_app":
            web_app = button["web_app"]
            if not isinstance(web_app, dict):
                raise _bad(f'{prefix}Field "web_app" must be of type Object')
            url = _field_str(web_app, "url", prefix, required=True) or ""
            problem = _url_problem(url, https_only=True)
            if problem is not None:
                raise _bad(f"inline keyboard button Web App URL '{url}' is invalid: {problem}")
        elif action == "login_url":
            login = button["login_url"]
            if not isinstance(login, dict):
                raise _bad(f'{prefix}Field "login_url" must be of type Object')
            _field_str(login, "url", prefix, required=True)
            _field_bool(login, "request_write_access", prefix)
            bot_username = _field_str(login, "bot_username", prefix)
            if bot_username and bot_username.lower() != str(self.bot_user["username"]).lower():
                raise _bad(f'bot "{bot_username}" not found')
            raise _bad("BOT_DOMAIN_INVALID")
        elif action == "switch_inline_query_chosen_chat":
            chosen = button[action]
            if not isinstance(chosen, dict):
                raise _bad(f'{prefix}Field "{action}" must be of type Object')
            for flag in ("allow_user_chats", "allow_bot_chats", "allow_group_chats", "allow_channel_chats"):
                _field_bool(chosen, flag, prefix)
        elif action in ("switch_inline_query", "switch_inline_query_current_chat"):
            _field_str(button, action, prefix)
        elif action == "copy_text":
            copy_text = button["copy_text"]
            value = copy_text.get("text") if isinstance(copy_text, dict) else None
            if not isinstance(value, str) or not 1 <= len(value) <= 256:
                raise _bad("BUTTON_COPY_TEXT_INVALID")
        else:  # callback_game / pay outside games and invoices
            raise _bad("BUTTON_TYPE_INVALID")

    def _check_reply_keyboard(self, markup: dict[str, Any]) -> dict[str, Any]:
        rows = markup["keyboard"]
        if not isinstance(rows, list):
            raise _bad('field "keyboard" must be of type Array')
        prefix = "can't parse keyboard button: "
        for row in rows:
            if not isinstance(row, list):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            for button in row:
                if isinstance(button, str):
                    if not button.strip(_SPACES):
                        raise _bad("BUTTON_TEXT_INVALID")
                    continue
                if not isinstance(button, dict):
                    raise _bad(f"{prefix}KeyboardButton must be a String or an Object")
                text = _field_str(button, "text", prefix, required=True)
                if not text or not text.strip(_SPACES):
                    raise _bad("BUTTON_TEXT_INVALID")
                for flag in ("request_contact", "request_location"):
                    _field_bool(button, flag, prefix)
                requests = [
                    key
                    for key in (
                        "request_contact",
                        "request_location",
                        "request_poll",
                        "request_users",
                        "request_chat",
                        "web_app",
                    )
                    if button.get(key) not in (None, False)
                ]
                if len(requests) > 1:
                    raise _bad(f"{prefix}at most one of the fields {', '.join(requests)} can be used")
                for key in ("request_users", "request_chat"):
                    if key in button:
                        request = button[key]
                        if not isinstance(request, dict):
                            raise _bad(f'{prefix}Field "{key}" must be of type Object')
                        _field_int(request, "request_id", prefix, required=True)
                        for flag in ("chat_is_channel", "chat_is_forum", "user_is_bot", "bot_is_member"):
                            _field_bool(request, flag, prefix)
                if "web_app" in button:
                    web_app = button["web_app"]
                    url = _field_str(web_app, "url", prefix, required=True) if isinstance(web_app, dict) else ""
                    problem = _url_problem(url or "", https_only=True)
                    if problem is not None:
                        raise _bad(f"keyboard button Web App URL '{url}' is invalid: {problem}")
        for flag in ("resize_keyboard", "one_time_keyboard", "is_persistent", "selective"):
            _field_bool(markup, flag, "")
        placeholder = markup.get("input_field_placeholder")
        if placeholder is not None and (not isinstance(placeholder, str) or len(placeholder) > 64):
            raise _bad("input_field_placeholder must be a String of 0-64 characters")
        return markup

    def _reply_to(self, params: dict[str, str], chat: _Chat) -> dict[str, Any] | None:
        reply = _json_arg(params, "reply_parameters", "can't parse reply parameters JSON object")
        if reply is None and _arg(params, "reply_to_message_id"):
            reply = {
                "message_id": _int_arg(params, "reply_to_message_id", 0),
                "allow_sending_without_reply": _bool_arg(params, "allow_sending_without_reply"),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict):
            raise _bad("can't parse reply parameters JSON object")
        message_id = _field_int(reply, "message_id", "", required=True)
        allow = _field_bool(reply, "allow_sending_without_reply", "") or False
        target_chat = chat
        if "chat_id" in reply:
            target_chat = self._resolve_chat({"chat_id": str(reply["chat_id"])})
        stored = target_chat.messages.get(message_id or 0)
        if stored is None or stored.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        data = _deep(stored.data)
        data.pop("reply_to_message", None)
        return data

    def _check_link_preview(self, params: dict[str, str]) -> dict[str, Any] | None:
        options = _json_arg(params, "link_preview_options", "can't parse link preview options JSON object")
        if options is None:
            return None
        if not isinstance(options, dict):
            raise _bad("can't parse link preview options JSON object")
        for flag in ("is_disabled", "prefer_small_media", "prefer_large_media", "show_above_text"):
            _field_bool(options, flag, "")
        url = options.get("url")
        if url is not None and (not isinstance(url, str) or _url_problem(url) is not None):
            raise _bad("WEBPAGE_URL_INVALID")
        return options

    # ---------------------------------------------------------------- message storage

    def _store_bot_message(
        self,
        chat: _Chat,
        req: _Req,
        kind: str,
        content: dict[str, Any],
        *,
        markup: dict[str, Any] | None,
        reply_to: dict[str, Any] | None,
        media_bytes: bytes | None = None,
    ) -> dict[str, Any]:
        message_id = chat.next_message_id
        chat.next_message_id += 1
        data: dict[str, Any] = {
            "message_id": message_id,
            "from": _deep(self.bot_user),
            "chat": chat.json(),
            "date": int(time.time()),
        }
        if reply_to is not None:
            data["reply_to_message"] = reply_to
        data.update(content)
        if markup is not None and "inline_keyboard" in markup:
            data["reply_markup"] = _deep(markup)
        if markup is not None and "keyboard" in markup:
            chat.reply_keyboard = _deep(markup)
        elif markup is not None and ("remove_keyboard" in markup or "hide_keyboard" in markup):
            chat.reply_keyboard = None
        if _bool_arg(req.params, "protect_content"):
            data["has_protected_content"] = True
        chat.messages[message_id] = _StoredMessage(
            chat_id=chat.id,
            message_id=message_id,
            from_bot=True,
            data=data,
            seq=req.record.index,
            kind=kind,
            sent_markup=_deep(markup),
            parse_mode=_arg(req.params, "parse_mode") or None,
            content=media_bytes,
        )
        self._cond.notify_all()
        return _deep(data)

    def _snapshot(self, stored: _StoredMessage) -> BotMessage:
        data = stored.data
        reply = data.get("reply_to_message")
        return BotMessage(
            chat_id=stored.chat_id,
            message_id=stored.message_id,
            kind=stored.kind,
            text=data.get("text"),
            caption=data.get("caption"),
            entities=_deep(data.get("entities") or data.get("caption_entities") or []),
            reply_markup=_deep(stored.sent_markup),
            parse_mode=stored.parse_mode,
            edited=stored.edited,
            edit_count=stored.edit_count,
            deleted=stored.deleted,
            date=int(data["date"]),
            reply_to_message_id=reply["message_id"] if reply else None,
            document=_deep(data.get("document")),
            content=stored.content,
            raw=_deep(data),
            seq=stored.seq,
        )

    # ---------------------------------------------------------------- Bot API methods

    def _m_get_me(self, req: _Req) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_log_out(self, req: _Req) -> Any:
        self._logged_out = True
        return True

    def _m_close(self, req: _Req) -> Any:
        remaining = self.close_allowed_after - (time.monotonic() - self._started_at)
        if remaining > 0:
            raise _too_many(math.ceil(remaining))
        return True

    def _m_get_updates(self, req: _Req) -> Any:
        params = req.params
        if self._webhook["url"]:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
                "webhook first",
            )
        offset = _int_arg(params, "offset", 0)
        limit = _int_arg(params, "limit", 100, 1, 100)
        timeout = _int_arg(params, "timeout", 0, 0, LONG_POLL_MAX_TIMEOUT)
        self._update_allowed_updates(params)
        now = time.monotonic()
        if self.emulate_poll_throttling and offset == self._prev_poll_offset:
            if timeout < 3 and now < self._prev_poll_start + 3.0:
                timeout = 3
            if now < self._prev_poll_start + 0.5:
                limit = 1
        self._prev_poll_offset = offset
        self._prev_poll_start = now

        self._poll_generation += 1
        generation = self._poll_generation
        self._cond.notify_all()  # an older long poll is terminated with 409
        self._confirm_updates(offset)
        deadline = now + timeout
        while True:
            if self._stop.is_set():
                return []
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            if self._webhook["url"]:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            self._confirm_updates(offset)
            if self._updates:
                return [_deep(update) for update in list(self._updates)[:limit]]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._cond.wait(min(remaining, 0.5))

    def _confirm_updates(self, offset: int) -> None:
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()

    def _update_allowed_updates(self, params: dict[str, str]) -> None:
        raw = _arg(params, "allowed_updates")
        if raw == "":
            return
        try:
            value = json.loads(raw)
        except ValueError:
            return
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return
        chosen = frozenset(item.lower() for item in value) & frozenset(ALL_UPDATE_TYPES)
        self._allowed_updates = chosen or DEFAULT_ALLOWED_UPDATES

    def _m_set_webhook(self, req: _Req) -> Any:
        params = req.params
        url = _arg(params, "url")
        if url == "":
            return self._m_delete_webhook(req)
        if not url.lower().startswith("https://") or _url_problem(url, https_only=True) is not None:
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = _arg(params, "secret_token")
        if len(secret) > 256:
            raise _bad("secret token is too long")
        if not re.fullmatch(r"[A-Za-z0-9_-]*", secret):
            raise _bad("secret token contains unallowed characters")
        self._update_allowed_updates(params)
        if _bool_arg(params, "drop_pending_updates"):
            self._updates.clear()
        already = self._webhook["url"] == url and self._webhook["secret_token"] == secret
        self._webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": _int_arg(params, "max_connections", 40, 1, 100),
            "ip_address": _arg(params, "ip_address") or None,
        }
        self._cond.notify_all()
        return _Result(True, "Webhook is already set" if already else "Webhook was set")

    def _m_delete_webhook(self, req: _Req) -> Any:
        had = bool(self._webhook["url"])
        self._webhook = {"url": "", "secret_token": "", "max_connections": 40}
        if _bool_arg(req.params, "drop_pending_updates"):
            self._updates.clear()
        return _Result(True, "Webhook was deleted" if had else "Webhook is already deleted")

    def _m_get_webhook_info(self, req: _Req) -> Any:
        info: dict[str, Any] = {
            "url": self._webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook["url"]:
            info["max_connections"] = self._webhook["max_connections"]
            if self._allowed_updates != DEFAULT_ALLOWED_UPDATES:
                info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    def _m_send_message(self, req: _Req) -> Any:
        params = req.params
        if _arg(params, "text") == "":
            raise _bad("message text is empty")
        text, entities = self._format_text(params, "text", "entities")
        markup = self._parse_reply_markup(params, inline_only=False)
        preview = self._check_link_preview(params)
        chat = self._resolve_chat(params)
        self._check_can_write(chat)
        self._check_unsupported_options(params, chat)
        reply_to = self._reply_to(params, chat)
        if text == "":
            raise _bad("text must be non-empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad("message is too long")
        self._rate_limit(req.method, chat.id)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        if preview is not None and preview.get("url"):
            content["link_preview_options"] = {"url": preview["url"]}
        return self._store_bot_message(chat, req, "text", content, markup=markup, reply_to=reply_to)

    # --- media

    _MEDIA_KINDS: ClassVar[dict[str, tuple[str, str]]] = {
        "sendDocument": ("document", "there is no document in the request"),
        "sendPhoto": ("photo", "there is no photo in the request"),
        "sendVoice": ("voice", "there is no voice in the request"),
        "sendAudio": ("audio", "there is no audio in the request"),
        "sendVideo": ("video", "there is no video in the request"),
        "sendAnimation": ("animation", "there is no animation in the request"),
    }

    def _m_send_document(self, req: _Req) -> Any:
        return self._send_media(req)

    def _m_send_photo(self, req: _Req) -> Any:
        return self._send_media(req)

    def _m_send_voice(self, req: _Req) -> Any:
        return self._send_media(req)

    def _m_send_audio(self, req: _Req) -> Any:
        return self._send_media(req)

    def _m_send_video(self, req: _Req) -> Any:
        return self._send_media(req)

    def _m_send_animation(self, req: _Req) -> Any:
        return self._send_media(req)

    def _resolve_input_file(self, req: _Req, param: str, kind: str, missing: str) -> _File:
        upload = req.files.get(param)
        raw = _arg(req.params, param)
        if upload is None and raw.startswith("attach://"):
            upload = req.files.get(raw[len("attach://") :])
            if upload is None:
                raise _bad(missing)
        if upload is not None:
            if len(upload.data) == 0:
                raise _bad("file must be non-empty")
            if len(upload.data) > MAX_UPLOAD_FILE_SIZE:
                raise ApiError(413, "Request Entity Too Large")
            mime = upload.content_type
            if mime in ("", "application/octet-stream"):
                mime = mimetypes.guess_type(upload.filename)[0] or _DEFAULT_MIME.get(kind, "application/octet-stream")
            if kind == "photo":  # Telegram re-encodes photos; they keep neither name nor MIME type
                return self._register_file(upload.data, kind=kind, mime_type="image/jpeg")
            return self._register_file(upload.data, kind=kind, file_name=upload.filename or None, mime_type=mime)
        if raw == "":
            raise _bad(missing)
        known = self._files.get(raw)
        if known is not None:
            return known
        if re.match(r"https?://", raw, flags=re.IGNORECASE):
            name = urllib.parse.urlsplit(raw).path.rsplit("/", 1)[-1] or "file"
            return self._register_file(
                f"(content of {raw})".encode(),
                kind=kind,
                file_name=name,
                mime_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            )
        raise _bad("wrong file identifier/HTTP URL specified")

    def _send_media(self, req: _Req) -> Any:
        params = req.params
        kind, missing = self._MEDIA_KINDS[req.method]
        caption, caption_entities = self._format_text(params, "caption", "caption_entities")
        markup = self._parse_reply_markup(params, inline_only=False)
        chat = self._resolve_chat(params)
        self._check_can_write(chat)
        self._check_unsupported_options(params, chat)
        stored_file = self._resolve_input_file(req, kind, kind, missing)
        reply_to = self._reply_to(params, chat)
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        self._rate_limit(req.method, chat.id)
        content: dict[str, Any] = {kind: self._media_json(stored_file, kind)}
        if caption:
            content["caption"] = caption
            if caption_entities:
                content["caption_entities"] = caption_entities
        if _bool_arg(params, "has_spoiler"):
            content["has_media_spoiler"] = True
        return self._store_bot_message(
            chat, req, kind, content, markup=markup, reply_to=reply_to, media_bytes=stored_file.content
        )

    def _media_json(self, stored: _File, kind: str) -> Any:
        base: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if kind == "photo":
            small = self._register_file(stored.content[:1024], kind="photo", mime_type=stored.mime_type)
            return [
                {
                    **{"file_id": small.file_id, "file_unique_id": small.file_unique_id},
                    "width": 90,
                    "height": 67,
                    "file_size": small.file_size,
                },
                {**base, "width": 800, "height": 600, "file_size": stored.file_size},
            ]
        base["file_size"] = stored.file_size
        if kind == "document":
            if stored.file_name:
                base["file_name"] = stored.file_name
            if stored.mime_type:
                base["mime_type"] = stored.mime_type
        elif kind in ("voice", "audio"):
            base["duration"] = 1
            base["mime_type"] = stored.mime_type or ("audio/ogg" if kind == "voice" else "audio/mpeg")
        elif kind in ("video", "animation"):
            base.update({"width": 640, "height": 360, "duration": 1})
            if stored.mime_type:
                base["mime_type"] = stored.mime_type
        return base

    def _m_send_chat_action(self, req: _Req) -> Any:
        params = req.params
        chat = self._resolve_chat(params)
        action = _arg(params, "action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._check_can_write(chat)
        self._check_unsupported_options(params, chat)
        self.chat_actions.append((chat.id, action))
        return True

    # --- editing

    def _message_for_edit(self, req: _Req) -> tuple[_Chat, _StoredMessage]:
        params = req.params
        if _arg(params, "inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._resolve_chat(params)
        if _arg(params, "message_id") == "":
            raise _bad("message identifier is not specified")
        message_id = _int_arg(params, "message_id", 0)
        self._check_can_write(chat)
        stored = chat.messages.get(message_id)
        if stored is None or stored.deleted:
            raise _bad("message to edit not found")
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return chat, stored

    @staticmethod
    def _not_modified() -> ApiError:
        return _bad(
            "message is not modified: specified new message content and reply markup are exactly the same as a "
            "current content and reply markup of the message"
        )

    def _apply_edit(self, stored: _StoredMessage, changes: dict[str, Any], markup: dict[str, Any] | None) -> Any:
        data = stored.data
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        if markup is None:
            data.pop("reply_markup", None)
        else:
            data["reply_markup"] = _deep(markup)
        data["edit_date"] = int(time.time())
        stored.sent_markup = _deep(markup)
        stored.edited = True
        stored.edit_count += 1
        self._cond.notify_all()
        return _deep(data)

    def _m_edit_message_text(self, req: _Req) -> Any:
        params = req.params
        if _arg(params, "text") == "":
            raise _bad("message text is empty")
        text, entities = self._format_text(params, "text", "entities")
        markup = self._parse_reply_markup(params, inline_only=True)
        self._check_link_preview(params)
        _chat, stored = self._message_for_edit(req)
        if "text" not in stored.data:
            raise _bad("there is no text in the message to edit")
        if text == "":
            raise _bad("text must be non-empty")
        if len(text) > MAX_MESSAGE_LENGTH:
            raise _bad("message is too long")
        same_text = stored.data.get("text") == text and (stored.data.get("entities") or []) == entities
        if same_text and stored.data.get("reply_markup") == markup:
            raise self._not_modified()
        self._rate_limit(req.method, _chat.id)
        stored.parse_mode = _arg(params, "parse_mode") or None
        return self._apply_edit(stored, {"text": text, "entities": entities or None}, markup)

    def _m_edit_message_caption(self, req: _Req) -> Any:
        params = req.params
        caption, entities = self._format_text(params, "caption", "caption_entities")
        markup = self._parse_reply_markup(params, inline_only=True)
        _chat, stored = self._message_for_edit(req)
        if "text" in stored.data:
            raise _bad("there is no caption in the message to edit")
        if len(caption) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        same = (stored.data.get("caption") or "") == caption and (stored.data.get("caption_entities") or []) == entities
        if same and stored.data.get("reply_markup") == markup:
            raise self._not_modified()
        self._rate_limit(req.method, _chat.id)
        return self._apply_edit(stored, {"caption": caption or None, "caption_entities": entities or None}, markup)

    def _m_edit_message_reply_markup(self, req: _Req) -> Any:
        markup = self._parse_reply_markup(req.params, inline_only=True)
        chat, stored = self._message_for_edit(req)
        if stored.data.get("reply_markup") == markup:
            raise self._not_modified()
        self._rate_limit(req.method, chat.id)
        return self._apply_edit(stored, {}, markup)

    def _m_delete_message(self, req: _Req) -> Any:
        params = req.params
        chat = self._resolve_chat(params)
        if _arg(params, "message_id") == "":
            raise _bad("message identifier is not specified")
        stored = chat.messages.get(_int_arg(params, "message_id", 0))
        if stored is None or stored.deleted:
            raise _bad("message to delete not found")
        if not stored.from_bot and chat.type != "private":
            raise _bad("message can't be deleted")
        stored.deleted = True
        self._cond.notify_all()
        return True

    def _m_delete_messages(self, req: _Req) -> Any:
        params = req.params
        chat = self._resolve_chat(params)
        ids = _json_arg(params, "message_ids", "can't parse message identifiers JSON object")
        if not isinstance(ids, list) or not ids:
            raise _bad("message identifiers are not specified")
        if len(ids) > 100:
            raise _bad("too many message identifiers specified")
        for message_id in ids:
            stored = chat.messages.get(message_id) if isinstance(message_id, int) else None
            if stored is not None and (stored.from_bot or chat.type == "private"):
                stored.deleted = True
        self._cond.notify_all()
        return True

    # --- callback queries

    def _m_answer_callback_query(self, req: _Req) -> Any:
        params = req.params
        query_id = _arg(params, "callback_query_id")
        text = _arg(params, "text")
        if len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        url = _arg(params, "url")
        query = self._callback_queries.get(query_id)
        expired = (
            query is not None
            and self.callback_answer_timeout is not None
            and time.monotonic() - query.created > self.callback_answer_timeout
        )
        if query is None or query.answered or expired:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if url and not re.match(rf"https?://t\.me/{re.escape(str(self.bot_user['username']))}\?start=", url, re.I):
            raise _bad("URL_INVALID")  # only t.me/<bot>?start=... (or game URLs, not modelled)
        self._rate_limit(req.method, query.chat_id if query.chat_id is not None else query.user_id)
        query.answered = True
        query.answered_after = time.monotonic() - query.created
        query.answer = {
            "text": text or None,
            "show_alert": _bool_arg(params, "show_alert"),
            "url": url or None,
            "cache_time": _int_arg(params, "cache_time", 0),
        }
        self._cond.notify_all()
        return True

    # --- commands, descriptions, menu button

    def _command_scope(self, params: dict[str, str]) -> tuple[str, int | None, int | None]:
        scope = _json_arg(params, "scope", "can't parse BotCommandScope JSON object")
        if scope is None:
            return ("default", None, None)
        prefix = "can't parse BotCommandScope: "
        if not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        kind = _field_str(scope, "type", prefix, required=True)
        simple = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators")
        if kind in simple:
            return (str(kind), None, None)
        if kind not in ("chat", "chat_administrators", "chat_member"):
            raise _bad(f"{prefix}Unsupported type specified")
        if "chat_id" not in scope:
            raise _bad(f'{prefix}Can\'t find field "chat_id"')
        if kind == "chat_member" and "user_id" not in scope:
            raise _bad(f'{prefix}Can\'t find field "user_id"')
        chat = self._resolve_chat({"chat_id": str(scope["chat_id"])})
        if kind in ("chat_administrators", "chat_member") and chat.type == "private":
            raise _bad("can't use chat_administrators or chat_member scope in private chats")
        user_id = _field_int(scope, "user_id", prefix) if kind == "chat_member" else None
        return (str(kind), chat.id, user_id)

    def _language_code(self, params: dict[str, str]) -> str:
        code = _arg(params, "language_code")
        if code and not _LANG_RE.fullmatch(code):
            raise _bad("invalid language code specified")
        return code

    def _m_set_my_commands(self, req: _Req) -> Any:
        params = req.params
        commands = _json_arg(params, "commands", "can't parse commands JSON object")
        if commands is None:
            raise _bad('parameter "commands" is required')
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        prefix = "can't parse BotCommand: "
        parsed: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad(f"{prefix}BotCommand must be an Object")
            command = _field_str(item, "command", prefix, required=True) or ""
            description = _field_str(item, "description", prefix, required=True) or ""
            if command == "":
                raise _bad("command must be non-empty")
            if not _BOT_COMMAND_RE.fullmatch(command):
                raise _bad("BOT_COMMAND_INVALID")
            if description.strip(_SPACES) == "":
                raise _bad("command description must be non-empty")
            if len(description) > 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            parsed.append({"command": command, "description": description})
        key = (self._command_scope(params), self._language_code(params))
        if parsed:
            self._commands[key] = parsed
        else:
            self._commands.pop(key, None)
        return True

    def _m_get_my_commands(self, req: _Req) -> Any:
        key = (self._command_scope(req.params), self._language_code(req.params))
        return _deep(self._commands.get(key, []))

    def _m_delete_my_commands(self, req: _Req) -> Any:
        key = (self._command_scope(req.params), self._language_code(req.params))
        self._commands.pop(key, None)
        return True

    def _set_description(self, req: _Req, kind: str, limit: int, error: str) -> Any:
        value = _arg(req.params, kind)
        if len(value) > limit:
            raise _bad(error)
        key = (kind, self._language_code(req.params))
        if value:
            self._descriptions[key] = value
        else:
            self._descriptions.pop(key, None)
        return True

    def _get_description(self, req: _Req, kind: str) -> Any:
        return {kind: self._descriptions.get((kind, self._language_code(req.params)), "")}

    def _m_set_my_description(self, req: _Req) -> Any:
        return self._set_description(req, "description", MAX_DESCRIPTION_LENGTH, "BOT_DESC_INVALID")

    def _m_get_my_description(self, req: _Req) -> Any:
        return self._get_description(req, "description")

    def _m_set_my_short_description(self, req: _Req) -> Any:
        return self._set_description(req, "short_description", MAX_SHORT_DESCRIPTION_LENGTH, "BOT_SHARETEXT_INVALID")

    def _m_get_my_short_description(self, req: _Req) -> Any:
        return self._get_description(req, "short_description")

    def _m_set_my_name(self, req: _Req) -> Any:
        return self._set_description(req, "name", MAX_BOT_NAME_LENGTH, "BOT_TITLE_INVALID")

    def _m_get_my_name(self, req: _Req) -> Any:
        result = self._get_description(req, "name")
        if not result["name"]:
            result["name"] = self.bot_user["first_name"]
        return result

    def _m_set_chat_menu_button(self, req: _Req) -> Any:
        button = _json_arg(req.params, "menu_button", "can't parse menu button JSON object")
        if button is None:
            button = {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise _bad("can't parse menu button: MenuButton has unsupported type")
        if _arg(req.params, "chat_id"):
            self._resolve_chat(req.params)
        self._menu_button = button
        return True

    def _m_get_chat_menu_button(self, req: _Req) -> Any:
        if _arg(req.params, "chat_id"):
            self._resolve_chat(req.params)
        return _deep(self._menu_button)

    # --- files & chats

    def _m_get_file(self, req: _Req) -> Any:
        file_id = _arg(req.params, "file_id")
        if file_id == "":
            raise _bad("file_id not specified")
        stored = self._files.get(file_id)
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_FILE_SIZE:
            raise _bad("file is too big")
        if stored.file_path is None:
            folder = {"photo": "photos", "voice": "voice", "sticker": "stickers", "audio": "music"}.get(
                stored.kind, stored.kind + "s"
            )
            suffix = {"photo": ".jpg", "voice": ".oga", "sticker": ".webp"}.get(stored.kind)
            if suffix is None and stored.file_name and "." in stored.file_name:
                suffix = "." + stored.file_name.rsplit(".", 1)[-1]
            elif suffix is None and stored.mime_type:
                suffix = mimetypes.guess_extension(stored.mime_type)
            stored.file_path = f"{folder}/file_{len(self._file_paths)}{suffix or ''}"
            self._file_paths[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    def _m_get_chat(self, req: _Req) -> Any:
        chat = self._resolve_chat(req.params)
        info = chat.json()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        if chat.type != "private":
            info["permissions"] = {"can_send_messages": True}
        return info

    def _m_leave_chat(self, req: _Req) -> Any:
        chat = self._resolve_chat(req.params)
        if chat.type == "private":
            raise _bad("chat member status can't be changed in private chats")
        if not chat.bot_is_member:
            raise _forbidden(f"bot is not a member of the {chat.type} chat")
        chat.bot_is_member = False
        self._enqueue(
            "my_chat_member",
            self._chat_member_update(chat, self.bot_user, old="member", new="left", actor=self.bot_user),
        )
        return True

    # ---------------------------------------------------------------- test control: files, chats, users

    def _register_file(
        self,
        content: bytes,
        *,
        kind: str = "document",
        file_size: int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> _File:
        self._file_counter += 1
        number = self._file_counter
        prefix = {"document": "BQAC", "photo": "AgAC", "voice": "AwAC", "sticker": "CAAC", "video": "BAAC"}.get(
            kind, "CQAC"
        )
        token = "".join(
            self._id_rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(24)
        )
        stored = _File(
            file_id=f"{prefix}AgIAAxkBAA{number:06d}{token}",
            file_unique_id=f"AQAD{number:06d}{token[:6]}",
            content=bytes(content),
            file_size=len(content) if file_size is None else file_size,
            kind=kind,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return stored

    def add_file(
        self,
        content: bytes,
        *,
        file_size: int | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
        kind: str = "document",
    ) -> tuple[str, str]:
        """Register a downloadable file; returns ``(file_id, file_unique_id)``.

        ``file_size`` may be declared larger than ``content`` to simulate huge files (getFile then
        answers "file is too big" above 20 MB).
        """
        with self._cond:
            stored = self._register_file(
                content, kind=kind, file_size=file_size, file_name=file_name, mime_type=mime_type
            )
            return stored.file_id, stored.file_unique_id

    def file_content(self, file_id: str) -> bytes:
        """Bytes of a known file (uploaded by the bot or registered by the test)."""
        with self._lock:
            return self._files[file_id].content

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        is_premium: bool | None = None,
    ) -> dict[str, Any]:
        """Register a user and their private chat with the bot (as if they had pressed Start)."""
        with self._cond:
            user = self._ensure_user(user_id, first_name, language_code, last_name=last_name, username=username)
            if is_premium is not None:
                user["is_premium"] = is_premium
            self._private_chat(user_id)
            return _deep(user)

    def add_chat(
        self, chat_id: int, *, chat_type: str = "group", title: str | None = None, username: str | None = None
    ) -> dict[str, Any]:
        """Register a group/supergroup/channel the bot is a member of; returns the Chat object."""
        with self._cond:
            chat = self._ensure_chat(chat_id, chat_type, title=title)
            if username is not None:
                chat.username = username
            return chat.json()

    def _ensure_user(
        self,
        user_id: int,
        first_name: str | None,
        language_code: str | None,
        *,
        last_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": first_name or "Ana"}
            if language_code is None:
                language_code = "en"
            self._users[user_id] = user
        if first_name is not None:
            user["first_name"] = first_name
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            if language_code:
                user["language_code"] = language_code
            else:
                user.pop("language_code", None)
        return user

    def _private_chat(self, user_id: int) -> _Chat:
        user = self._users[user_id]
        chat = self._chats.get(user_id)
        if chat is None:
            chat = _Chat(id=user_id, type="private")
            self._chats[user_id] = chat
        chat.first_name = user["first_name"]
        chat.last_name = user.get("last_name")
        chat.username = user.get("username")
        return chat

    def _ensure_chat(self, chat_id: int, chat_type: str, *, title: str | None = None) -> _Chat:
        if chat_type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {chat_type!r}")
        if chat_type == "private":
            if chat_id not in self._users:
                self._ensure_user(chat_id, None, None)
            return self._private_chat(chat_id)
        if chat_id >= 0:
            raise ValueError("group/supergroup/channel chat ids are negative")
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = _Chat(id=chat_id, type=chat_type, title=title or f"Test {chat_type} {-chat_id}")
            self._chats[chat_id] = chat
        elif title is not None:
            chat.title = title
        return chat

    def block(self, user_id: int, *, emit_update: bool = False) -> None:
        """The user blocks the bot: sends to their private chat answer 403 from now on.

        With ``emit_update`` a ``my_chat_member`` update (member -> kicked) is enqueued, as Telegram
        does.  Messages the user sends afterwards are still delivered (the race of a user who writes
        and blocks right away); call :meth:`unblock` to model the "Restart" button.
        """
        with self._cond:
            self._ensure_user(user_id, None, None)
            chat = self._private_chat(user_id)
            chat.blocked = True
            if emit_update:
                user = self._users[user_id]
                self._enqueue("my_chat_member", self._chat_member_update(chat, self.bot_user, "member", "kicked", user))

    def unblock(self, user_id: int) -> None:
        """The user unblocks (restarts) the bot."""
        with self._cond:
            self._private_chat(user_id).blocked = False

    def add_bot_to_group(
        self, chat_id: int, *, by_user_id: int, chat_type: str = "group", title: str | None = None
    ) -> dict[str, Any]:
        """A user adds the bot to a group: registers the chat and enqueues ``my_chat_member``."""
        with self._cond:
            actor = self._ensure_user(by_user_id, None, None)
            chat = self._ensure_chat(chat_id, chat_type, title=title)
            chat.bot_is_member = True
            update = self._enqueue(
                "my_chat_member", self._chat_member_update(chat, self.bot_user, "left", "member", actor)
            )
            return _deep(update)

    def remove_bot_from_group(self, chat_id: int, *, by_user_id: int) -> dict[str, Any]:
        with self._cond:
            actor = self._ensure_user(by_user_id, None, None)
            chat = self._chats[chat_id]
            chat.bot_is_member = False
            update = self._enqueue(
                "my_chat_member", self._chat_member_update(chat, self.bot_user, "member", "kicked", actor)
            )
            return _deep(update)

    def _chat_member_update(
        self, chat: _Chat, member: dict[str, Any], old: str, new: str, actor: dict[str, Any]
    ) -> dict[str, Any]:
        def member_json(status: str) -> dict[str, Any]:
            data: dict[str, Any] = {"status": status, "user": _deep(member)}
            if status == "kicked":
                data["until_date"] = 0
            return data

        return {
            "chat": chat.json(),
            "from": _deep(actor),
            "date": int(time.time()),
            "old_chat_member": member_json(old),
            "new_chat_member": member_json(new),
        }

    # ---------------------------------------------------------------- test control: updates

    def _enqueue(self, update_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, update_type: _deep(payload)}
        self._next_update_id += 1
        self._sent_updates.append(update)
        if update_type in self._allowed_updates:
            self._updates.append(update)
        else:
            self._dropped_updates.append(update)
        self._cond.notify_all()
        return update

    def _user_message(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        chat_type: str,
        chat_id: int | None,
        first_name: str | None,
        language_code: str | None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        user = self._ensure_user(user_id, first_name, language_code)
        if chat_type == "private":
            if chat_id not in (None, user_id):
                raise ValueError("a private chat's id is the user's id")
            chat = self._private_chat(user_id)
        else:
            if chat_id is None:
                raise ValueError(f"chat_id is required for chat_type={chat_type!r}")
            chat = self._ensure_chat(chat_id, chat_type)
        message_id = chat.next_message_id
        chat.next_message_id += 1
        data: dict[str, Any] = {
            "message_id": message_id,
            "from": _deep(user),
            "chat": chat.json(),
            "date": int(time.time()),
        }
        if reply_to_message_id is not None:
            target = chat.messages.get(reply_to_message_id)
            if target is None or target.deleted:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat.id}")
            replied = _deep(target.data)
            replied.pop("reply_to_message", None)
            data["reply_to_message"] = replied
        data.update(content)
        chat.messages[message_id] = _StoredMessage(
            chat_id=chat.id,
            message_id=message_id,
            from_bot=False,
            data=data,
            seq=len(self._records),
            kind=next(iter(content)) if content else "text",
        )
        self._enqueue("message", data)
        return _deep(data)

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
        language_code: str | None = None,
        first_name: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a text message; returns the Message dict.

        Without explicit ``entities`` Telegram's automatic entities are added (a leading ``/command``
        becomes a ``bot_command`` entity, URLs, mentions, hashtags, e-mails).  ``first_name`` and
        ``language_code`` default to the user's previous values ("Ana", "en" for new users).
        """
        if not text.strip(_SPACES):
            raise ValueError("Telegram clients cannot send empty messages")
        content: dict[str, Any] = {"text": text}
        found = _auto_entities(text) if entities is None else _deep(entities)
        if found:
            content["entities"] = found
        with self._cond:
            return self._user_message(
                user_id,
                content,
                chat_type=chat_type,
                chat_id=chat_id,
                first_name=first_name,
                language_code=language_code,
                reply_to_message_id=reply_to_message_id,
            )

    def _caption_content(self, caption: str | None, media_group_id: str | None) -> dict[str, Any]:
        content: dict[str, Any] = {}
        if caption:
            content["caption"] = caption
            found = _auto_entities(caption)
            if found:
                content["caption_entities"] = found
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return content

    def send_document(
        self,
        user_id: int,
        *,
        file_name: str,
        mime_type: str | None = None,
        file_size: int | None = None,
        content: bytes = b"%PDF-1.4\n% fake document\n",
        caption: str | None = None,
        media_group_id: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a file; its bytes are downloadable via getFile + file URL."""
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        with self._cond:
            stored = self._register_file(
                content, kind="document", file_size=file_size, file_name=file_name, mime_type=mime
            )
            document = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime,
                "file_size": stored.file_size,
            }
            message = {"document": document, **self._caption_content(caption, media_group_id)}
            return self._user_message(
                user_id, message, chat_type=chat_type, chat_id=chat_id, first_name=None, language_code=None
            )

    def send_photo(
        self,
        user_id: int,
        *,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9",
        width: int = 1280,
        height: int = 960,
        file_size: int | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a photo (Telegram delivers several sizes; the last one is the largest)."""
        with self._cond:
            small = self._register_file(content[:256], kind="photo", mime_type="image/jpeg")
            large = self._register_file(content, kind="photo", file_size=file_size, mime_type="image/jpeg")
            scale = 90 / max(width, height)
            photo = [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.file_unique_id,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": small.file_size,
                },
                {
                    "file_id": large.file_id,
                    "file_unique_id": large.file_unique_id,
                    "width": width,
                    "height": height,
                    "file_size": large.file_size,
                },
            ]
            message = {"photo": photo, **self._caption_content(caption, media_group_id)}
            return self._user_message(
                user_id, message, chat_type=chat_type, chat_id=chat_id, first_name=None, language_code=None
            )

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        contact_user_id: int | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user shares a contact; for "share my number" pass ``contact_user_id=user_id``."""
        with self._cond:
            owner = self._users.get(contact_user_id) if contact_user_id is not None else None
            contact: dict[str, Any] = {
                "phone_number": phone_number,
                "first_name": first_name or (owner or {}).get("first_name") or "Contact",
            }
            if last_name:
                contact["last_name"] = last_name
            if contact_user_id is not None:
                contact["user_id"] = contact_user_id
            return self._user_message(
                user_id,
                {"contact": contact},
                chat_type=chat_type,
                chat_id=chat_id,
                first_name=None,
                language_code=None,
            )

    def send_sticker(
        self, user_id: int, *, emoji: str = "👍", chat_type: str = "private", chat_id: int | None = None
    ) -> dict[str, Any]:
        with self._cond:
            stored = self._register_file(b"RIFF-fake-webp", kind="sticker", mime_type="image/webp")
            sticker = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
                "file_size": stored.file_size,
            }
            return self._user_message(
                user_id, {"sticker": sticker}, chat_type=chat_type, chat_id=chat_id, first_name=None, language_code=None
            )

    def send_location(
        self,
        user_id: int,
        latitude: float = 48.8566,
        longitude: float = 2.3522,
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        with self._cond:
            return self._user_message(
                user_id,
                {"location": {"latitude": latitude, "longitude": longitude}},
                chat_type=chat_type,
                chat_id=chat_id,
                first_name=None,
                language_code=None,
            )

    def send_voice(
        self,
        user_id: int,
        *,
        duration: int = 3,
        content: bytes = b"OggS\x00fake-voice",
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        with self._cond:
            stored = self._register_file(content, kind="voice", mime_type="audio/ogg")
            voice = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": stored.file_size,
            }
            return self._user_message(
                user_id, {"voice": voice}, chat_type=chat_type, chat_id=chat_id, first_name=None, language_code=None
            )

    def send_poll(
        self,
        user_id: int,
        question: str = "Which one?",
        options: Iterable[str] = ("A", "B"),
        *,
        chat_type: str = "private",
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        with self._cond:
            poll = {
                "id": str(self._id_rng.getrandbits(62)),
                "question": question,
                "options": [
                    {"text": option, "voter_count": 0, "persistent_id": str(index)}
                    for index, option in enumerate(options)
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": True,
                "members_only": False,
            }
            return self._user_message(
                user_id, {"poll": poll}, chat_type=chat_type, chat_id=chat_id, first_name=None, language_code=None
            )

    def edit_text(self, user_id: int, message_id: int, new_text: str, *, chat_id: int | None = None) -> dict[str, Any]:
        """The user edits one of their text messages; enqueues an ``edited_message`` update."""
        with self._cond:
            chat = self._chats.get(user_id if chat_id is None else chat_id)
            stored = chat.messages.get(message_id) if chat is not None else None
            if stored is None or stored.from_bot or stored.deleted or "text" not in stored.data:
                raise ValueError(f"user {user_id} has no text message {message_id} to edit")
            if stored.data["from"]["id"] != user_id:
                raise ValueError("users can only edit their own messages")
            stored.data["text"] = new_text
            found = _auto_entities(new_text)
            if found:
                stored.data["entities"] = found
            else:
                stored.data.pop("entities", None)
            stored.data["edit_date"] = int(time.time())
            stored.edited = True
            stored.edit_count += 1
            self._enqueue("edited_message", _deep(stored.data))
            return _deep(stored.data)

    def press(
        self,
        user_id: int,
        message_id: int,
        callback_data: str | None = None,
        *,
        button_text: str | None = None,
        chat_id: int | None = None,
        force: bool = False,
    ) -> str:
        """The user presses an inline button of a bot message; returns the callback query id.

        The button is looked up by ``callback_data`` (or by ``button_text``) in the message's *current*
        inline keyboard -- pressing a button that is not there raises ``ValueError`` unless
        ``force=True`` (then ``callback_data`` is sent as is).
        """
        with self._cond:
            user = self._ensure_user(user_id, None, None)
            chat = self._chats.get(user_id if chat_id is None else chat_id)
            stored = chat.messages.get(message_id) if chat is not None else None
            if chat is None or stored is None or stored.deleted or not stored.from_bot:
                raise ValueError(f"no bot message {message_id} in chat {user_id if chat_id is None else chat_id}")
            rows = (stored.data.get("reply_markup") or {}).get("inline_keyboard") or []
            buttons = [button for row in rows for button in row]
            if button_text is not None:
                match = next((b for b in buttons if b.get("text") == button_text and "callback_data" in b), None)
                if match is None and not force:
                    raise ValueError(f"no callback button {button_text!r}; buttons: {[b.get('text') for b in buttons]}")
                if match is not None:
                    callback_data = match["callback_data"]
            elif not force and not any(b.get("callback_data") == callback_data for b in buttons):
                raise ValueError(
                    f"message {message_id} has no button with callback_data {callback_data!r}; "
                    f"buttons: {[(b.get('text'), b.get('callback_data')) for b in buttons]}"
                )
            query_id = str(self._id_rng.getrandbits(63))
            query: dict[str, Any] = {
                "id": query_id,
                "from": _deep(user),
                "message": _deep(stored.data),
                "chat_instance": str(abs(hash((chat.id, self.bot_id))) % 10**18),
            }
            if callback_data is not None:
                query["data"] = callback_data
            self._callback_queries[query_id] = _CallbackQuery(
                id=query_id,
                user_id=user_id,
                chat_id=chat.id,
                message_id=message_id,
                data=callback_data,
                created=time.monotonic(),
            )
            self._enqueue("callback_query", query)
            return query_id

    def add_raw_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Enqueue an arbitrary update (an ``update_id`` is assigned when missing)."""
        with self._cond:
            update = _deep(update)
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
            kinds = [key for key in update if key != "update_id"]
            self._sent_updates.append(update)
            if kinds and kinds[0] not in self._allowed_updates:
                self._dropped_updates.append(update)
            else:
                self._updates.append(update)
            self._cond.notify_all()
            return _deep(update)

    # ---------------------------------------------------------------- test control: faults

    def fail_next(
        self,
        kind: str = "429",
        *,
        method: str | None = None,
        times: int = 1,
        retry_after: int = 1,
        error: tuple[int, str] | None = None,
    ) -> None:
        """Make the next ``times`` calls (of ``method``, or of any method) fail deterministically.

        ``kind`` is one of ``"429"``, ``"500"``, ``"502"``, ``"drop"``, ``"drop_after"``, ``"timeout"``
        (needs ``timeout_delay``) -- or pass ``error=(code, description)`` for a custom error.
        """
        if error is not None:
            kind = "error"
        elif kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self._cond:
            self._scheduled_faults.append(
                _Fault(kind=kind, method=method, times=times, retry_after=retry_after, error=error)
            )

    @property
    def count_429(self) -> int:
        """Number of 429 answers sent (random faults, ``fail_next`` and rate limiting)."""
        with self._lock:
            return self.stats["429_total"]

    # ---------------------------------------------------------------- observation

    @property
    def calls(self) -> list[Call]:
        """``(method, params)`` of every request so far (a copy)."""
        with self._lock:
            return [Call(record.method, _deep(record.params)) for record in self._records]

    @property
    def call_records(self) -> list[CallRecord]:
        with self._lock:
            return [dataclasses.replace(record, params=_deep(record.params)) for record in self._records]

    def calls_to(self, method: str, *, since: int = 0, ok: bool | None = None) -> list[CallRecord]:
        """Call records of ``method`` (case-insensitive) from index ``since`` on."""
        with self._lock:
            return [
                dataclasses.replace(record, params=_deep(record.params))
                for record in self._records[since:]
                if record.method.lower() == method.lower() and (ok is None or record.ok == ok)
            ]

    def mark(self) -> int:
        """Index of the next call record; pass it as ``since``/``count_after`` to the helpers."""
        with self._lock:
            return len(self._records)

    def updates_sent(self) -> list[dict[str, Any]]:
        """All updates created by the test (including ones dropped by ``allowed_updates``)."""
        with self._lock:
            return _deep(self._sent_updates)

    def dropped_updates(self) -> list[dict[str, Any]]:
        """Updates created while their type was not in the bot's ``allowed_updates`` (never delivered)."""
        with self._lock:
            return _deep(self._dropped_updates)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by the bot (getUpdates with a higher offset)."""
        with self._lock:
            return _deep(list(self._updates))

    @property
    def allowed_updates(self) -> frozenset[str]:
        with self._lock:
            return self._allowed_updates

    @property
    def webhook(self) -> dict[str, Any]:
        with self._lock:
            return _deep(self._webhook)

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """The bot's messages in ``chat_id`` (oldest first), as they are now."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [
                self._snapshot(stored)
                for _id, stored in sorted(chat.messages.items())
                if stored.from_bot and (include_deleted or not stored.deleted)
            ]

    def last_message(self, chat_id: int) -> BotMessage | None:
        found = self.messages(chat_id)
        return found[-1] if found else None

    def history(self, chat_id: int) -> list[dict[str, Any]]:
        """Every non-deleted message of the chat (user and bot), as Message dicts."""
        with self._lock:
            chat = self._chats.get(chat_id)
            if chat is None:
                return []
            return [_deep(stored.data) for _id, stored in sorted(chat.messages.items()) if not stored.deleted]

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard currently shown in the chat (last ReplyKeyboardMarkup not removed)."""
        with self._lock:
            chat = self._chats.get(chat_id)
            return _deep(chat.reply_keyboard) if chat is not None else None

    def _new_bot_messages(self, chat_id: int | None, since: int) -> list[BotMessage]:
        chats = (
            list(self._chats.values()) if chat_id is None else [self._chats[chat_id]] if chat_id in self._chats else []
        )
        found = [
            self._snapshot(stored)
            for chat in chats
            for stored in chat.messages.values()
            if stored.from_bot and stored.seq >= since
        ]
        return sorted(found, key=lambda message: (message.seq, message.message_id))

    def bot_texts_since(self, mark: int, chat_id: int | None = None) -> list[str]:
        """Texts (or captions) of the messages the bot sent since ``mark``, in sending order."""
        with self._lock:
            return [m.shown_text or "" for m in self._new_bot_messages(chat_id, mark)]

    def messages_since(self, mark: int, chat_id: int | None = None) -> list[BotMessage]:
        with self._lock:
            return self._new_bot_messages(chat_id, mark)

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        """How the bot answered a callback query (``None`` if not answered yet)."""
        with self._lock:
            query = self._callback_queries.get(query_id)
            return _deep(query.answer) if query is not None else None

    def callback_answer_delay(self, query_id: str) -> float | None:
        """Seconds from the press to the bot's accepted answer (``None`` if not answered)."""
        with self._lock:
            query = self._callback_queries.get(query_id)
            return query.answered_after if query is not None else None

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command list stored for exactly this scope and language (like getMyCommands)."""
        with self._lock:
            params = {"language_code": language_code}
            if scope is not None:
                params["scope"] = json.dumps(scope)
            return _deep(self._commands.get((self._command_scope(params), language_code), []))

    def description(self, kind: str = "description", language_code: str = "") -> str:
        """Stored ``description``/``short_description``/``name`` for a language."""
        with self._lock:
            return self._descriptions.get((kind, language_code), "")

    # --- waiting

    def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Block until ``predicate()`` is truthy and return its value (``TimeoutError`` otherwise).

        Only for bots running in another thread/process: this blocks the calling thread.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(self._timeout_message(timeout))
                self._cond.wait(min(remaining, 0.05))

    async def async_wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Like :meth:`wait_until` but yields to the event loop (polls every 10 ms)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(self._timeout_message(timeout))
            await asyncio.sleep(0.01)

    def _bot_messages_predicate(
        self, chat_id: int | None, count_after: int, count: int
    ) -> Callable[[], list[BotMessage]]:
        def predicate() -> list[BotMessage]:
            found = self._new_bot_messages(chat_id, count_after)
            return found if len(found) >= count else []

        return predicate

    def wait_for_message(
        self, chat_id: int | None, count_after: int, timeout: float = 5.0, *, count: int = 1
    ) -> list[BotMessage]:
        """Block until the bot sent ``count`` messages to ``chat_id`` since the mark ``count_after``.

        Returns all bot messages sent to the chat since the mark (``chat_id=None``: any chat).
        """
        return self.wait_until(self._bot_messages_predicate(chat_id, count_after, count), timeout)

    async def async_wait_for_message(
        self, chat_id: int | None, count_after: int, timeout: float = 5.0, *, count: int = 1
    ) -> list[BotMessage]:
        return await self.async_wait_until(self._bot_messages_predicate(chat_id, count_after, count), timeout)

    def _call_predicate(self, method: str, since: int, ok: bool | None) -> Callable[[], CallRecord | None]:
        def predicate() -> CallRecord | None:
            for record in self._records[since:]:
                finished = record.status is not None or record.fault is not None
                if record.method.lower() == method.lower() and finished and (ok is None or record.ok == ok):
                    return dataclasses.replace(record, params=_deep(record.params))
            return None

        return predicate

    def wait_for_call(self, method: str, since: int = 0, timeout: float = 5.0, *, ok: bool | None = None) -> CallRecord:
        """Block until a (finished) call of ``method`` appears after ``since``."""
        return self.wait_until(self._call_predicate(method, since, ok), timeout)

    async def async_wait_for_call(
        self, method: str, since: int = 0, timeout: float = 5.0, *, ok: bool | None = None
    ) -> CallRecord:
        return await self.async_wait_until(self._call_predicate(method, since, ok), timeout)

    def _timeout_message(self, timeout: float) -> str:
        with self._lock:
            recent = [f"{r.method}({r.status}{', ' + r.error if r.error else ''})" for r in self._records[-10:]]
            pending = len(self._updates)
        return f"condition not met within {timeout}s; last calls: {recent}; pending updates: {pending}"

    def __repr__(self) -> str:
        state = f"{self.url}" if self._server is not None else "stopped"
        return f"<FakeBotAPI {state} calls={len(self._records)}>"
