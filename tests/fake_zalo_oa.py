"""A fake Zalo Official Account platform on 127.0.0.1 for end-to-end tests of channels/zalo_oa.py.

One aiohttp server plays the Open API (`/v3.0/oa/message/cs`, `/v2.0/oa/getoa`), OAuth v4
(`/v4/oa/access_token`) and the template API (`/message/template`), checking access tokens like the
platform: an unknown or expired token gets error -216, a refresh token works once and yields a new pair.
It counts the messages each user received, records template messages, and sends signed webhook events
(X-ZEvent-Signature = "mac=" + sha256(app_id + body + timestamp + OA secret key)) to the bot.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

MAX_TEXT = 2000


def sign(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    return "mac=" + hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()


@dataclass
class FakeZaloOA:
    app_id: str = "1234567890"
    app_secret: str = "app-secret-abcdef"
    oa_secret_key: str = "oa-secret-key-123456"
    access_token: str = "access-0"
    refresh_token: str = "refresh-0"
    token_lifetime: float = 90000.0
    approved_templates: set[str] = field(default_factory=set)
    unfollowed: set[str] = field(default_factory=set)  # users who do not follow the OA: -213
    template_errors: dict[str, int] = field(default_factory=dict)  # template id -> error code to answer
    messages: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    templates: list[dict] = field(default_factory=list)
    token_errors: int = 0  # calls answered -216
    refreshes: int = 0

    def __post_init__(self) -> None:
        self._valid: dict[str, float] = {self.access_token: time.time() + self.token_lifetime}
        self._refresh_valid = {self.refresh_token}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeZaloOA:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._cs)
        app.router.add_get("/v2.0/oa/getoa", self._getoa)
        app.router.add_post("/v4/oa/access_token", self._oauth)
        app.router.add_post("/message/template", self._template)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ------------------------------------------------------------------ what tests control

    def expire(self, token: str | None = None) -> None:
        """The access token expires now (the platform answers -216 from here on)."""
        self._valid[token or self.access_token] = 0.0

    def texts(self, user_id: str) -> list[str]:
        return [m.get("text", "") for m in self.messages[user_id]]

    async def wait_messages(self, user_id: str, count: int, timeout: float = 30.0) -> list[dict]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.messages[user_id]) >= count), timeout)
        return list(self.messages[user_id])

    async def wait_templates(self, count: int, timeout: float = 30.0) -> list[dict]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.templates) >= count), timeout)
        return list(self.templates)

    def event(self, name: str, user_id: str, text: str | None = None, *, msg_id: str | None = None,
              timestamp: int | None = None, oa_id: str = "oa-1") -> dict:
        """An event as the platform sends it."""
        stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
        payload: dict[str, Any] = {"app_id": self.app_id, "event_name": name, "timestamp": stamp, "user_id_by_app": "app-" + user_id}
        if name in ("follow", "unfollow"):
            payload |= {"oa_id": oa_id, "follower": {"id": user_id}, "source": "oa_profile"}
        else:
            payload |= {"sender": {"id": user_id}, "recipient": {"id": oa_id}}
            if text is not None:
                payload["message"] = {"text": text, "msg_id": msg_id or f"msg-{next(self._ids)}"}
        return payload

    def signed(self, payload: dict, *, body: bytes | None = None, signature: str | None = None) -> tuple[bytes, dict]:
        raw = body if body is not None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        mac = signature if signature is not None else sign(self.app_id, raw, str(payload.get("timestamp", "")), self.oa_secret_key)
        return raw, {"X-ZEvent-Signature": mac, "Content-Type": "application/json"}

    async def deliver(self, url: str, payload: dict, *, signature: str | None = None, unsigned: bool = False,
                      body: bytes | None = None) -> int:
        """POST an event to the bot's webhook as the platform does; the HTTP status it answered."""
        raw, headers = self.signed(payload, body=body, signature=signature)
        if unsigned:
            headers.pop("X-ZEvent-Signature")
        async with httpx.AsyncClient() as client:
            response = await client.post(url, content=raw, headers=headers)
        return response.status_code

    # ------------------------------------------------------------------ handlers

    def _token_ok(self, request: web.Request) -> bool:
        token = request.headers.get("access_token", "")
        ok = self._valid.get(token, 0.0) > time.time()
        if not ok:
            self.token_errors += 1
        return ok

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    def _error(code: int, message: str) -> web.Response:
        return web.json_response({"error": code, "message": message})

    async def _cs(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return self._error(-216, "Access token is invalid")
        body = await request.json()
        user_id = str(body.get("recipient", {}).get("user_id", ""))
        message = body.get("message") or {}
        text = message.get("text", "")
        if not user_id or not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return self._error(-201, "Parameters are invalid")
        buttons = (message.get("attachment") or {}).get("payload", {}).get("buttons", [])
        if len(buttons) > 5:
            return self._error(-201, "Too many buttons")
        if user_id in self.unfollowed:
            return self._error(-213, "User has not followed OA")
        self.messages[user_id].append(message)
        await self._notify()
        return web.json_response({"error": 0, "message": "Success", "data": {"message_id": f"m{next(self._ids)}", "user_id": user_id}})

    async def _getoa(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return self._error(-216, "Access token is invalid")
        return web.json_response({"error": 0, "message": "Success", "data": {"oa_id": "oa-1", "name": "Bộ phận Một cửa (thử)"}})

    async def _oauth(self, request: web.Request) -> web.Response:
        form = await request.post()
        if request.headers.get("secret_key") != self.app_secret or form.get("app_id") != self.app_id:
            return web.json_response({"error": -14002, "error_name": "Invalid app", "error_description": "app_id or secret_key invalid"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self._refresh_valid:
            return web.json_response({"error": -14014, "error_name": "Invalid refresh token", "error_description": "Invalid refresh token"})
        self._refresh_valid.discard(str(form["refresh_token"]))  # a refresh token works once
        self.refreshes += 1
        self.access_token, self.refresh_token = f"access-{self.refreshes}", f"refresh-{self.refreshes}"
        self._valid[self.access_token] = time.time() + self.token_lifetime
        self._refresh_valid.add(self.refresh_token)
        return web.json_response({"access_token": self.access_token, "refresh_token": self.refresh_token,
                                  "expires_in": str(int(self.token_lifetime))})

    async def _template(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return self._error(-124, "Access token is invalid")
        body = await request.json()
        template_id = str(body.get("template_id", ""))
        if template_id in self.template_errors:
            return self._error(self.template_errors[template_id], "Injected error")
        if template_id not in self.approved_templates:
            return self._error(-131, "Template is not approved")
        self.templates.append(body)
        await self._notify()
        return web.json_response({"error": 0, "message": "Success", "data": {"msg_id": f"z{next(self._ids)}",
                                                                             "quota": {"dailyQuota": "500", "remainingQuota": "499"}}})
