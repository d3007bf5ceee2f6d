"""A fake Zalo Bot API server on 127.0.0.1 for end-to-end tests of the Zalo channel.

It speaks the documented API (https://bot.zaloplatforms.com/docs): `/bot<TOKEN>/<method>` over GET or
POST with JSON, form or query parameters; answers `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": ...}`. It records every request, keeps the text
messages each chat received, queues updates for `getUpdates` (one update per call, as the docs show;
an empty wait ends with error 408, as the real server does) and lets a test inject failures:
a 429 (with or without a retry delay), a 5xx, a 403 for one chat, or an error carried in the body of an
HTTP 200 response.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_TEXT = 2000  # sendMessage accepts 1 to 2000 characters


@dataclass
class Recorded:
    """One request the fake received, and the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    error_code: int | None = None


@dataclass
class Failure:
    """An injected failure: the next `times` calls of `method` (for `chat_id`, if given) fail."""

    method: str
    status: int
    times: int = 1
    chat_id: str | None = None
    retry_after: float | None = None
    in_body: bool = False  # answer HTTP 200 with {"ok": false, "error_code": status}
    description: str = "Injected failure"


@dataclass
class FakeZalo:
    token: str = "123456789:test-token"
    poll_cap: float = 2.0  # the longest a getUpdates call waits, whatever timeout it asks for
    requests: list[Recorded] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    blocked: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str = ""

    def __post_init__(self) -> None:
        self._updates: asyncio.Queue[dict] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What ZALO_API_BASE_URL would be set to (the client appends /bot<TOKEN>/<method>)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeZalo:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the random free port the OS picked
        self._closing.clear()
        return self

    async def stop(self) -> None:
        self._closing.set()  # release hanging long polls at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ test helpers

    def push(self, update: dict) -> None:
        """Queue a raw update (the `result` object) for the next getUpdates."""
        self._updates.put_nowait(update)

    def push_text(self, chat_id: str, text: str, user_id: str | None = None, name: str = "Người dân") -> None:
        self.push(self.update("message.text.received", chat_id, text=text, user_id=user_id, name=name))

    def push_event(self, event_name: str, chat_id: str, **fields: Any) -> None:
        self.push(self.update(event_name, chat_id, **fields))

    def update(self, event_name: str, chat_id: str, *, user_id: str | None = None, name: str = "Người dân",
               **fields: Any) -> dict:
        """An update as the platform sends it (the `result` object of getUpdates or of a webhook call)."""
        message = {
            "from": {"id": user_id or chat_id, "display_name": name, "is_bot": False},
            "chat": {"id": chat_id, "chat_type": "PRIVATE"},
            "message_id": f"m{next(self._ids):08d}",
            "date": int(time.time() * 1000),
        }
        message.update({k: v for k, v in fields.items() if v is not None})
        return {"event_name": event_name, "message": message}

    def fail(self, method: str, status: int, *, times: int = 1, chat_id: str | None = None,
             retry_after: float | None = None, in_body: bool = False) -> None:
        self.failures.append(Failure(method, status, times, chat_id, retry_after, in_body))

    def block(self, chat_id: str) -> None:
        """The user of this chat blocked the bot: every send to it answers 403."""
        self.blocked.add(chat_id)

    @property
    def pending_updates(self) -> int:
        """Updates pushed and not yet fetched by getUpdates."""
        return self._updates.qsize()

    def calls(self, method: str, chat_id: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and (chat_id is None or str(r.params.get("chat_id")) == chat_id)]

    async def wait_messages(self, chat_id: str, count: int, timeout: float = 30.0) -> list[str]:
        """The texts `chat_id` has received, once there are at least `count` of them."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent[chat_id]) >= count), timeout)
            except TimeoutError:
                got = self.sent[chat_id]
                raise AssertionError(f"{chat_id} received {len(got)} of {count} messages: {got}") from None
            return list(self.sent[chat_id])

    async def wait_calls(self, method: str, count: int, timeout: float = 30.0) -> list[Recorded]:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls(method)) >= count), timeout)
            except TimeoutError:
                raise AssertionError(f"{len(self.calls(method))} of {count} {method} calls") from None
            return self.calls(method)

    # ------------------------------------------------------------------ the API

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError:
                    return await self._answer(method, params, 400, "Bad request: invalid JSON")
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(dict(await request.post()))
        if request.match_info["token"] != self.token:
            return await self._answer(method, params, 401, "Unauthorized")
        failure = self._take_failure(method, params)
        if failure is not None:
            return await self._answer(method, params, failure.status, failure.description,
                                      retry_after=failure.retry_after, in_body=failure.in_body)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return await self._answer(method, params, 404, f"Method {method} not found")
        return await handler(params)

    def _take_failure(self, method: str, params: dict) -> Failure | None:
        chat_id = str(params.get("chat_id", ""))
        if method.startswith("send") and chat_id in self.blocked:
            return Failure(method, 403, description="Forbidden: the user blocked the bot")
        for failure in self.failures:
            if failure.method == method and failure.times > 0 and (failure.chat_id is None or failure.chat_id == chat_id):
                failure.times -= 1
                return failure
        return None

    async def _answer(self, method: str, params: dict, status: int, description: str = "",
                      result: Any = None, *, retry_after: float | None = None, in_body: bool = False) -> web.Response:
        ok = status == 200
        await self._record(Recorded(method, params, time.monotonic(), 200 if in_body else status, None if ok else status))
        if ok:
            return web.json_response({"ok": True, "result": result})
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        headers = {}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
            headers["Retry-After"] = str(retry_after)
        return web.json_response(payload, status=200 if in_body else status, headers=headers)

    async def _record(self, recorded: Recorded, chat_id: str | None = None, text: str | None = None) -> None:
        async with self._changed:
            self.requests.append(recorded)
            if chat_id is not None and text is not None:
                self.sent[chat_id].append(text)
            self._changed.notify_all()

    async def _api_getMe(self, params: dict) -> web.Response:
        result = {"id": "1459232241454765289", "account_name": "bot.motcua", "account_type": "BASIC", "can_join_groups": False}
        return await self._answer("getMe", params, 200, result=result)

    async def _api_getUpdates(self, params: dict) -> web.Response:
        if self.webhook_url:
            return await self._answer("getUpdates", params, 400, "Bad request: a webhook is set, use deleteWebhook first")
        try:
            wait = min(float(params.get("timeout") or 30), self.poll_cap)
        except ValueError:
            wait = self.poll_cap
        getter = asyncio.ensure_future(self._updates.get())
        closing = asyncio.ensure_future(self._closing.wait())
        done, _ = await asyncio.wait({getter, closing}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        closing.cancel()
        if getter in done:
            return await self._answer("getUpdates", params, 200, result=getter.result())
        getter.cancel()
        return await self._answer("getUpdates", params, 408, "Request timeout")

    async def _api_sendMessage(self, params: dict) -> web.Response:
        chat_id, text = str(params.get("chat_id") or ""), params.get("text")
        if not chat_id or not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return await self._answer("sendMessage", params, 400, "Bad request: text must be 1 to 2000 characters")
        await self._record(Recorded("sendMessage", params, time.monotonic()), chat_id, text)
        return web.json_response({"ok": True, "result": self._receipt()})

    def _receipt(self) -> dict:
        return {"message_id": f"s{next(self._ids):08d}", "date": int(time.time() * 1000)}

    async def _api_sendPhoto(self, params: dict) -> web.Response:
        if not params.get("chat_id") or not params.get("photo"):
            return await self._answer("sendPhoto", params, 400, "Bad request: chat_id and photo are required")
        return await self._answer("sendPhoto", params, 200, result=self._receipt())

    async def _api_sendSticker(self, params: dict) -> web.Response:
        return await self._answer("sendSticker", params, 200, result=self._receipt())

    async def _api_sendChatAction(self, params: dict) -> web.Response:
        if params.get("action") not in ("typing", "upload_photo"):
            return await self._answer("sendChatAction", params, 400, "Bad request: unknown action")
        await self._record(Recorded("sendChatAction", params, time.monotonic()))
        return web.json_response({"ok": True})

    async def _api_setWebhook(self, params: dict) -> web.Response:
        url, secret = str(params.get("url") or ""), str(params.get("secret_token") or "")
        if not url.startswith("https://") or not 8 <= len(secret) <= 256:
            description = "Bad request: an HTTPS url and an 8-256 character secret_token are required"
            return await self._answer("setWebhook", params, 400, description)
        self.webhook_url, self.webhook_secret = url, secret
        return await self._answer("setWebhook", params, 200, result={"url": url, "updated_at": int(time.time() * 1000)})

    async def _api_deleteWebhook(self, params: dict) -> web.Response:
        self.webhook_url, self.webhook_secret = "", ""
        return await self._answer("deleteWebhook", params, 200, result={"url": "", "updated_at": int(time.time() * 1000)})

    async def _api_getWebhookInfo(self, params: dict) -> web.Response:
        result = {"url": self.webhook_url, "updated_at": int(time.time() * 1000)}
        return await self._answer("getWebhookInfo", params, 200, result=result)
