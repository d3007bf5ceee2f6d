"""The Telegram channel (python-telegram-bot v22): updates become `Incoming`, replies become messages.

The adapter owns Telegram's rules: 4096 characters per message (long answers are split, buttons go
under the last part), 64 bytes of callback data per button, the flood limits (the token's one limiter
of channels.limits, shared with announcements and reminders; a 429 pauses it for everyone), the 20 MB
download limit, and the /start payload alphabet of deep links. Messages are plain text (no parse mode),
so nothing in an answer needs escaping.

Chats are answered concurrently, but one chat's updates run in order: its state (the choices just
offered, the subject of a follow-up) must see "khai sinh" before "2". At most CHAT_MAX_PENDING of one
chat's updates wait; beyond that they are dropped and the chat is told once, so a flood starves nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ChatType, FileSizeLimit, InlineKeyboardButtonLimit, MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from channels.base import respond, split_text
from channels.http import AiohttpRequest
from channels.limits import TOO_FAST, ChatQueues, Priority, limiter_for
from config import Settings
from handlers.core import ONLY_TEXT, Router
from handlers.messages import Incoming, IncomingFile, Reply
from redaction import chat_tag, key_tag, register_secret

log = logging.getLogger(__name__)

CHANNEL = "telegram"
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096 characters
MAX_CALLBACK_DATA = InlineKeyboardButtonLimit.MAX_CALLBACK_DATA  # 64 bytes
MAX_DOWNLOAD = FileSizeLimit.FILESIZE_DOWNLOAD  # 20 MB: the Bot API serves no bigger file to bots
MAX_CONCURRENT_UPDATES = 256  # one per chat at a time
CONNECTION_POOL_SIZE = 64  # replies in flight at once; more only adds connection set-up under a burst
POLL_TIMEOUT = 30  # seconds a getUpdates long poll may wait: fewer idle requests, no added latency
SEND_ATTEMPTS = 4  # network errors, 5xx and 429s (waited out) are tried again; a duplicate beats an unanswered citizen
MAX_PENDING_PER_CHAT = 5  # a chat's messages waiting for an answer (CHAT_MAX_PENDING); more are dropped, the chat told once
BOOTSTRAP_RETRIES = 5  # deleteWebhook / setWebhook at start, retried on network errors
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

# The citizens' commands, in the order of the menu Telegram shows next to the text box.
CITIZEN_COMMANDS: dict[str, str] = {
    "start": "Bắt đầu: lời chào và cách đặt câu hỏi",
    "help": "Hướng dẫn sử dụng và danh sách lệnh",
    "thutuc": "Xem danh sách thủ tục theo nhóm",
    "lienhe": "Địa chỉ, giờ làm việc, điện thoại Bộ phận Một cửa",
    "theodoi": "Theo dõi hồ sơ đã nộp: /theodoi <mã hồ sơ> <4 số cuối SĐT/CCCD>",
    "hoso": "Các hồ sơ bạn đang theo dõi và tình trạng",
    "dangky": "Đăng ký nhận thông báo của Bộ phận Một cửa",
    "huydangky": "Ngừng nhận thông báo",
    "canbo": "Gặp cán bộ Bộ phận Một cửa",
    "ketthuc": "Kết thúc trò chuyện với cán bộ",
    "xoadulieu": "Xóa những gì trợ lý ghi nhớ về bạn",
}
FILE_TOO_BIG = "Tệp {name} quá lớn: Telegram chỉ cho phép bot tải tệp đến 20 MB. Bạn vui lòng gửi tệp nhỏ hơn."
FILE_NOT_READ = "Tôi chưa tải được tệp {name}. Bạn vui lòng gửi lại sau ít phút."


# --------------------------------------------------------------------------- replies -> messages

def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons as an inline keyboard; a button whose data exceeds Telegram's 64 bytes is
    dropped (and logged) rather than failing the whole message."""
    rows = []
    for row in reply.buttons:
        kept = []
        for button in row:
            if button.url:
                kept.append(InlineKeyboardButton(button.label, url=button.url))
                continue
            if not 1 <= len(button.data.encode("utf-8")) <= MAX_CALLBACK_DATA:
                log.error("button %r dropped: callback data %r is not 1-%d bytes", button.label, button.data, MAX_CALLBACK_DATA)
                continue
            kept.append(InlineKeyboardButton(button.label, callback_data=button.data))
        if kept:
            rows.append(kept)
    return InlineKeyboardMarkup(rows) if rows else None


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The messages one reply becomes: its text split at 4096 characters, the buttons under the last part."""
    if not reply.text.strip():
        return []
    parts = split_text(reply.text, MAX_TEXT)
    markup = keyboard(reply)
    return [(part, markup if i == len(parts) - 1 else None) for i, part in enumerate(parts)]


def describe(error: BaseException) -> tuple[int, str]:
    """How bad a Telegram error is (log level) and what it means, in the words of an operator."""
    if isinstance(error, Forbidden):
        return logging.INFO, f"the user blocked the bot or left the chat ({error.message})"
    if isinstance(error, BadRequest) and "chat not found" in error.message.lower():
        return logging.INFO, "chat not found (deleted, or never started with the bot)"
    if isinstance(error, RetryAfter):
        return logging.WARNING, f"still rate limited after retries ({error.message})"
    if isinstance(error, BadRequest):
        return logging.ERROR, f"request refused: {error.message}"
    if isinstance(error, NetworkError):  # includes TimedOut and the 5xx of the Bot API
        return logging.WARNING, f"network error: {error.message}"
    return logging.ERROR, f"{type(error).__name__}: {error}"


async def send(bot, chat_id: int | str, replies: list[Reply]) -> bool:
    """Send the replies in order; False if the chat cannot be reached (then the rest is not tried)."""
    for reply in replies:
        for text, markup in render(reply):
            if not await _send_one(bot, chat_id, text, markup):
                return False
    return True


def is_group(chat_id: int | str) -> bool:
    """Telegram's group and channel ids are negative; they get the group pace (20 messages a minute)."""
    try:
        return int(chat_id) < 0
    except (TypeError, ValueError):
        return False


def retry_after_seconds(error: RetryAfter) -> float:
    """PTB gives retry_after as seconds or a timedelta, depending on its settings."""
    retry = error.retry_after
    return retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)


def _worth_another_try(error: BaseException) -> bool:
    """A 429 (waited out) and network trouble (timeouts, 5xx); a refusal or a block will not change."""
    return isinstance(error, RetryAfter) or (isinstance(error, NetworkError) and not isinstance(error, BadRequest))


def _reply_wait(state: RetryCallState) -> float:
    # After a 429 the token's limiter is paused: acquiring again waits it out, for every sender at once.
    error = state.outcome.exception() if state.outcome else None
    return 0.0 if isinstance(error, RetryAfter) else 0.5 * state.attempt_number


def _log_reply_retry(chat_id: int | str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info("%s: %s; retrying", chat_tag(CHANNEL, chat_id), describe(error)[1] if error else "failed")
    return before_sleep


async def _send_one(bot, chat_id: int | str, text: str, markup: InlineKeyboardMarkup | None) -> bool:
    """One message, paced by the token's limiter (a reply goes before announcements), tried again on a 429
    or a network error; False when it could not be delivered (logged with what it means)."""
    limiter = limiter_for(CHANNEL, bot.token)
    retrying = AsyncRetrying(retry=retry_if_exception(_worth_another_try), stop=stop_after_attempt(SEND_ATTEMPTS),
                             wait=_reply_wait, before_sleep=_log_reply_retry(chat_id), reraise=True)
    try:
        async for attempt in retrying:
            with attempt:
                await limiter.acquire(chat_id, priority=Priority.REPLY, group=is_group(chat_id))
                try:
                    # No parse mode: answers are plain text. Previews of portal links would only bury the answer.
                    await bot.send_message(chat_id, text, reply_markup=markup,
                                           link_preview_options=LinkPreviewOptions(is_disabled=True))
                except RetryAfter as error:
                    limiter.pause(retry_after_seconds(error))  # the quota is the token's: everyone waits
                    raise
        return True
    except TelegramError as error:
        level, what = describe(error)
        tries = retrying.statistics.get("attempt_number", 1)
        log.log(level, "%s: message not sent%s: %s", chat_tag(CHANNEL, chat_id), f" after {tries} attempts" if tries > 1 else "", what)
        log.debug("%s is Telegram chat %s", chat_tag(CHANNEL, chat_id), chat_id)
        return False


# --------------------------------------------------------------------------- updates -> Incoming

def _incoming(update: Update, **content: Any) -> Incoming:
    chat = update.effective_chat
    user = update.effective_user
    chat_id = str(chat.id if chat else user.id)
    group = chat is not None and chat.type != ChatType.PRIVATE
    # A reply to one of the bot's messages (an officer answering a hand-off post in the staff group).
    replied = update.message.reply_to_message if update.message else None
    reply_to = str(replied.message_id) if replied is not None else None
    return Incoming(CHANNEL, chat_id, str(user.id) if user else chat_id, group=group, reply_to=reply_to, **content)


def command_text(text: str, args: list[str] | None) -> str:
    """The command as the core reads it ("/name args"); `args` are PTB's (None: not a CommandHandler).
    A deep link's payload ("1_001193": a /start parameter allows no dots) becomes the entry id again."""
    from channels.links import entry_id_from_payload

    if args is None or not text.strip():
        return text
    name = text.split(maxsplit=1)[0].split("@", 1)[0]
    if name.lower() == "/start" and args:
        return f"/start {entry_id_from_payload(args[0])}"
    return " ".join([name, *args])


class TelegramChannel:
    """The update callbacks, bound to one conversation core."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def _answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE, incoming: Incoming) -> None:
        replies = await respond(self.router, incoming)
        await send(context.bot, update.effective_chat.id if update.effective_chat else incoming.chat_id, replies)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start, /help, /thutuc, /lienhe, /xoadulieu, and any other command (staff's) as text for the core."""
        message = update.effective_message
        await self._answer(update, context, _incoming(update, text=command_text(message.text or "", context.args)))

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._answer(update, context, _incoming(update, text=update.effective_message.text or ""))

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tapped inline button: the spinner on the user's button stops at once, then the answer comes."""
        query = update.callback_query
        try:
            await query.answer()
        except TelegramError as error:  # e.g. "query is too old" after a restart: still answer the press
            level, what = describe(error)
            log.log(min(level, logging.INFO), "callback query not answered: %s", what)
        if not query.data:
            return
        await self._answer(update, context, _incoming(update, button=query.data))

    async def on_document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A file: only staff's files are downloaded (citizens' get the core's polite reply without
        the bot fetching anything), and never one above Telegram's 20 MB."""
        message = update.effective_message
        document = message.document
        name = document.file_name or "tep"
        incoming = _incoming(update, text=message.caption or "", file=IncomingFile(name, b""))
        role = await asyncio.to_thread(self.router.role_of, incoming)
        if role is not None:
            if document.file_size and document.file_size > MAX_DOWNLOAD:
                await send(context.bot, message.chat_id, [Reply(FILE_TOO_BIG.format(name=name))])
                return
            try:
                telegram_file = await context.bot.get_file(document.file_id)
                data = bytes(await telegram_file.download_as_bytearray())
            except BadRequest as error:
                log.warning("a file from %s not downloaded: %s", key_tag(incoming.chat_key), error.message)
                log.debug("the file not downloaded: %s from %s", name, incoming.chat_key)
                text = FILE_TOO_BIG if "too big" in error.message.lower() else FILE_NOT_READ
                await send(context.bot, message.chat_id, [Reply(text.format(name=name))])
                return
            except NetworkError as error:
                log.warning("a file from %s not downloaded: %s", key_tag(incoming.chat_key), error.message)
                log.debug("the file not downloaded: %s from %s", name, incoming.chat_key)
                await send(context.bot, message.chat_id, [Reply(FILE_NOT_READ.format(name=name))])
                return
            incoming = _incoming(update, text=message.caption or "", file=IncomingFile(name, data))
        await self._answer(update, context, incoming)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, voice, stickers, locations: the bot reads only words."""
        await send(context.bot, update.effective_chat.id, [Reply(ONLY_TEXT)])


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever escaped a callback: logged with what it means; the application keeps serving everyone."""
    error = context.error
    chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
    who = chat_tag(CHANNEL, chat) if chat is not None else "an update without a chat"
    if isinstance(error, TelegramError):
        level, what = describe(error)
        log.log(level, "%s: %s", who, what)
    else:
        log.error("%s: update failed", who, exc_info=error)


# --------------------------------------------------------------------------- the application

class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Up to `max_concurrent_updates` updates at once, one chat's updates one after another, in order, and at
    most `max_pending` of one chat waiting: beyond that they are dropped and the chat is told once
    (`on_refused`), so a chat sending a burst cannot take the turns everyone else needs."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES, max_pending: int = MAX_PENDING_PER_CHAT) -> None:
        super().__init__(max_concurrent_updates)
        self.queues = ChatQueues(max_pending)
        self.on_refused: Callable[[int], Awaitable[None]] | None = None

    async def do_process_update(self, update: object, coroutine) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        if not self.queues.admit(chat.id):
            coroutine.close()  # never run: PTB's handlers do not see the dropped update
            log.info("%s: sends faster than it can be answered; an update dropped", chat_tag(CHANNEL, chat.id))
            if self.queues.first_refusal(chat.id) and self.on_refused is not None:
                await self.on_refused(chat.id)
            return
        async with self.queues.turn(chat.id):
            await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


async def post_init(app: Application) -> None:
    """The command menu: citizens' commands only (staff commands stay out of sight)."""
    try:
        await app.bot.set_my_commands([BotCommand(name, text) for name, text in CITIZEN_COMMANDS.items()])
    except TelegramError as error:  # the menu is a convenience; answering questions must not wait for it
        log.warning("command menu not set: %s", describe(error)[1])


def file_url_for(base_url: str) -> str:
    """PTB's base_file_url next to a base_url: "http://host:8081/bot" -> "http://host:8081/file/bot"."""
    root = base_url[: -len("/bot")] if base_url.endswith("/bot") else base_url.rstrip("/")
    return f"{root}/file/bot"


def build_application(
    router: Router,
    settings: Settings,
    *,
    base_url: str | None = None,
    webhook: bool = False,
    overall_max_rate: float | None = None,
) -> Application:
    """The Telegram application for one conversation core.

    `base_url` (else TELEGRAM_API_BASE_URL) points at another Bot API server, in PTB's form
    "http://127.0.0.1:8081/bot". `webhook`: updates will come through PTB's webhook server
    (`run_webhook`, or `start(app, Webhook(...))`), so the long-poll settings are left out. `overall_max_rate`: messages per second across all chats
    (default TELEGRAM_MESSAGES_PER_SECOND; Telegram's limit is about 30; 0 lifts it, as the benchmark does to
    measure the bot itself): it sets the token's one limiter, which announcements and reminders share.
    """
    token = settings.telegram_bot_token
    if not token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    register_secret(token)  # PTB's and aiohttp's errors quote request URLs, which hold it
    if overall_max_rate is None:
        overall_max_rate = settings.telegram_messages_per_second
    limiter_for(CHANNEL, token, messages_per_second=overall_max_rate)
    base_url = base_url or getattr(settings, "telegram_api_base_url", None)
    processor = PerChatUpdateProcessor(max_pending=getattr(settings, "chat_max_pending", MAX_PENDING_PER_CHAT))
    builder = (
        Application.builder()
        .token(token)
        .concurrent_updates(processor)
        .post_init(post_init)
        # Under a burst the event loop may lag; waiting for a free connection is then normal, not an error.
        .request(AiohttpRequest(CONNECTION_POOL_SIZE, pool_timeout=10))
        # The long poll must outlast the server's wait; a 2nd connection for the offset call at shutdown.
        .get_updates_request(AiohttpRequest(2, read_timeout=POLL_TIMEOUT + 10, pool_timeout=10))
    )
    if base_url:
        builder = builder.base_url(base_url).base_file_url(file_url_for(base_url))
    app = builder.build()

    async def too_fast(chat_id: int) -> None:
        await send(app.bot, chat_id, [Reply(TOO_FAST)])

    processor.on_refused = too_fast
    channel = TelegramChannel(router)
    app.bot_data["channel"] = channel
    register(app, channel)
    return app


def register(app: Application, channel: TelegramChannel) -> None:
    """Every update handler, in one place; order matters: the first matching handler wins."""
    new = filters.UpdateType.MESSAGE  # edits of old messages are not asked again
    app.add_handler(CommandHandler(list(CITIZEN_COMMANDS), channel.on_command, filters=new))
    app.add_handler(MessageHandler(new & filters.COMMAND, channel.on_command))  # staff's, and unknown ones
    app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, channel.on_text))
    app.add_handler(CallbackQueryHandler(channel.on_button))
    app.add_handler(MessageHandler(new & filters.Document.ALL, channel.on_document))
    app.add_handler(MessageHandler(new & ~filters.StatusUpdate.ALL, channel.on_other))
    app.add_error_handler(on_error)


@dataclass(frozen=True)
class Webhook:
    """Where the webhook server listens and the public URL Telegram posts to (behind a reverse proxy)."""

    listen: str
    port: int
    url_path: str
    webhook_url: str
    secret_token: str

    def __post_init__(self) -> None:
        # Without a strong secret anyone who finds the URL could post forged updates in a citizen's or staff's name.
        from channels.webhooks import check_secret

        check_secret(self.secret_token)


def _retryable(error: BaseException) -> bool:
    """Network errors and the Bot API's 5xx; a BadRequest or an invalid token is configuration, not luck."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        message = error.message if isinstance(error, TelegramError) else str(error)
        log.warning("%s failed (%s); retry %d in %.0f s", what, message, state.attempt_number,
                    state.next_action.sleep if state.next_action else 0)
    return before_sleep


def _start_retrying(what: str, attempts: int) -> AsyncRetrying:
    """1, 2, 4 ... 32 s between attempts: a network outage while the server boots is waited out."""
    return AsyncRetrying(retry=retry_if_exception(_retryable), stop=stop_after_attempt(attempts),
                         wait=wait_exponential(multiplier=1, max=32), before_sleep=_log_retry(what), reraise=True)


async def _initialize(app: Application) -> None:
    """getMe at start; a network outage while the server boots is waited out for about a minute."""
    async for attempt in _start_retrying("Telegram getMe at start", 7):
        with attempt:
            await app.initialize()


WEBHOOK_SERVER = "webhook_server"  # app.bot_data key of the running webhook server
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _update_id(payload: dict) -> str:
    update_id = payload.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        from channels.webhooks import BadPayload

        raise BadPayload("no integer update_id")
    return str(update_id)


async def _serve_webhook(app: Application, hook: Webhook):
    """Our aiohttp server for Telegram's calls (PTB's own answers 500 to malformed JSON, logs the update's
    content and compares the secret in variable time): updates go to PTB's queue, /healthz beside them."""
    from channels.webhooks import BadPayload, WebhookServer, webhook_handler
    from operations import DatabaseProbe

    async def accept(payload: dict) -> None:
        try:
            update = Update.de_json(payload, app.bot)
        except Exception as error:  # noqa: BLE001 - PTB raises whatever a field's conversion raises (dates out of range...)
            raise BadPayload(f"not a Telegram update ({type(error).__name__})") from None
        if isinstance(app.bot, ExtBot):
            app.bot.insert_callback_data(update)
        await app.update_queue.put(update)

    server = WebhookServer("telegram webhook")
    server.add_webhook(hook.url_path, webhook_handler("telegram webhook", hook.secret_token, SECRET_HEADER, accept, _update_id))
    router = getattr(app.bot_data.get("channel"), "router", None)
    server.add_health(DatabaseProbe(getattr(getattr(router, "context", None), "db", None)))
    await server.start(hook.listen, hook.port)
    return server


async def start(app: Application, webhook: Webhook | None = None) -> None:
    """Start receiving updates inside the caller's event loop (so Telegram and Zalo can share one)."""
    await _initialize(app)
    if app.post_init:
        await app.post_init(app)
    await app.start()
    if webhook is None:
        await app.updater.start_polling(poll_interval=0, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES,
                                        bootstrap_retries=BOOTSTRAP_RETRIES)
        return
    app.bot_data[WEBHOOK_SERVER] = await _serve_webhook(app, webhook)
    async for attempt in _start_retrying("Telegram setWebhook", BOOTSTRAP_RETRIES + 1):
        with attempt:
            await app.bot.set_webhook(url=webhook.webhook_url, secret_token=webhook.secret_token,
                                      allowed_updates=ALLOWED_UPDATES)
    log.info("telegram: webhook %s served on %s:%d", webhook.webhook_url, webhook.listen, webhook.port)


async def stop(app: Application) -> None:
    """Stop receiving, finish the updates in hand, close connections."""
    server = app.bot_data.pop(WEBHOOK_SERVER, None)
    if server is not None:
        await server.stop()
    if app.updater and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


def run_polling(router: Router, settings: Settings) -> None:
    """Long polling until Ctrl+C / SIGTERM (the default: no public address needed)."""
    app = build_application(router, settings)
    app.run_polling(poll_interval=0, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES, bootstrap_retries=BOOTSTRAP_RETRIES)


def run_webhook(router: Router, settings: Settings, listen: str, port: int, url_path: str, webhook_url: str,
                secret_token: str) -> None:
    """The webhook server behind a reverse proxy until Ctrl+C / SIGTERM; requests without the right secret get 403."""
    hook = Webhook(listen, port, url_path, webhook_url, secret_token)

    async def serve() -> None:
        import signal

        app = build_application(router, settings, webhook=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await start(app, hook)
        try:
            await stopping.wait()
        finally:
            await stop(app)

    asyncio.run(serve())
