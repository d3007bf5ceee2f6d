"""A fake Telegram Bot API server on 127.0.0.1, for tests and the channel benchmark.

The real python-telegram-bot client talks to it over real HTTP (`base_url=fake.base_url`). It serves
queued updates to getUpdates (long polling, woken as soon as an update is pushed), records every
request and every message the bot sends per chat, and can be told to fail requests for a chat the
way Telegram does (429 with retry_after, 403 for a user who blocked the bot, 400 chat not found, 5xx)
or to throttle the whole bot beyond N messages per second (a token bucket, or a strict sliding second:
`rate_window="sliding"`); `delivered()` counts the messages each chat got, for exactly-once checks.

    async with FakeTelegram() as fake:
        app = build_application(router, settings, base_url=fake.base_url)
        fake.push_text(1001, "làm căn cước mất bao lâu")
        [answer] = await fake.wait_messages(1001, 1)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

TOKEN = "123456789:TEST-token-for-the-fake-server"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Một cửa", "username": "motcua_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
MAX_TEXT = 4096  # telegram.constants.MessageLimit.MAX_TEXT_LENGTH, checked like the real server does
MAX_CALLBACK_DATA = 64  # bytes
_SENDS = ("sendmessage", "senddocument")  # the requests counted against the bot's messages per second
# Parameters PTB sends as JSON inside form fields.
_JSON_FIELDS = {"reply_markup", "commands", "allowed_updates", "entities", "link_preview_options", "scope"}

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "429": (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                  "parameters": {"retry_after": 1}}),
    "403": (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    "chat_not_found": (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
    "500": (500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}),
    "502": (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
}


@dataclass
class Sent:
    """One message the bot sent (or edited) in a chat, as the user would see it."""

    chat_id: int
    message_id: int
    text: str
    reply_markup: dict | None
    at: float  # time.perf_counter() when the request arrived
    method: str = "sendMessage"
    document: str | None = None  # file name, for sendDocument

    @property
    def buttons(self) -> list[str]:
        """The callback data of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b.get("callback_data", "") for row in rows for b in row]

    @property
    def labels(self) -> list[str]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b.get("text", "") for row in rows for b in row]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class _Failure:
    kind: str
    remaining: float  # math.inf: until cleared


@dataclass
class FakeTelegram:
    token: str = TOKEN
    long_poll_cap: float = 1.0  # getUpdates waits at most this long (not the client's 10-50 s) so tests end fast
    rate_limit: int | None = None  # 429 beyond this many sent messages per second, bot-wide (benchmark)
    # "bucket": bursts of `rate_limit`, then `rate_limit` a second; "sliding": never more than `rate_limit`
    # in any one second (stricter), with retry_after the whole seconds until the window frees up.
    rate_window: str = "bucket"

    calls: list[Call] = field(default_factory=list)
    sent: dict[int, list[Sent]] = field(default_factory=lambda: defaultdict(list))
    commands: list[dict] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    pushed_at: dict[int, float] = field(default_factory=dict)  # update_id -> perf_counter when pushed
    throttled: int = 0  # 429s served by the global rate limit

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, data)
        self._failures: dict[int, list[_Failure]] = defaultdict(list)
        self._tokens = float(self.rate_limit or 0)
        self._window: deque[float] = deque()  # accepted sends in the last second ("sliding")
        self._refilled = time.monotonic()
        self._changed = asyncio.Event()  # set (and replaced) on every request: wakes `wait_for`
        self._new_update = asyncio.Event()  # set (and replaced) on every push: wakes a long poll
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, backlog=1024).start()
        return self

    async def stop(self) -> None:
        self._new_update.set()  # release any long poll still waiting
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # ------------------------------------------------------------------ what users do

    @staticmethod
    def user(user_id: int) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": "Người dân", "language_code": "vi"}

    @staticmethod
    def chat(chat_id: int) -> dict:
        return {"id": chat_id, "type": "private", "first_name": "Người dân"}

    def _user_message(self, chat_id: int, user_id: int | None, **content) -> dict:
        return {"message_id": next(self._message_ids), "date": int(time.time()), "chat": self.chat(chat_id),
                "from": self.user(user_id or chat_id), **content}

    def message_update(self, chat_id: int, user_id: int | None = None, **content) -> dict:
        """An update for any user message: `content` is its Bot API fields (text, photo, document, ...)."""
        return {"update_id": next(self._update_ids), "message": self._user_message(chat_id, user_id, **content)}

    def text_update(self, chat_id: int, text: str, user_id: int | None = None) -> dict:
        """An update for a text message; a leading /command carries its bot_command entity, as Telegram sends it."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}]
        return {"update_id": next(self._update_ids), "message": self._user_message(chat_id, user_id, **content)}

    def callback_update(self, chat_id: int, data: str, user_id: int | None = None, message_id: int | None = None) -> dict:
        """A press on an inline button under the bot's message `message_id` (default: its last message with buttons)."""
        under = self._message_for_callback(chat_id, message_id)
        query = {"id": str(next(self._callback_ids)), "from": self.user(user_id or chat_id), "chat_instance": f"ci-{chat_id}",
                 "data": data, "message": under}
        return {"update_id": next(self._update_ids), "callback_query": query}

    def document_update(self, chat_id: int, name: str, data: bytes, user_id: int | None = None,
                        mime_type: str = "application/octet-stream", caption: str | None = None,
                        file_size: int | None = None) -> dict:
        """A document the user sends; its bytes are served by getFile and the file download URL."""
        file_id = f"file-{len(self._files) + 1}"
        self._files[file_id] = (f"documents/{file_id}-{name}", data)
        document = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": name, "mime_type": mime_type,
                    "file_size": len(data) if file_size is None else file_size}
        content: dict[str, Any] = {"document": document}
        if caption:
            content["caption"] = caption
        return {"update_id": next(self._update_ids), "message": self._user_message(chat_id, user_id, **content)}

    def push(self, update: dict) -> dict:
        """Queue an update for the next getUpdates."""
        self.pushed_at[update["update_id"]] = time.perf_counter()
        self._updates.append(update)
        self._new_update.set()
        self._new_update = asyncio.Event()
        return update

    def push_text(self, chat_id: int, text: str, user_id: int | None = None) -> dict:
        return self.push(self.text_update(chat_id, text, user_id))

    def push_callback(self, chat_id: int, data: str, user_id: int | None = None, message_id: int | None = None) -> dict:
        return self.push(self.callback_update(chat_id, data, user_id, message_id))

    def push_document(self, chat_id: int, name: str, data: bytes, user_id: int | None = None, **kwargs) -> dict:
        return self.push(self.document_update(chat_id, name, data, user_id, **kwargs))

    # ------------------------------------------------------------------ failures

    def fail_next(self, chat_id: int, kind: str = "429", count: float = 1) -> None:
        """Answer the next `count` requests aimed at this chat with an error: "429", "403", "chat_not_found",
        "500" or "502" (count=math.inf: until `clear_failures`)."""
        if kind not in ERRORS:
            raise ValueError(f"unknown failure {kind!r}; one of {sorted(ERRORS)}")
        self._failures[chat_id].append(_Failure(kind, count))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every message to them is refused with 403."""
        self.fail_next(chat_id, "403", math.inf)

    def clear_failures(self, chat_id: int) -> None:
        self._failures.pop(chat_id, None)

    # ------------------------------------------------------------------ what tests read

    def messages(self, chat_id: int) -> list[Sent]:
        return list(self.sent.get(chat_id, []))

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()
                and (chat_id is None or _int(c.params.get("chat_id")) == chat_id)]

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    async def wait_messages(self, chat_id: int, count: int, timeout: float = 30.0) -> list[Sent]:
        """Wait until the bot has sent `count` messages to the chat; returns them (fails on timeout)."""
        await self.wait_for(lambda: len(self.sent.get(chat_id, [])) >= count, timeout,
                            lambda: f"chat {chat_id}: {len(self.sent.get(chat_id, []))} of {count} messages")
        return self.messages(chat_id)

    async def wait_for(self, condition, timeout: float = 30.0, what=lambda: "condition") -> None:
        """Wait until `condition()` holds, re-checking whenever the bot calls the server."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what()}")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ the HTTP side

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params, time.perf_counter())
        self.calls.append(call)
        self._wake()
        handler = getattr(self, "_m_" + method.lower(), None)
        if handler is None:
            call.status = 404
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        chat_id = _int(params.get("chat_id"))
        failure = self._failure_for(chat_id) if chat_id is not None else None
        retry_after = None
        if failure is None and method.lower() in ("sendmessage", "senddocument"):
            retry_after = self._throttle()
            if retry_after is not None:
                self.throttled += 1
                failure = "429"
        if failure is not None:
            status, body = ERRORS[failure]
            if retry_after is not None:
                body = {**body, "description": f"Too Many Requests: retry after {retry_after}",
                        "parameters": {"retry_after": retry_after}}
            call.status = status
            self._wake()
            return web.json_response(body, status=status)
        result = await handler(params)
        if isinstance(result, web.Response):
            call.status = result.status
            return result
        return web.json_response({"ok": True, "result": result})

    def _failure_for(self, chat_id: int) -> str | None:
        queue = self._failures.get(chat_id)
        while queue:
            failure = queue[0]
            if failure.remaining <= 0:
                queue.pop(0)
                continue
            failure.remaining -= 1
            return failure.kind
        return None

    def _throttle(self) -> int | None:
        """None when this send is within the rate limit; otherwise the retry_after to answer with."""
        if self.rate_window != "sliding":
            return 1 if self._over_rate_limit() else None
        if not self.rate_limit:
            return None
        now = time.monotonic()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            return max(1, math.ceil(self._window[0] + 1.0 - now))
        self._window.append(now)
        return None

    def delivered(self, method: str = "sendMessage") -> dict[int, int]:
        """How many messages each chat received (for exactly-once checks)."""
        return {chat_id: n for chat_id, messages in self.sent.items()
                if (n := sum(1 for m in messages if m.method == method))}

    def send_times(self, *, accepted: bool = False) -> list[float]:
        """When each of the bot's messages (sendMessage, sendDocument) reached the server, in order; with
        `accepted`, only those answered 200 (else refused ones count too: they are the bot's requests)."""
        return sorted(c.at for c in self.calls if c.method.lower() in _SENDS and (c.status == 200 or not accepted))

    def peak_per_second(self, *, accepted: bool = False, since: float | None = None) -> int:
        """The most messages the bot sent in any one second (a sliding window, as strict as a server can count)."""
        times = [t for t in self.send_times(accepted=accepted) if since is None or t >= since]
        peak, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    def per_second(self, *, accepted: bool = False) -> list[int]:
        """The bot's messages in each whole second from its first one (the counter a dashboard would show)."""
        times = self.send_times(accepted=accepted)
        counts = [0] * (int(times[-1] - times[0]) + 1 if times else 0)
        for at in times:
            counts[int(at - times[0])] += 1
        return counts

    def _over_rate_limit(self) -> bool:
        """A token bucket: bursts of `rate_limit` messages, then `rate_limit` per second (how the ~30 msg/s
        of the Bot API FAQ is commonly read, and what PTB's AIORateLimiter keeps to)."""
        if not self.rate_limit:
            return False
        now = time.monotonic()
        self._tokens = min(float(self.rate_limit), self._tokens + (now - self._refilled) * self.rate_limit)
        self._refilled = now
        if self._tokens < 1:
            return True
        self._tokens -= 1
        return False

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for file_path, data in self._files.values():
            if file_path == path:
                self.calls.append(Call("download", {"path": path}, time.perf_counter()))
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)

    # ------------------------------------------------------------------ Bot API methods

    async def _m_getme(self, params: dict) -> dict:
        return BOT_USER

    async def _m_getupdates(self, params: dict) -> list[dict]:
        offset = _int(params.get("offset")) or 0
        limit = min(_int(params.get("limit")) or 100, 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            try:
                await asyncio.wait_for(self._new_update.wait(), min(timeout, self.long_poll_cap))
            except TimeoutError:
                pass
        return self._updates[:limit]

    def _bad(self, description: str) -> web.Response:
        return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}, status=400)

    def _check_markup(self, markup: dict | None) -> str | None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                    return "BUTTON_DATA_INVALID"
                if not button.get("text"):
                    return "text buttons are unallowed in the inline keyboard"
        return None

    def _record(self, chat_id: int, text: str, markup: dict | None, method: str, document: str | None = None) -> dict:
        message_id = next(self._message_ids)
        self.sent[chat_id].append(Sent(chat_id, message_id, text, markup, time.perf_counter(), method, document))
        self._wake()
        return self._bot_message(chat_id, message_id, text, markup)

    def _bot_message(self, chat_id: int, message_id: int, text: str, markup: dict | None) -> dict:
        message = {"message_id": message_id, "date": int(time.time()), "chat": self.chat(chat_id), "from": BOT_USER,
                   "text": text}
        if markup:
            message["reply_markup"] = markup
        return message

    def _message_for_callback(self, chat_id: int, message_id: int | None) -> dict:
        sent = self.sent.get(chat_id, [])
        chosen = next((m for m in reversed(sent) if (m.message_id == message_id if message_id else m.reply_markup)), None)
        if chosen is None:
            return self._bot_message(chat_id, message_id or 1, "…", None)
        return self._bot_message(chat_id, chosen.message_id, chosen.text, chosen.reply_markup)

    async def _m_sendmessage(self, params: dict) -> dict | web.Response:
        chat_id, text = _int(params.get("chat_id")), params.get("text") or ""
        if not text.strip():
            return self._bad("message text is empty")
        if len(text) > MAX_TEXT:
            return self._bad("message is too long")
        problem = self._check_markup(params.get("reply_markup"))
        if problem:
            return self._bad(problem)
        return self._record(chat_id, text, params.get("reply_markup"), "sendMessage")

    async def _m_editmessagetext(self, params: dict) -> dict | web.Response:
        chat_id, message_id, text = _int(params.get("chat_id")), _int(params.get("message_id")), params.get("text") or ""
        if len(text) > MAX_TEXT or not text.strip():
            return self._bad("message text is empty" if not text.strip() else "message is too long")
        for message in self.sent.get(chat_id, []):
            if message.message_id == message_id:
                message.text, message.reply_markup, message.method = text, params.get("reply_markup"), "editMessageText"
                self._wake()
                return self._bot_message(chat_id, message_id, text, message.reply_markup)
        return self._bad("message to edit not found")

    async def _m_editmessagereplymarkup(self, params: dict) -> dict | web.Response:
        chat_id, message_id = _int(params.get("chat_id")), _int(params.get("message_id"))
        for message in self.sent.get(chat_id, []):
            if message.message_id == message_id:
                message.reply_markup = params.get("reply_markup")
                self._wake()
                return self._bot_message(chat_id, message_id, message.text, message.reply_markup)
        return self._bad("message to edit not found")

    async def _m_answercallbackquery(self, params: dict) -> bool:
        self._wake()
        return True

    async def _m_setmycommands(self, params: dict) -> bool:
        self.commands = params.get("commands") or []
        return True

    async def _m_getmycommands(self, params: dict) -> list[dict]:
        return self.commands

    async def _m_setwebhook(self, params: dict) -> bool:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token")}
        return True

    async def _m_deletewebhook(self, params: dict) -> bool:
        self.webhook = {}
        return True

    async def _m_getwebhookinfo(self, params: dict) -> dict:
        return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _m_getfile(self, params: dict) -> dict | web.Response:
        file_id = params.get("file_id")
        if file_id not in self._files:
            return self._bad("invalid file_id")
        path, data = self._files[file_id]
        if len(data) > 20 * 1024 * 1024:
            return self._bad("file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data), "file_path": path}

    async def _m_senddocument(self, params: dict) -> dict:
        document = params.get("document")
        name = getattr(document, "filename", None) or str(document)
        return self._record(_int(params.get("chat_id")), params.get("caption") or "", None, "sendDocument", document=name)

    async def _m_close(self, params: dict) -> bool:
        return True

    async def _m_logout(self, params: dict) -> bool:
        return True


async def _params(request: web.Request) -> dict[str, Any]:
    """The request's parameters, whether sent as a query string, a form, multipart or JSON."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.read()
        if body:
            params.update(json.loads(body))
        return params
    if request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str) and key in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            params[key] = value
    return params


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
