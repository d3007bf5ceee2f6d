"""Secrets and personal data kept out of logs, exit messages and stored error texts.

Bot API URLs carry the token in their path (`https://api.telegram.org/bot<TOKEN>/sendMessage`), and
HTTP libraries put the URL in their error messages; those messages travel into logs, exit messages and
the reasons stored with reminders and deliveries. Rather than trusting every call site, `install()`
puts one filter on the root logger's handlers at startup that rewrites every record (message,
arguments, exception text), and `redact()` is applied to every outcome a sender reports.

Personal data: records at INFO and above name a chat by `chat_tag()` (a keyed one-way hash, the same
for one chat in every line and across restarts), never by its id; ids and message text are logged
at DEBUG only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import traceback
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from config import Settings

REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter values would blank out ordinary words and numbers everywhere

# "/bot<anything>/" and "/file/bot<anything>/": the Bot API's (Telegram's and Zalo's) token place.
_BOT_SEGMENT = re.compile(r"(?<!/)(/bot)(?!<)[^/\s'\"<>]+(?=[/\s'\"<>]|$)")  # not "https://bot-api.host"
# A Telegram token outside a URL ("123456:ABC-..."), e.g. in PTB's InvalidToken message.
_TELEGRAM_TOKEN = re.compile(r"(?<![\w:])\d{5,12}:[A-Za-z0-9_-]{30,}(?![\w-])")
# scheme://user:password@host: the password part.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
# A web console sign-in link: whoever reads the token within its minutes could sign in.
_SIGN_IN_LINK = re.compile(r"(/dangnhap/)[A-Za-z0-9_-]{16,}")
# SQLAlchemy error texts repeat the statement's parameters: chat ids, question texts, tokens.
_SQL_PARAMETERS = re.compile(r"^\[parameters: .*$", re.MULTILINE)

_secrets: set[str] = set()
_tag_key: bytes = os.urandom(32)  # until install() derives a stable one from the configured secrets


def register_secret(value: str | None) -> None:
    """A value to blank out wherever it appears (and in its URL-encoded form)."""
    if value and len(value) >= MIN_SECRET:
        _secrets.add(value)
        encoded = quote(value, safe="")
        if encoded != value:
            _secrets.add(encoded)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret the settings hold: tokens, the webhook secret, the push API key, URL passwords."""
    values = [settings.telegram_bot_token, settings.zalo_bot_token, settings.webhook_secret,
              getattr(settings, "dossier_push_api_key", None), settings.zalo_oa_app_secret, settings.zalo_oa_secret_key,
              settings.zalo_oa_access_token, settings.zalo_oa_refresh_token]
    for url in (settings.database_url, getattr(settings, "dossier_status_url", None)):
        values.append(_url_password(url))
    return [v for v in values if v]


def _url_password(url: str | None) -> str | None:
    """The password of scheme://user:password@host, if the URL has one."""
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact(text: str) -> str:
    """`text` without any registered secret, Bot API token segment, URL password or SQL parameters."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _BOT_SEGMENT.sub(r"\1" + REDACTED, text)
    text = _TELEGRAM_TOKEN.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(r"\1" + REDACTED + "@", text)
    text = _SIGN_IN_LINK.sub(r"\1" + REDACTED, text)
    return _SQL_PARAMETERS.sub("[parameters: hidden]", text)


def chat_tag(channel: str, chat_id: object) -> str:
    """A short keyed hash naming a chat in logs: one chat, one tag; the id cannot be worked back from it."""
    digest = hmac.new(_tag_key, f"{channel}:{chat_id}".encode(), hashlib.sha256).hexdigest()
    return f"chat#{digest[:10]}"


def key_tag(chat_key: str) -> str:
    """chat_tag for a "channel:chat_id" key (handlers.messages.Incoming.chat_key)."""
    channel, _, chat_id = chat_key.partition(":")
    return chat_tag(channel, chat_id)


class RedactingFilter(logging.Filter):
    """Rewrites every record passing a handler: message with its arguments, exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is still logged, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            # The exception object itself still holds the token: no handler may format it again.
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


FILTER = RedactingFilter()


def install(settings: Settings | None = None, logger: logging.Logger | None = None) -> RedactingFilter:
    """Register the settings' secrets and put the filter on every handler of the root logger (and on
    the last-resort handler used when there is none). Safe to call again."""
    global _tag_key
    if settings is not None:
        secrets = settings_secrets(settings)
        for secret in secrets:
            register_secret(secret)
        if secrets:  # stable across restarts and worker processes of one installation, unknown outside it
            _tag_key = hashlib.sha256(b"motcua-log-tag\0" + "\0".join(sorted(secrets)).encode()).digest()
    root = logger or logging.getLogger()
    handlers = list(root.handlers) + ([logging.lastResort] if logging.lastResort is not None else [])
    for handler in handlers:
        if FILTER not in handler.filters:
            handler.addFilter(FILTER)
    return FILTER


def uninstall(logger: logging.Logger | None = None) -> None:
    """Take the filter off again (tests)."""
    root = logger or logging.getLogger()
    for handler in list(root.handlers) + ([logging.lastResort] if logging.lastResort is not None else []):
        handler.removeFilter(FILTER)
