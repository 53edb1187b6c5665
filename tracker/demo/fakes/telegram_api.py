"""A fake Telegram Bot API on 127.0.0.1 that python-telegram-bot talks to through ``base_url``.

It answers the methods callwatch uses (getMe, sendMessage, getUpdates, answerCallbackQuery,
editMessageReplyMarkup, setMyCommands, deleteWebhook) the way the real API does, records
every sent message, and checks what a real server would refuse: text over 4096 characters
and Telegram HTML that would not parse. Fault switches make it answer 429 with
``parameters.retry_after``, 403 for a blocked chat, 400 "chat not found" for a chat that
does not exist (a wrong id, a deleted group), or ``migrate_to_chat_id`` for a group that
became a supergroup. With ``enforce_limits`` it applies Telegram's flood limits (30
messages per second overall, 1 per second per chat, 20 per minute per group) and counts
every 429 our own pacing provoked in ``throttled``.

Point a bot at it with ``telegram.Bot(token, base_url=fake.base_url)``.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tracker.demo.fakes._server import FakeServer, Reply, Request

TEXT_LIMIT = 4096
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                 "tg-spoiler", "a", "tg-emoji", "code", "pre", "blockquote"}
_HTML_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z-]*)((?:\s+[a-zA-Z-]+=\"[^\"<>]*\")*)\s*>"  # a tag
    r"|&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);"  # an entity Telegram knows
    r"|[<>&]"  # a bare special character: the real API refuses these
)


class HtmlError(ValueError):
    """Text the real Bot API would refuse with "can't parse entities"."""


def parse_telegram_html(markup: str) -> str:
    """The visible text of Telegram HTML, raising HtmlError where the real API would refuse it."""
    stack: list[str] = []
    visible: list[str] = []
    position = 0
    for match in _HTML_TOKEN.finditer(markup):
        visible.append(markup[position:match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("<", ">", "&"):
            raise HtmlError(f"can't parse entities: unescaped {token!r} at byte offset {match.start()}")
        if token.startswith("&"):
            visible.append(html.unescape(token))
            continue
        closing, name = match.group(1), match.group(2).lower()
        if name not in _ALLOWED_TAGS:
            raise HtmlError(f"can't parse entities: unsupported start tag \"{name}\"")
        if closing:
            if not stack or stack[-1] != name:
                raise HtmlError(f"can't parse entities: can't find end tag corresponding to \"{name}\"")
            stack.pop()
        else:
            stack.append(name)
    visible.append(markup[position:])
    if stack:
        raise HtmlError(f"can't parse entities: can't find end tag corresponding to \"{stack[-1]}\"")
    return "".join(visible)


@dataclass(frozen=True)
class SentMessage:
    """One message the fake accepted."""

    chat_id: str
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_id: int
    at: float


class FakeTelegram(FakeServer):
    """A Bot API stand-in; see the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",  # noqa: S107  # a fake server's fake token
        *,
        enforce_limits: bool = False,
        slack: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.token = token
        self.enforce_limits = enforce_limits
        self.slack = slack
        self.clock = clock
        self.sent: list[SentMessage] = []
        self.rejected: list[tuple[str, str]] = []  # (method, description) of every error answer
        self.blocked: set[str] = set()
        self.unknown: set[str] = set()
        self.migrated: dict[str, int] = {}
        self.throttled = 0  # 429s provoked by breaking the flood limits (our pacing's fault)
        self.callback_answers: list[dict[str, Any]] = []
        self.markup_edits: list[dict[str, Any]] = []
        self.commands: list[dict[str, Any]] = []
        #: the command menus registered per ``language_code`` (setMyCommands with one)
        self.commands_by_language: dict[str, list[dict[str, Any]]] = {}
        self.webhook_deleted = 0
        #: called in the server thread with each accepted message before the answer goes out,
        #: so a test can look at the sender's state at that moment
        self.on_send: Callable[[SentMessage], None] | None = None
        self._floods: deque[tuple[str | None, int]] = deque()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._arrivals: deque[float] = deque()
        self._chat_arrivals: dict[str, deque[float]] = {}
        self._state = threading.Condition()

    @property
    def base_url(self) -> str:
        """What to pass as python-telegram-bot's ``base_url`` (the token is appended)."""
        return f"{self.url}/bot"

    # --- fault switches -------------------------------------------------------------------

    def flood(self, retry_after: int, chat_id: str | int | None = None, times: int = 1) -> None:
        """Answer the next ``times`` sendMessage calls (to ``chat_id``, or any) with 429."""
        with self._state:
            self._floods.extend([(None if chat_id is None else str(chat_id), retry_after)] * times)

    def block(self, chat_id: str | int) -> None:
        """The user blocked the bot: every sendMessage to the chat gets 403."""
        self.blocked.add(str(chat_id))

    def forget(self, chat_id: str | int) -> None:
        """The chat does not exist (a wrong id, a deleted group): sendMessage gets 400."""
        self.unknown.add(str(chat_id))

    def migrate(self, chat_id: str | int, new_chat_id: int) -> None:
        """The group became a supergroup: sendMessage to the old id answers migrate_to_chat_id."""
        self.migrated[str(chat_id)] = new_chat_id

    # --- updates for bot command tests ----------------------------------------------------

    def queue_command(self, chat_id: int, text: str, user_id: int | None = None,
                      language_code: str | None = None) -> int:
        """Queue a message update (a /command when ``text`` starts with a slash), from a user
        whose Telegram app is in ``language_code`` (Telegram leaves it out when unknown)."""
        message = self._message(chat_id, text, user_id, language_code)
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._queue({"message": message})

    def queue_callback(self, chat_id: int, data: str, message_id: int = 1,
                       user_id: int | None = None, language_code: str | None = None) -> int:
        """Queue a press of an inline button carrying callback ``data``."""
        message = self._message(chat_id, "(alert)", None)
        message["message_id"] = message_id
        return self._queue({"callback_query": {
            "id": f"cb{next(self._update_ids)}",
            "from": self._user(user_id or chat_id, language_code),
            "chat_instance": str(chat_id), "data": data, "message": message}})

    def _queue(self, update: dict[str, Any]) -> int:
        with self._state:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **update})
            self._state.notify_all()
            return update_id

    @staticmethod
    def _user(user_id: int, language_code: str | None = None) -> dict[str, Any]:
        user = {"id": abs(user_id), "is_bot": False, "first_name": f"User {abs(user_id)}"}
        return {**user, "language_code": language_code} if language_code else user

    def _message(self, chat_id: int, text: str, user_id: int | None,
                 language_code: str | None = None) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self._chat(chat_id), "from": self._user(user_id or chat_id, language_code),
                "text": text}

    @staticmethod
    def _chat(chat_id: int | str) -> dict[str, Any]:
        try:
            number = int(chat_id)
        except ValueError:
            return {"id": -1001, "type": "channel", "username": str(chat_id).lstrip("@")}
        if number > 0:
            return {"id": number, "type": "private", "first_name": f"User {number}"}
        return {"id": number, "type": "supergroup" if str(number).startswith("-100") else "group",
                "title": f"Group {number}"}

    # --- the API --------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        prefix = f"/bot{self.token}/"
        if not request.path.startswith(prefix):
            return self._error(404, "Not Found", "?")
        method = request.path[len(prefix):]
        params = self._params(request)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found", method)
        result: Reply = handler(params)
        return result

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if not request.body:
            return {k: v[-1] for k, v in request.query.items()}
        if "json" in content_type:
            value = json.loads(request.body)
            return value if isinstance(value, dict) else {}
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        return {k: v[-1] for k, v in form.items()}

    @staticmethod
    def _json_param(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def _ok(self, result: Any) -> Reply:
        return Reply.json({"ok": True, "result": result})

    def _error(self, status: int, description: str, method: str,
               parameters: dict[str, Any] | None = None) -> Reply:
        with self._state:
            self.rejected.append((method, description))
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return Reply.json(body, status=status)

    def _api_getMe(self, params: dict[str, Any]) -> Reply:
        bot_id = int(self.token.split(":")[0]) if self.token.split(":")[0].isdigit() else 1
        return self._ok({"id": bot_id, "is_bot": True, "first_name": "callwatch",
                         "username": "callwatch_test_bot", "can_join_groups": True,
                         "can_read_all_group_messages": False, "supports_inline_queries": False})

    def _api_deleteWebhook(self, params: dict[str, Any]) -> Reply:
        with self._state:
            self.webhook_deleted += 1
        return self._ok(True)

    def _api_setMyCommands(self, params: dict[str, Any]) -> Reply:
        commands = list(self._json_param(params.get("commands", "[]")))
        with self._state:
            if params.get("language_code"):
                self.commands_by_language[str(params["language_code"])] = commands
            else:
                self.commands = commands
        return self._ok(True)

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Reply:
        with self._state:
            self.callback_answers.append(params)
        return self._ok(True)

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Reply:
        edit = {**params, "reply_markup": self._json_param(params.get("reply_markup"))}
        with self._state:
            self.markup_edits.append(edit)
        chat_id = params.get("chat_id", "0")
        return self._ok({"message_id": int(params.get("message_id", 0)), "date": int(time.time()),
                         "chat": self._chat(chat_id), "text": "(edited)"})

    def _api_getUpdates(self, params: dict[str, Any]) -> Reply:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), 0.5)  # long polling, kept short
        deadline = time.monotonic() + wait
        with self._state:
            while True:
                # Confirming an offset forgets the updates before it, as the real API does.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    return self._ok(self._updates[:limit])
                self._state.wait(deadline - time.monotonic())

    def _api_sendMessage(self, params: dict[str, Any]) -> Reply:
        chat_id = str(params.get("chat_id", ""))
        text = str(params.get("text", ""))
        parse_mode = params.get("parse_mode")
        with self._state:
            flood = next((f for f in self._floods if f[0] in (None, chat_id)), None)
            if flood is not None:
                self._floods.remove(flood)
        if flood is not None:
            return self._error(429, f"Too Many Requests: retry after {flood[1]}", "sendMessage",
                               {"retry_after": flood[1]})
        if chat_id in self.migrated:
            return self._error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                               "sendMessage", {"migrate_to_chat_id": self.migrated[chat_id]})
        if chat_id in self.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user", "sendMessage")
        if chat_id in self.unknown:
            return self._error(400, "Bad Request: chat not found", "sendMessage")
        if not chat_id:
            return self._error(400, "Bad Request: chat_id is empty", "sendMessage")
        visible = text
        if parse_mode == "HTML":
            try:
                visible = parse_telegram_html(text)
            except HtmlError as exc:
                return self._error(400, f"Bad Request: {exc}", "sendMessage")
        if not visible.strip():
            return self._error(400, "Bad Request: message text is empty", "sendMessage")
        if len(visible.encode("utf-16-le")) // 2 > TEXT_LIMIT:  # counted after parsing, as Telegram does
            return self._error(400, "Bad Request: message is too long", "sendMessage")
        if self.enforce_limits and (retry := self._over_limit(chat_id)) is not None:
            return self._error(429, f"Too Many Requests: retry after {retry}", "sendMessage",
                               {"retry_after": retry})
        markup = self._json_param(params.get("reply_markup"))
        with self._state:
            message_id = next(self._message_ids)
            sent = SentMessage(chat_id, text, parse_mode, markup or None, message_id, self.clock())
            self.sent.append(sent)
        if self.on_send is not None:
            self.on_send(sent)
        return self._ok({"message_id": message_id, "date": int(time.time()),
                         "chat": self._chat(chat_id), "text": visible})

    def _over_limit(self, chat_id: str) -> int | None:
        """Apply the flood limits; a violation is counted in ``throttled`` and answered 429."""
        now = self.clock()
        with self._state:
            overall = self._arrivals
            while overall and overall[0] <= now - (1.0 - self.slack):
                overall.popleft()
            chat = self._chat_arrivals.setdefault(chat_id, deque())
            is_group = chat_id.startswith("-")
            window = 60.0 if is_group else 1.0
            while chat and chat[0] <= now - (window - self.slack):
                chat.popleft()
            too_many_overall = len(overall) >= 30
            too_fast_chat = bool(chat) and now - chat[-1] < 1.0 - self.slack
            too_many_group = is_group and len(chat) >= 20
            if too_many_overall or too_fast_chat or too_many_group:
                self.throttled += 1
                return 1 if not too_many_group else 10
            overall.append(now)
            chat.append(now)
            return None
