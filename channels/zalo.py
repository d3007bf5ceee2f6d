"""The Zalo Bot Platform channel (bots created at bot.zapps.vn / bot.zaloplatforms.com).

The Zalo Bot API is modelled on Telegram's: `https://bot-api.zaloplatforms.com/bot<TOKEN>/<method>`
with getMe, getUpdates (long polling), setWebhook / deleteWebhook / getWebhookInfo, sendMessage,
sendPhoto, sendSticker and sendChatAction, answering `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": ...}` (400, 401, 403, 404, 408 = no update within the
long-poll timeout, 429 = quota exceeded). What it does not have, and how this adapter copes:

* no buttons of any kind: every choice is written as a numbered list and the user types the number
  (every message reaches the core marked buttonless, so the core maps "2" to the 2nd choice);
* text of 1 to 2000 characters: longer answers are split at paragraph breaks (`split_text`);
* formatting: plain text only is sent (no parse_mode), so nothing needs escaping;
* files: users can send images and stickers (we answer that we read text only); documents arrive
  as `message.unsupported.received` without content, so staff cannot import spreadsheets here;
* no published rate limit: we pace ourselves on the token's one limiter (channels.limits, shared with
  announcements and reminders: the bot's pace and one per chat) and, on a 429, pause every send of the
  token for the delay given or an exponential backoff; a chat's waiting messages are bounded;
* no reply window is documented for the Bot Platform; the bot only ever answers a message.

This is a thin httpx client rather than python-zalo-bot 0.1.9, because that library swallows errors
reported in the body of an HTTP 200 (`{"ok": false, "error_code": 429}` comes back as `None`: the
message is lost silently), turns a 429 into a generic NetworkError, calls `asyncio.run()` in
set_webhook/delete_webhook/get_webhook_info (a RuntimeError inside a running event loop), does not
expose `event_name`, fixes its connection pool at 10 with a 5 s pool timeout, and has no webhook
server or secret check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from aiohttp import web
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from channels.base import numbered_choices, respond, split_text, without_buttons
from channels.limits import TOO_FAST, ChatQueues, PlatformLimits, TokenLimiter, limiter_for
from config import Settings
from handlers.core import ONLY_TEXT, Router
from handlers.messages import Incoming, Reply
from redaction import chat_tag, register_secret

log = logging.getLogger(__name__)

CHANNEL = "zalo"
DEFAULT_BASE_URL = "https://bot-api.zaloplatforms.com"
MESSAGE_LIMIT = 2000  # sendMessage: "độ dài từ 1 đến 2000 ký tự"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/zalo"
WEBHOOK_MAX_BYTES = 1024 * 1024

TEXT_EVENT = "message.text.received"
IMAGE_EVENT = "message.image.received"
STICKER_EVENT = "message.sticker.received"
UNSUPPORTED_EVENT = "message.unsupported.received"

# Zalo sends `message.unsupported.received` for files, voice and for messages from protected accounts
# (children and others), whose content it withholds by law: we cannot know what was sent.
UNSUPPORTED_REPLY = "Xin lỗi, tôi chưa đọc được loại tin nhắn này. Bạn vui lòng gõ câu hỏi bằng chữ nhé."

POLL_TIMEOUT_CODE = 408  # getUpdates: nothing arrived within the long-poll timeout (not a failure)
UNREACHABLE_CODES = (403, 404)  # the user blocked the bot or the chat is gone: retrying cannot help
MAX_PENDING_PER_CHAT = 5  # a chat's messages waiting for an answer, unless CHAT_MAX_PENDING says otherwise


class ZaloApiError(Exception):
    """A failed Bot API call; `code` is the platform's error code (None for a network error)."""

    def __init__(self, method: str, code: int | None, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{method}: {code if code is not None else 'network error'} {description}".strip())
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.code is None or self.code in (408, 429) or self.code >= 500


class ZaloClient:
    """One Bot API request per call, errors raised as ZaloApiError; retrying is the channel's decision."""

    def __init__(self, token: str, base_url: str | None = None, *, timeout: float = 15.0, max_connections: int = 100) -> None:
        base = (base_url or DEFAULT_BASE_URL).rstrip("/")
        # Accept both "https://host" and python-telegram-bot's "https://host/bot" form of a base URL.
        self._prefix = f"{base}{token}" if base.endswith("/bot") else f"{base}/bot{token}"
        register_secret(token)
        self._token = token
        self._timeout = timeout
        self._max_connections = max_connections
        self._http = self._new_http()

    def _new_http(self) -> httpx.AsyncClient:
        # No pool timeout: under a burst a request waits for a free connection instead of failing.
        limits = httpx.Limits(max_connections=self._max_connections, max_keepalive_connections=self._max_connections)
        return httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, pool=None), limits=limits)

    def reopen(self) -> None:
        if self._http.is_closed:
            self._http = self._new_http()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<TOKEN>")

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        try:
            response = await self._http.post(f"{self._prefix}/{method}", json=params or {},
                                             timeout=httpx.Timeout(timeout, pool=None) if timeout else httpx.USE_CLIENT_DEFAULT)
        except httpx.HTTPError as error:
            raise ZaloApiError(method, None, self._redact(f"{type(error).__name__} {error}")) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code < 400 and isinstance(data, dict) and data.get("ok") is True:
            return data.get("result")
        # An error may come as an HTTP status, or as {"ok": false, "error_code": ...} in an HTTP 200.
        body = data if isinstance(data, dict) else {}
        code = _int(body.get("error_code") or body.get("errorCode"))
        code = code or (response.status_code if response.status_code >= 400 else 502)  # 200 without "ok": a broken proxy
        description = str(body.get("description") or response.reason_phrase or "invalid response")
        raise ZaloApiError(method, code, self._redact(description), _retry_after(body, response.headers))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(body: dict, headers: httpx.Headers) -> float | None:
    """The delay a 429 asks for, wherever the server put it (Telegram-style parameters, body, header)."""
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    for value in (parameters.get("retry_after"), body.get("retry_after"), headers.get("Retry-After")):
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None


# --------------------------------------------------------------------------- rate limiting

class RateLimiter(TokenLimiter):
    """A limiter of its own in the channel's terms (rates per second). The channel paces on its token's
    shared limiter (`limiter_for`); this is for pacing something else the same way."""

    def __init__(self, global_rate: float | None, global_burst: int, chat_rate: float | None, chat_burst: int) -> None:
        # global_burst is not used: the overall pace is even spacing, never a burst (see channels.limits).
        spacing = 1 / chat_rate if chat_rate else 0.0
        super().__init__(CHANNEL, PlatformLimits(global_rate or 0.0, spacing, chat_burst, spacing, chat_burst))

    async def wait(self, chat_id: str | None) -> None:
        await self.acquire(chat_id)


# --------------------------------------------------------------------------- updates

@dataclass(frozen=True)
class ZaloUpdate:
    event: str
    chat_id: str
    user_id: str
    text: str
    group: bool = False  # any chat type but PRIVATE (Zalo's group chats): replies are read by every member


def updates_from(result: Any) -> list[dict]:
    """getUpdates returns one update object (as documented); accept a list too."""
    if isinstance(result, dict):
        return [result] if result else []
    if isinstance(result, list):
        return [u for u in result if isinstance(u, dict)]
    return []


def parse_update(payload: Any) -> ZaloUpdate | None:
    """The event, chat, sender and text of an update, with or without the {"ok", "result"} wrapper
    (the docs show the wrapper on webhook calls; some real traffic has been reported without it)."""
    if not isinstance(payload, dict):
        return None
    if "event_name" not in payload and "message" not in payload and isinstance(payload.get("result"), dict):
        payload = payload["result"]
    message = payload.get("message")
    event = str(payload.get("event_name") or "")
    if not isinstance(message, dict):
        log.info("zalo: %s without a message ignored", event or "an update")
        return None
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    chat_id = str(chat.get("id") or sender.get("id") or "")
    if not chat_id or sender.get("is_bot"):
        return None
    text = message.get("text")
    if not event and isinstance(text, str):
        event = TEXT_EVENT
    group = str(chat.get("chat_type") or "PRIVATE").upper() != "PRIVATE"
    return ZaloUpdate(event, chat_id, str(sender.get("id") or chat_id), text if isinstance(text, str) else "", group)


def update_key(payload: dict) -> str | None:
    """What identifies an update for the replay check: the event's id, else its event name and message id
    (a text and the image sent with it share no id). None: nothing to recognise it by (it is handled)."""
    if "event_name" not in payload and "message" not in payload and isinstance(payload.get("result"), dict):
        payload = payload["result"]
    event_id = payload.get("event_id")
    if isinstance(event_id, str | int) and not isinstance(event_id, bool) and str(event_id):
        return f"event:{event_id}"
    message = payload.get("message")
    message_id = message.get("message_id") if isinstance(message, dict) else None
    if isinstance(message_id, str | int) and not isinstance(message_id, bool) and str(message_id):
        return f"{payload.get('event_name') or ''}:{message_id}"
    return None


def message_parts(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split a text into messages of at most `limit` characters. Zalo's clients count UTF-16 units
    (an emoji is two), so the parts are checked that way too and re-split smaller if needed."""
    size = limit
    while True:
        parts = [p for p in split_text(text, size) if p.strip()]
        over = max((len(p.encode("utf-16-le")) // 2 - limit for p in parts), default=0)
        if over <= 0 or size <= 1:
            return parts
        size = max(1, size - over)


# --------------------------------------------------------------------------- the channel

class ZaloChannel:
    """Feeds Zalo updates to the conversation core and sends its replies back, politely paced."""

    name = CHANNEL

    def __init__(
        self,
        router: Router,
        settings: Settings,
        *,
        base_url: str | None = None,
        poll_timeout: int = 30,
        global_rate: float | None = 30.0,
        global_burst: int = 30,
        chat_rate: float | None = 1.0,
        chat_burst: int = 4,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        typing_after: float = 1.0,
    ) -> None:
        token = settings.zalo_bot_token
        if not token:
            raise ValueError("ZALO_BOT_TOKEN is not set")
        self.router = without_buttons(router)  # Zalo shows no buttons: every message tells the core so
        self.settings = settings
        self.client = ZaloClient(token, base_url or getattr(settings, "zalo_api_base_url", None) or DEFAULT_BASE_URL)
        # The token's one limiter, shared with announcements and reminders sent with it (channels.outbound);
        # global_burst is kept for callers but unused: the overall pace is even spacing.
        spacing = 1 / chat_rate if chat_rate else 0.0
        self.limiter = limiter_for(CHANNEL, token, messages_per_second=global_rate or 0.0, seconds_per_chat=spacing,
                                   chat_burst=chat_burst, seconds_per_group=spacing, group_burst=chat_burst)
        self.queues = ChatQueues(getattr(settings, "chat_max_pending", MAX_PENDING_PER_CHAT))
        self.poll_timeout = poll_timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.typing_after = typing_after
        self._poll_task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        # httpx logs every request URL at INFO, and the URL holds the bot token: keep it out of logs.
        if logging.getLogger("httpx").getEffectiveLevel() < logging.WARNING:
            logging.getLogger("httpx").setLevel(logging.WARNING)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check the token, switch the bot to polling (a set webhook would block getUpdates) and poll."""
        self.client.reopen()
        try:
            me = await self.client.call("getMe")
            log.info("zalo: polling as %s", (me or {}).get("account_name") or (me or {}).get("name") or "the bot")
        except ZaloApiError as error:
            if error.code == 401:
                raise
            log.warning("zalo: getMe failed (%s); polling anyway", error)
        try:
            await self.client.call("deleteWebhook")
        except ZaloApiError as error:
            log.warning("zalo: deleteWebhook failed (%s)", error)
        self._poll_task = asyncio.create_task(self._poll(), name="zalo-polling")

    async def start_webhook(self, public_url: str, secret_token: str, *, listen: str = "127.0.0.1", port: int = 8443) -> None:
        """Serve the webhook at the path of `public_url` (behind a reverse proxy) and register it."""
        app = self.webhook_app(secret_token, path=urlparse(public_url).path or "/")  # a weak secret stops us here
        self.client.reopen()
        self._runner = web.AppRunner(app, access_log=None)  # refusals are logged by the handler, once
        await self._runner.setup()
        await web.TCPSite(self._runner, listen, port).start()
        await self._call("setWebhook", {"url": public_url, "secret_token": secret_token}, None)
        log.info("zalo: webhook %s served on %s:%d", public_url, listen, port)

    async def serve_forever(self, *, webhook_url: str | None = None, webhook_secret: str | None = None,
                            listen: str = "127.0.0.1", port: int = 8443) -> None:
        """Run until cancelled: webhook mode when a public URL is given, long polling otherwise."""
        try:
            if webhook_url:
                await self.start_webhook(webhook_url, webhook_secret or "", listen=listen, port=port)
            else:
                await self.start()
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop receiving, let the answers being written go out (bounded), close the connections."""
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.client.aclose()

    # ------------------------------------------------------------------ receiving

    async def _poll(self) -> None:
        """Long polling; no failure ends it (it backs off, bounded), only cancellation does."""
        failures = 0
        while True:
            started = time.monotonic()
            try:
                result = await self.client.call("getUpdates", {"timeout": str(self.poll_timeout)}, timeout=self.poll_timeout + 10)
            except asyncio.CancelledError:
                raise
            except ZaloApiError as error:
                if error.code == POLL_TIMEOUT_CODE:
                    failures = 0
                    continue
                failures += 1
                delay = error.retry_after if error.code == 429 and error.retry_after is not None else self._backoff(failures)
                level = logging.ERROR if error.code == 401 else logging.WARNING
                log.log(level, "zalo: getUpdates failed (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                continue
            except Exception:  # noqa: BLE001 - a bug in parsing one response must not stop the bot
                failures += 1
                log.exception("zalo: getUpdates failed unexpectedly")
                await asyncio.sleep(self._backoff(failures))
                continue
            failures = 0
            updates = updates_from(result)
            for update in updates:
                self._spawn(self.handle_update(update))
            if not updates and time.monotonic() - started < 0.5:
                await asyncio.sleep(0.5)  # a server answering "nothing" at once must not make us spin

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_update(self, update: dict) -> None:
        """One update from getUpdates or the webhook: answered, or logged; never raises. A chat's messages
        are answered in order ("2" must see the list it answers), other chats in parallel; beyond
        `chat_max_pending` waiting, a chat's messages are dropped and it is told once."""
        try:
            parsed = parse_update(update)
            if parsed is None:
                return
            if not self.queues.admit(parsed.chat_id):
                log.info("zalo: %s sends faster than it can be answered; a message dropped", chat_tag(CHANNEL, parsed.chat_id))
                if self.queues.first_refusal(parsed.chat_id):
                    await self.send_replies(parsed.chat_id, [Reply(TOO_FAST)])
                return
            async with self.queues.turn(parsed.chat_id):
                replies = await self._replies(parsed)
                await self.send_replies(parsed.chat_id, replies)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad update must not affect the other chats
            log.exception("zalo: an update could not be handled")

    async def _replies(self, update: ZaloUpdate) -> list[Reply]:
        if update.event == TEXT_EVENT:
            typing = asyncio.create_task(self._typing_later(update.chat_id))
            try:
                return await respond(self.router, Incoming(CHANNEL, update.chat_id, update.user_id, update.text, group=update.group))
            finally:
                typing.cancel()
        if update.event in (IMAGE_EVENT, STICKER_EVENT):
            return [Reply(ONLY_TEXT)]
        return [Reply(UNSUPPORTED_REPLY)]

    async def _typing_later(self, chat_id: str) -> None:
        """Show "typing" only when an answer is slow: a quick answer needs no indicator, and every
        call counts against the bot's quota."""
        await asyncio.sleep(self.typing_after)
        with contextlib.suppress(ZaloApiError):
            await self.client.call("sendChatAction", {"chat_id": chat_id, "action": "typing"})

    # ------------------------------------------------------------------ sending

    async def send_replies(self, chat_id: str, replies: list[Reply]) -> bool:
        """Send replies as plain text, choices as numbered lines; stops at a chat that cannot be reached."""
        for reply in replies:
            for part in message_parts(numbered_choices(reply)):
                if not await self.send_text(chat_id, part):
                    return False
        return True

    async def send_text(self, chat_id: str, text: str) -> bool:
        try:
            await self._call("sendMessage", {"chat_id": chat_id, "text": text}, chat_id)
            return True
        except ZaloApiError as error:
            if error.code in UNREACHABLE_CODES:
                log.warning("zalo: %s cannot be reached (blocked the bot or gone): %s", chat_tag(CHANNEL, chat_id), error)
            else:
                log.error("zalo: message to %s given up: %s", chat_tag(CHANNEL, chat_id), error)
            log.debug("%s is Zalo chat %s", chat_tag(CHANNEL, chat_id), chat_id)
            return False

    async def _call(self, method: str, params: dict[str, Any], chat_id: str | None) -> Any:
        """A paced call, tried again on network errors, 5xx, 408 and 429, at most `max_attempts` times.
        A network error after the request was sent may duplicate a message; a lost answer is worse."""
        retrying = AsyncRetrying(retry=retry_if_exception(lambda e: isinstance(e, ZaloApiError) and e.retryable),
                                 stop=stop_after_attempt(self.max_attempts), wait=self._retry_wait,
                                 before_sleep=self._log_retry(method, chat_id), reraise=True)
        async for attempt in retrying:
            with attempt:
                await self.limiter.acquire(chat_id)
                try:
                    return await self.client.call(method, params)
                except ZaloApiError as error:
                    if error.code == 429:  # the quota is the token's: every sender of it waits
                        number = attempt.retry_state.attempt_number
                        self.limiter.pause(error.retry_after if error.retry_after is not None else self._backoff(number))
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _retry_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        # After a 429 the limiter is paused; acquiring again waits that out.
        return 0.0 if isinstance(error, ZaloApiError) and error.code == 429 else self._backoff(state.attempt_number)

    def _log_retry(self, method: str, chat_id: str | None) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("zalo: %s for %s failed (%s); retry %d of %d in %.2f s", method,
                        chat_tag(CHANNEL, chat_id) if chat_id else "the bot", error, state.attempt_number,
                        self.max_attempts - 1, max(delay, self.limiter.paused_for()))
        return before_sleep

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (1 + random.random() * 0.1)  # jitter: many chats retrying must not move in lockstep

    # ------------------------------------------------------------------ webhook

    def webhook_app(self, secret_token: str, path: str = WEBHOOK_PATH) -> web.Application:
        """An aiohttp app receiving Zalo's webhook calls at `path` (channels/webhooks.py does the checks): each
        must carry the secret given to setWebhook in X-Bot-Api-Secret-Token (missing or wrong -> 403); a body
        that is not a JSON object -> 400; an update received again (same message id) -> 200, not answered
        twice; otherwise 200 at once and the update is answered in the background (the platform waits for
        our response, so the answer must not hold it up). GET /healthz answers the process manager."""
        from channels.webhooks import webhook_handler
        from operations import DatabaseProbe, add_health_route

        async def accept(payload: dict) -> None:
            self._spawn(self.handle_update(payload))

        app = web.Application(client_max_size=WEBHOOK_MAX_BYTES)
        app.router.add_post(path, webhook_handler("zalo webhook", secret_token, SECRET_HEADER, accept, update_key))
        add_health_route(app, DatabaseProbe(getattr(getattr(self.router, "context", None), "db", None)))
        return app
