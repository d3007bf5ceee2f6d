"""What every webhook endpoint of the bot does before an update reaches a channel (Telegram, Zalo, the dossier push).

* the secret: 8 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's alphabet; one WEBHOOK_SECRET serves
  both platforms), checked when the bot starts, compared in constant time on every request, never logged;
* refusals are logged in one line naming the sender's address and the reason, not the value sent;
* bodies: at most MAX_BODY bytes, JSON nested at most MAX_DEPTH deep, a JSON object: anything else is a 400
  with one log line (never a 500 and a traceback), whatever the bytes;
* replays: an update id already handled is answered 200 and not handled again. The ids are kept in memory,
  the last RECENT_IDS per endpoint: a restart forgets them. The platforms resend only what was not
  acknowledged with a 2xx, and we acknowledge once the update is queued, so after a restart only a forger
  holding the secret could replay, and the secret then has to be changed anyway;
* GET /healthz (operations.py) on the same server, for the process manager.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from channels.runner import ChannelError
from operations import DatabaseProbe, add_health_route

log = logging.getLogger(__name__)

SECRET_RULE = re.compile(r"[A-Za-z0-9_-]{8,256}")
MAX_BODY = 1024 * 1024  # Telegram's and Zalo's updates are a few kilobytes
MAX_DEPTH = 32  # an update nests about 6 deep (a reply quoting a message with entities); a forged one is cut here
RECENT_IDS = 10_000  # update ids remembered per endpoint: hours of traffic of a busy office, under a megabyte


class WebhookSecretError(ChannelError, ValueError):
    """A webhook secret the bot refuses to start with; the message is one line for the operator."""


def check_secret(secret: str | None, setting: str = "WEBHOOK_SECRET") -> str:
    """The secret, if it is 8-256 characters of A-Z, a-z, 0-9, _ and -; else WebhookSecretError."""
    value = secret or ""
    if SECRET_RULE.fullmatch(value):
        return value
    if not value:
        problem = "chưa đặt"
    elif not 8 <= len(value) <= 256:
        problem = f"đang dài {len(value)} ký tự"
    else:
        problem = "có ký tự không được phép"
    raise WebhookSecretError(f"{setting} không hợp lệ ({problem}): cần 8–256 ký tự gồm A–Z, a–z, 0–9, _ và -; "
                             f"tạo một chuỗi ngẫu nhiên, vd: python -c \"import secrets; print(secrets.token_urlsafe(32))\"")


def header_bytes(value: str | None) -> bytes:
    """A header as the bytes that were sent: aiohttp keeps undecodable bytes as surrogates, which `str.encode`
    would refuse (a non-UTF-8 key was a 500)."""
    if not value:
        return b""
    return value.encode("utf-8", "surrogateescape")


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a header with the secret (any bytes in the header are just wrong)."""
    try:
        sent = header_bytes(given)
    except UnicodeEncodeError:
        return False
    return bool(sent) and hmac.compare_digest(sent, expected.encode("utf-8"))


class BadPayload(ValueError):
    """A request body that is not an update; the message (English, short) is the 400's reason and the log's."""


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON of a body, or BadPayload: not UTF-8, not JSON, nested deeper than `max_depth`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadPayload(f"JSON nested deeper than {max_depth}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise BadPayload(f"not JSON ({type(error).__name__})") from None
    if _too_deep(value, max_depth):
        raise BadPayload(f"JSON nested deeper than {max_depth}")
    return value


class RecentIds:
    """The last `size` ids seen, in arrival order: a replay inside that window is recognised."""

    def __init__(self, size: int = RECENT_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """True the first time `key` is seen (it is then remembered), False for a replay."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True

    def forget(self, key: str) -> None:
        self._ids.pop(key, None)

    def __len__(self) -> int:
        return len(self._ids)


def _remote(request: web.Request) -> str:
    # Behind the reverse proxy every request comes from it; the proxy's own log has the client.
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
    return forwarded[:64] or request.remote or "?"


def _answer(ok: bool, status: int, description: str = "", **extra: Any) -> web.Response:
    body = {"ok": ok} | ({"description": description} if description else {}) | extra
    return web.json_response(body, status=status)


def webhook_handler(
    name: str,
    secret: str,
    header: str,
    accept: Callable[[dict], Awaitable[None]],
    update_key: Callable[[dict], str | None],
    recent: RecentIds | None = None,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: secret (403), body (400/413), replay (200, not handled), then `accept(update)`.

    `accept` queues the update for its channel and may raise BadPayload (e.g. a field out of range) -> 400.
    `update_key` is the update's id for the replay check (None: no id, the update is accepted as it is).
    """
    expected = check_secret(secret)
    recent = recent if recent is not None else RecentIds()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(header)
        if not secret_matches(given, expected):
            log.warning("%s: refused a request from %s: %s secret", name, _remote(request), "no" if not given else "wrong")
            return _answer(False, 403, "Forbidden")
        try:
            payload = parse_json(await request.read())
            if not isinstance(payload, dict):
                raise BadPayload("a JSON object is expected")
            key = update_key(payload)
        except web.HTTPRequestEntityTooLarge:
            log.warning("%s: refused a body over the size limit from %s", name, _remote(request))
            raise
        except BadPayload as error:
            log.warning("%s: bad request from %s: %s", name, _remote(request), error)
            return _answer(False, 400, f"Bad request: {error}")
        if key is not None and not recent.add(key):
            log.info("%s: update %s received again; already handled", name, key)
            return _answer(True, 200, duplicate=True)
        try:
            await accept(payload)
        except BadPayload as error:
            if key is not None:
                recent.forget(key)  # a corrected resend must not count as a replay
            log.warning("%s: bad update from %s: %s", name, _remote(request), error)
            return _answer(False, 400, f"Bad request: {error}")
        return _answer(True, 200)

    return receive


class WebhookServer:
    """One aiohttp server: webhook routes, and /healthz when given a database probe."""

    def __init__(self, name: str, max_body: int = MAX_BODY) -> None:
        self.name = name
        self.app = web.Application(client_max_size=max_body)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def add_webhook(self, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        self.app.router.add_post("/" + path.strip("/"), handler)

    def add_health(self, probe: DatabaseProbe) -> None:
        add_health_route(self.app, probe)

    async def start(self, listen: str, port: int) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)  # refusals are logged by the handler, once
        await self._runner.setup()
        site = web.TCPSite(self._runner, listen, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 asked for any free one

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
