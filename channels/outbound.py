"""Messages the bot sends on its own (reminders, announcements): one attempt per call, the outcome told.

A conversation reply is retried by its channel until it gets through; an unprompted message is owned by
a durable row in the database, so its sender only tries once and says what happened. The caller (the
reminder job, the broadcast dispatcher) decides about retrying, pacing and recording:

    sender = senders_from_settings(settings)["telegram"]
    delivery = await sender.send("123456", "Hồ sơ của bạn đã có kết quả.")
    if delivery.outcome is Outcome.RATE_LIMITED: try again later (the token's limiter is already paused)

Each sender has its token's limiter (`sender.limiter`, channels.limits): the same object the chat
channel's replies wait on, so one token never goes over its platform's rate whoever sends. The caller
paces with it before each send, at background priority (replies go first):

    await sender.limiter.acquire(chat_id, priority=Priority.BACKGROUND)
    delivery = await sender.send(chat_id, text)

A 429 pauses that limiter for everyone of the token before the outcome is told.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from channels.limits import PlatformLimits, TokenLimiter, limiter_for
from config import Settings
from handlers.messages import Button
from redaction import redact, register_secret

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"  # 429: try again after `retry_after` seconds
    BLOCKED = "blocked"  # the user blocked the bot, or the chat is gone: never try again
    TRANSIENT = "transient"  # network error, timeout, 5xx: worth another try later
    REJECTED = "rejected"  # the platform refused this message (bad request): retrying cannot help


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None

    def __post_init__(self) -> None:
        # The detail is stored (reminders.reason, deliveries.last_error) and logged; HTTP errors put the
        # request URL in it, and a Bot API URL holds the token.
        object.__setattr__(self, "detail", redact(self.detail or ""))

    @property
    def sent(self) -> bool:
        return self.outcome is Outcome.SENT


class Sender(Protocol):
    """One channel's way to send a message nobody asked for."""

    channel: str
    max_text: int  # characters in one message
    messages_per_second: float  # across all chats
    seconds_per_chat: float  # between two messages to one chat
    limiter: TokenLimiter  # the token's, shared with every other sender of it (channels.limits.limiter_of for doubles)

    async def send(self, chat_id: str, text: str, buttons: list[list[Button]] | None = None) -> Delivery:
        """One attempt; `text` must fit `max_text`. Buttons with a `url` open a link."""
        ...

    async def aclose(self) -> None: ...


class TelegramSender:
    """Sends through the Bot API with python-telegram-bot's Bot; the caller paces with `self.limiter`, the token's."""

    channel = "telegram"

    def __init__(self, token: str, base_url: str | None = None, *, connections: int = 64,
                 messages_per_second: float | None = None) -> None:
        from telegram import Bot
        from telegram.constants import FloodLimit, MessageLimit

        from channels.http import AiohttpRequest
        from channels.telegram import file_url_for

        self.max_text = MessageLimit.MAX_TEXT_LENGTH
        # None keeps what the token's limiter was set to (by the chat channel, from settings), else the default.
        self.limiter = limiter_for(self.channel, token, messages_per_second=messages_per_second)
        self.seconds_per_chat = 1 / FloodLimit.MESSAGES_PER_SECOND_PER_CHAT
        register_secret(token)
        request = AiohttpRequest(connections, pool_timeout=30)
        kwargs = {"base_url": base_url, "base_file_url": file_url_for(base_url)} if base_url else {}
        self.bot = Bot(token, request=request, **kwargs)
        self._ready = False
        self._starting = asyncio.Lock()  # concurrent first sends initialise the Bot once

    @property
    def messages_per_second(self) -> float:
        return self.limiter.messages_per_second

    async def send(self, chat_id: str, text: str, buttons: list[list[Button]] | None = None) -> Delivery:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
        from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

        from channels.telegram import retry_after_seconds

        if len(text) > self.max_text:
            return Delivery(Outcome.REJECTED, f"text of {len(text)} characters exceeds {self.max_text}")
        rows = [[InlineKeyboardButton(b.label, url=b.url) if b.url else InlineKeyboardButton(b.label, callback_data=b.data)
                 for b in row] for row in buttons or []]
        try:
            if not self._ready:
                async with self._starting:
                    if not self._ready:
                        await self.bot.initialize()
                        self._ready = True
            await self.bot.send_message(chat_id, text, reply_markup=InlineKeyboardMarkup(rows) if rows else None,
                                        link_preview_options=LinkPreviewOptions(is_disabled=True))
            return Delivery(Outcome.SENT)
        except RetryAfter as error:
            seconds = retry_after_seconds(error)
            self.limiter.pause(seconds)  # the quota is the token's: the replies wait too
            return Delivery(Outcome.RATE_LIMITED, error.message, seconds)
        except Forbidden as error:
            return Delivery(Outcome.BLOCKED, error.message)
        except BadRequest as error:
            gone = "chat not found" in error.message.lower() or "user is deactivated" in error.message.lower()
            return Delivery(Outcome.BLOCKED if gone else Outcome.REJECTED, error.message)
        except NetworkError as error:  # TimedOut and the Bot API's 5xx
            return Delivery(Outcome.TRANSIENT, error.message)
        except TelegramError as error:
            return Delivery(Outcome.TRANSIENT, f"{type(error).__name__}: {error.message}")

    async def aclose(self) -> None:
        if self._ready:
            await self.bot.shutdown()
            self._ready = False


class ZaloSender:
    """Sends through the Zalo Bot API (no buttons: choices and links are written into the text)."""

    channel = "zalo"
    seconds_per_chat = 1.0

    def __init__(self, token: str, base_url: str | None = None) -> None:
        from channels.zalo import MESSAGE_LIMIT, ZaloClient

        register_secret(token)
        self.client = ZaloClient(token, base_url)
        self.max_text = MESSAGE_LIMIT
        # Zalo publishes no rate: the token's limiter, as the chat channel sets it (channels.zalo), else 30/s.
        self.limiter = limiter_for(self.channel, token)

    @property
    def messages_per_second(self) -> float:
        return self.limiter.messages_per_second

    async def send(self, chat_id: str, text: str, buttons: list[list[Button]] | None = None) -> Delivery:
        from channels.zalo import UNREACHABLE_CODES, ZaloApiError

        links = [f"{b.label}: {b.url}" for row in buttons or [] for b in row if b.url]
        if links:
            text = "\n\n".join([text, *links])
        if len(text) > self.max_text:
            return Delivery(Outcome.REJECTED, f"text of {len(text)} characters exceeds {self.max_text}")
        try:
            self.client.reopen()
            await self.client.call("sendMessage", {"chat_id": chat_id, "text": text})
            return Delivery(Outcome.SENT)
        except ZaloApiError as error:
            if error.code == 429:
                self.limiter.pause(error.retry_after if error.retry_after is not None else 1.0)
                return Delivery(Outcome.RATE_LIMITED, str(error), error.retry_after)
            if error.code in UNREACHABLE_CODES:
                return Delivery(Outcome.BLOCKED, str(error))
            if error.code is None or error.code >= 500 or error.code == 408:
                return Delivery(Outcome.TRANSIENT, str(error))
            return Delivery(Outcome.REJECTED, str(error))

    async def aclose(self) -> None:
        await self.client.aclose()


class ConsoleSender:
    """The console chat has one user and no platform: unprompted messages are printed (or kept, in tests)."""

    channel = "console"
    max_text = 4096
    messages_per_second = 1000.0
    seconds_per_chat = 0.0

    def __init__(self, echo: bool = True) -> None:
        self.limiter = TokenLimiter(self.channel, PlatformLimits(0.0, 0.0, 1, 0.0, 1))  # no platform: no limit
        self.echo = echo
        self.sent: list[tuple[str, str]] = []

    async def send(self, chat_id: str, text: str, buttons: list[list[Button]] | None = None) -> Delivery:
        self.sent.append((chat_id, text))
        if self.echo:
            print(f"\n[thông báo] {text}\n")
        return Delivery(Outcome.SENT)

    async def aclose(self) -> None:
        pass


def senders_from_settings(settings: Settings) -> dict[str, Sender]:
    """A sender for every channel with a token set (and the console's), keyed by channel name."""
    senders: dict[str, Sender] = {"console": ConsoleSender()}
    if settings.telegram_bot_token:
        senders["telegram"] = TelegramSender(settings.telegram_bot_token, settings.telegram_api_base_url,
                                             messages_per_second=settings.telegram_messages_per_second)
    if settings.zalo_bot_token:
        senders["zalo"] = ZaloSender(settings.zalo_bot_token, settings.zalo_api_base_url)
    return senders


async def close_all(senders: dict[str, Sender]) -> None:
    for sender in senders.values():
        try:
            await sender.aclose()
        except Exception:  # closing must go on for the others
            log.exception("closing the %s sender failed", sender.channel)
