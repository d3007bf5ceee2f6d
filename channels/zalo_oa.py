"""The Zalo Official Account channel: the OA's webhook in, Open API v3 out, template (ZNS) reminders.

What the platform documents (developers.zalo.me), and how this module follows it:

* **Webhook**: events are POSTed to the URL set in the app's webhook settings, signed with the header
  `X-ZEvent-Signature: mac=<sha256 hex of app_id + raw body + timestamp + OA secret key>` (the timestamp is
  the body's, in milliseconds). A request without it, with a wrong one, or older than
  ZALO_OA_WEBHOOK_MAX_AGE_SECONDS is answered 401 and nothing of it is used. A signed event is recorded
  (zalo_oa_events) and answered 200 at once; the answer is written after, so the platform's quick
  acknowledgement never waits for the core. An event delivered again is answered 200 and not handled twice.
  Events: `user_send_text` (and the other `user_send_*`), `follow` (welcomed like /start), `unfollow`,
  `user_submit_info` (thanked; the submitted details are not kept), `oa_send_*` and receipts ignored.
* **Sending**: `POST {ZALO_OA_API_BASE_URL}/v3.0/oa/message/cs` with the header `access_token`, body
  `{"recipient": {"user_id"}, "message": {...}}`, answered `{"error": 0, "data": {"message_id"}}` or
  `{"error": <negative code>, "message"}`. Text of 1 to 2,000 characters (longer answers are split). A reply's
  choices become buttons (`oa.query.show`: the button's text comes back as the citizen's own message, which is
  mapped back to the choice; `oa.open.url` for links; `oa.open.phone` for the office's phone); where a reply
  has more choices than a message can carry, they are written as numbered lines and the citizen types the number.
* **Tokens**: OAuth v4 (`POST {ZALO_OA_OAUTH_BASE_URL}/v4/oa/access_token`, header `secret_key`, form
  app_id, refresh_token, grant_type=refresh_token) gives a new access token (about 25 h) and a new refresh token
  (the old one is spent). The pair lives in the database (zalo_oa_tokens, sealed with the app secret); it is
  refreshed a few minutes before expiry and on error -216 (token invalid or expired), and the request is
  retried once. A refresh is a compare-and-set on the row's version with a lease, so of two processes only
  one refreshes and the other waits for its result: a refresh token is never spent twice.
* **The reply window**: consultation (cs) messages only within ZALO_OA_WINDOW_HOURS (48) of the citizen's last
  message, at most ZALO_OA_WINDOW_MESSAGES (8) of them; counted in zalo_oa_users by every process.
* **Templates**: outside the window a reminder goes as an approved template message to the citizen's user id
  (`POST {ZALO_OA_ZNS_BASE_URL}/message/template`, `{"recipient": {"user_id"}, "template_id",
  "template_data", "tracking_id"}`), one template per reminder kind, parameters from the dossier. No template
  and no window: the reminder is undeliverable with that reason. Announcements go only inside the window.

Assumed where the documentation was not at hand (kept in constants, easy to change): at most 5 buttons per
message with titles of 100 characters, the error codes' meanings in ERRORS, and the template endpoint's body.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from channels.base import respond
from channels.limits import TOO_FAST, ChatQueues, TokenLimiter, limiter_for
from channels.outbound import Delivery, Outcome
from channels.zalo import message_parts
from config import Settings
from handlers.core import ONLY_TEXT
from handlers.messages import Button, Incoming, Reply
from knowledge import zalo_oa_store as store
from redaction import chat_tag, register_secret

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
API_BASE = "https://openapi.zalo.me"
OAUTH_BASE = "https://oauth.zaloapp.com"
ZNS_BASE = "https://business.openapi.zalo.me"
CS_PATH = "/v3.0/oa/message/cs"
OA_INFO_PATH = "/v2.0/oa/getoa"
TOKEN_PATH = "/v4/oa/access_token"
TEMPLATE_PATH = "/message/template"
SIGNATURE_HEADER = "X-ZEvent-Signature"

MESSAGE_LIMIT = 2000  # a cs text message: 1 to 2,000 characters
MAX_BUTTONS = 5  # assumed: more choices are written as numbered lines
BUTTON_TITLE_LIMIT = 100  # assumed
PARAM_LIMIT = 100  # a template parameter's value; register the templates' parameters at least this long
REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires
REFRESH_LEASE = timedelta(seconds=30)  # a refresh not finished by then (the process died) may be done again
QUOTA_RETRY_SECONDS = 3600.0  # a daily quota exceeded: the reminder waits and is tried again

WELCOME_COMMAND = "/start"
MORE_CHOICES = "Bạn có thể chọn thêm:"  # the message carrying the choices one message cannot hold
THANKS_FOR_INFO = "Cảm ơn bạn đã gửi thông tin. Bạn cứ đặt câu hỏi về thủ tục hành chính, tôi sẵn lòng giải đáp."

# Reminder kinds (reminders.decide) -> the setting holding their template id; "uncollected" is the
# result-ready template again (the result is there, not yet collected).
TEMPLATE_SETTINGS = {
    "received": "zalo_oa_template_received",
    "needs_documents": "zalo_oa_template_needs_documents",
    "result_ready": "zalo_oa_template_result_ready",
    "uncollected": "zalo_oa_template_result_ready",
    "appointment": "zalo_oa_template_appointment",
    "late": "zalo_oa_template_late",
    "rejected": "zalo_oa_template_rejected",
}
TEMPLATE_PARAMETERS = ("ma_ho_so", "thu_tuc", "ngay", "co_quan")


class Kind(StrEnum):
    """What an error code means for the message: what the caller should do."""

    TOKEN = "token"  # refresh the access token and try again once
    RATE = "rate"  # too many calls now: slow down, try again shortly
    QUOTA = "quota"  # the OA's daily quota for this kind of message: try again later
    BLOCKED = "blocked"  # the citizen does not follow the OA any more, or blocked it: stop
    WINDOW = "window"  # outside the reply window (the platform's count): a template may still go
    REJECTED = "rejected"  # this message cannot go (bad request, template not approved...): give up with the reason
    TRANSIENT = "transient"  # network, timeout, 5xx: try again


# Error codes of the OA Open API (negative) and ZNS, with their meaning as logged and stored for staff.
ERRORS: dict[int, tuple[str, Kind]] = {
    -32: ("vượt giới hạn số lần gọi API của ứng dụng", Kind.RATE),
    -124: ("access token không hợp lệ hoặc đã hết hạn", Kind.TOKEN),
    -201: ("tham số không hợp lệ", Kind.REJECTED),
    -204: ("OA đã bị xóa hoặc vô hiệu hóa", Kind.REJECTED),
    -205: ("OA không tồn tại", Kind.REJECTED),
    -209: ("ứng dụng chưa được kích hoạt hoặc chưa liên kết với OA", Kind.REJECTED),
    -210: ("tham số vượt quá giới hạn cho phép", Kind.REJECTED),
    -211: ("OA đã hết hạn mức (quota) cho loại tin này", Kind.QUOTA),
    -212: ("OA chưa đăng ký API này", Kind.REJECTED),
    -213: ("người dùng chưa quan tâm (theo dõi) OA", Kind.BLOCKED),
    -216: ("access token không hợp lệ hoặc đã hết hạn", Kind.TOKEN),
    -217: ("người dùng đã chặn tin nhắn từ OA", Kind.BLOCKED),
    -224: ("OA đã vượt hạn mức gửi tin", Kind.QUOTA),
    -230: ("người dùng không tương tác với OA trong khoảng thời gian cho phép (ngoài khung trả lời)", Kind.WINDOW),
    -232: ("người dùng chưa tương tác hoặc tương tác cuối đã quá hạn (ngoài khung trả lời)", Kind.WINDOW),
    -233: ("loại tin nhắn không được hỗ trợ hoặc không hợp lệ", Kind.REJECTED),
    -240: ("API gửi tin v2 đã ngừng, cần dùng v3", Kind.REJECTED),
    -108: ("số điện thoại không hợp lệ", Kind.REJECTED),
    -109: ("ID template không hợp lệ", Kind.REJECTED),
    -112: ("dữ liệu template (template_data) không hợp lệ", Kind.REJECTED),
    -114: ("người dùng không nhận được tin mẫu (trạng thái tài khoản hoặc tùy chọn nhận tin)", Kind.REJECTED),
    -115: ("tài khoản gửi tin mẫu không đủ số dư", Kind.QUOTA),
    -118: ("tài khoản Zalo không tồn tại hoặc đã bị vô hiệu hóa", Kind.BLOCKED),
    -131: ("template chưa được phê duyệt", Kind.REJECTED),
    -133: ("không được gửi tin mẫu vào ban đêm", Kind.QUOTA),
    -139: ("người dùng từ chối nhận loại tin mẫu này", Kind.BLOCKED),
    -141: ("người dùng từ chối nhận tin mẫu từ OA", Kind.BLOCKED),
    -144: ("OA đã vượt hạn mức gửi tin mẫu trong ngày", Kind.QUOTA),
}


def meaning(code: int | None) -> tuple[str, Kind]:
    """An error code's meaning and kind; unknown negative codes are refusals, a missing code is the network."""
    if code is None:
        return "lỗi mạng hoặc máy chủ Zalo không trả lời", Kind.TRANSIENT
    if code in ERRORS:
        return ERRORS[code]
    if code >= 500:
        return f"máy chủ Zalo lỗi {code}", Kind.TRANSIENT
    if code == 429:
        return "quá nhiều yêu cầu", Kind.RATE
    return f"mã lỗi {code} chưa rõ nghĩa", Kind.REJECTED


class OAApiError(Exception):
    """A failed OA / OAuth / ZNS call; `code` is the platform's (None for a network error)."""

    def __init__(self, what: str, code: int | None, message: str = "") -> None:
        self.what, self.code, self.message = what, code, message
        self.meaning, self.kind = meaning(code)
        super().__init__(f"{what}: {code if code is not None else 'network'} {self.meaning}" + (f" ({message})" if message else ""))

    @property
    def retryable(self) -> bool:
        return self.kind in (Kind.TRANSIENT, Kind.RATE)


def oa_key(settings: Settings) -> str:
    """The OA's key in the database and in the limiter registry (the tokens change; the OA does not)."""
    raw = f"{settings.zalo_oa_app_id or ''}:{settings.zalo_oa_id or ''}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def missing_settings(settings: Settings) -> list[str]:
    """The settings the channel cannot run without."""
    needed = ("zalo_oa_app_id", "zalo_oa_app_secret", "zalo_oa_secret_key", "zalo_oa_access_token", "zalo_oa_refresh_token")
    return [name.upper() for name in needed if not getattr(settings, name, None)]


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class Token:
    access: str
    expires_at: datetime | None
    version: int


class TokenKeeper:
    """The OA's access token: read from the database, refreshed there by one process at a time."""

    def __init__(self, settings: Settings, db: sessionmaker[Session], http: httpx.AsyncClient, oauth_base: str,
                 clock: Callable[[], datetime] = store.utc_now) -> None:
        self.settings, self.db, self.http = settings, db, http
        self.url = oauth_base.rstrip("/") + TOKEN_PATH
        self.key = oa_key(settings)
        self.secret = settings.zalo_oa_app_secret or ""
        self.clock = clock
        self.refreshes = 0  # refreshes this keeper did (reports, tests)
        self._lock = asyncio.Lock()
        self._seed = hashlib.sha256((settings.zalo_oa_refresh_token or "").encode("utf-8")).hexdigest()[:16]

    async def token(self) -> Token:
        """A usable access token: refreshed first when it expires within REFRESH_MARGIN."""
        token = await asyncio.to_thread(self._load)
        if token.expires_at is not None and token.expires_at - self.clock() < REFRESH_MARGIN:
            token = await self.refresh(token.version)
        return token

    async def refresh(self, seen_version: int) -> Token:
        """A new pair in place of version `seen_version` (or the newer one another refresh already stored)."""
        async with self._lock:
            current = await asyncio.to_thread(self._load)
            if current.version != seen_version:
                return current  # refreshed meanwhile, here or in another process
            refresh_token = await asyncio.to_thread(self._claim, seen_version)
            if refresh_token is None:
                return await self._wait_for_newer(seen_version)
            try:
                access, new_refresh, lifetime = await self._call_oauth(refresh_token)
            except BaseException:
                await asyncio.to_thread(self._release, seen_version)
                raise
            expires = self.clock() + timedelta(seconds=lifetime) if lifetime else None
            stored = await asyncio.to_thread(self._store, seen_version, access, new_refresh, expires)
            self.refreshes += 1
            log.info("zalo_oa: access token refreshed (valid until %s)", f"{expires:%Y-%m-%d %H:%M} UTC" if expires else "unknown")
            return stored

    # ------------------------------------------------------------------ database (in a thread)

    def _load(self) -> Token:
        """The stored pair; seeded from the settings when absent, when the office put a new pair in the settings,
        or when it was sealed with another app secret."""
        with self.db() as session:
            row = session.get(store.ZaloOATokenRow, self.key)
            access = store.unseal(row.access_token, self.secret) if row else None
            if row is not None and access is not None and self._seed_of(row) == self._seed:
                return Token(access, store.as_utc(row.expires_at), row.version)
            self._seed_row(session, row)
            row = session.get(store.ZaloOATokenRow, self.key)
            session.refresh(row)
            return Token(store.unseal(row.access_token, self.secret) or "", store.as_utc(row.expires_at), row.version)

    def _seed_of(self, row: store.ZaloOATokenRow) -> str | None:
        seed = store.unseal(row.refresh_token, self.secret)
        return seed.partition("\n")[0] if seed else None

    def _sealed_refresh(self, refresh_token: str) -> str:
        # The settings' pair it descends from travels with the refresh token: a new pair in .env wins over it.
        return store.seal(f"{self._seed}\n{refresh_token}", self.secret)

    def _seed_row(self, session: Session, row: store.ZaloOATokenRow | None) -> None:
        access = store.seal(self.settings.zalo_oa_access_token or "", self.secret)
        refresh = self._sealed_refresh(self.settings.zalo_oa_refresh_token or "")
        if row is None:
            session.add(store.ZaloOATokenRow(oa_key=self.key, access_token=access, refresh_token=refresh, expires_at=None,
                                             version=1, updated_at=store.utc_now()))
        else:
            log.warning("zalo_oa: the token pair in the settings replaces the stored one (new pair, or another app secret)")
            row.access_token, row.refresh_token, row.expires_at = access, refresh, None
            row.version, row.refreshing_until, row.updated_at = row.version + 1, None, store.utc_now()
        try:
            session.commit()
        except IntegrityError:  # another process seeded it first: theirs is as good
            session.rollback()

    def _claim(self, version: int) -> str | None:
        """Take the refresh (the row at `version`, nobody refreshing): the refresh token, or None."""
        R = store.ZaloOATokenRow
        now = self.clock()
        with self.db() as session:
            result = session.execute(
                update(R).where(R.oa_key == self.key, R.version == version,
                                or_(R.refreshing_until.is_(None), R.refreshing_until < now))
                .values(refreshing_until=now + REFRESH_LEASE), execution_options={"synchronize_session": False})
            session.commit()
            if not result.rowcount:
                return None
            sealed = session.scalar(select(R.refresh_token).where(R.oa_key == self.key))
        value = store.unseal(sealed or "", self.secret) or ""
        return value.partition("\n")[2]

    def _release(self, version: int) -> None:
        R = store.ZaloOATokenRow
        with self.db() as session:
            session.execute(update(R).where(R.oa_key == self.key, R.version == version).values(refreshing_until=None),
                            execution_options={"synchronize_session": False})
            session.commit()

    def _store(self, version: int, access: str, refresh: str, expires: datetime | None) -> Token:
        R = store.ZaloOATokenRow
        with self.db() as session:
            result = session.execute(
                update(R).where(R.oa_key == self.key, R.version == version)
                .values(access_token=store.seal(access, self.secret), refresh_token=self._sealed_refresh(refresh),
                        expires_at=expires, version=version + 1, refreshing_until=None, updated_at=store.utc_now()),
                execution_options={"synchronize_session": False})
            session.commit()
        if not result.rowcount:  # the lease ran out and another process refreshed: ours is spent, use theirs
            log.warning("zalo_oa: a slow token refresh was overtaken by another process")
            return self._load()
        return Token(access, expires, version + 1)

    async def _wait_for_newer(self, version: int) -> Token:
        """Another process is refreshing: wait (bounded by its lease) for the pair it stores."""
        deadline = time.monotonic() + REFRESH_LEASE.total_seconds() + 5
        delay = 0.05
        while time.monotonic() < deadline:
            token = await asyncio.to_thread(self._load)
            if token.version != version:
                return token
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 2)
        raise OAApiError("refresh", -216, "another process's token refresh did not finish")

    # ------------------------------------------------------------------ OAuth

    async def _call_oauth(self, refresh_token: str) -> tuple[str, str, float | None]:
        register_secret(refresh_token)
        try:
            response = await self.http.post(self.url, headers={"secret_key": self.secret},
                                            data={"app_id": self.settings.zalo_oa_app_id or "", "refresh_token": refresh_token,
                                                  "grant_type": "refresh_token"})
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OAApiError("refresh", None, type(error).__name__) from None
        if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
            code = _int(body.get("error")) if isinstance(body, dict) else None
            detail = str(body.get("error_description") or body.get("error_name") or body.get("message") or "") if isinstance(body, dict) else ""
            raise OAApiError("refresh", code if code is not None else response.status_code, detail)
        register_secret(body["access_token"])
        register_secret(body["refresh_token"])
        return str(body["access_token"]), str(body["refresh_token"]), _float(body.get("expires_in"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- the OA's API

class ZaloOA:
    """One OA: its API calls (token handled), its pace and the reply window's bookkeeping."""

    def __init__(self, settings: Settings, db: sessionmaker[Session], *, api_base: str | None = None,
                 oauth_base: str | None = None, zns_base: str | None = None,
                 clock: Callable[[], datetime] = store.utc_now, timeout: float = 15.0) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self.api_base = (api_base or settings.zalo_oa_api_base_url or API_BASE).rstrip("/")
        self.zns_base = (zns_base or settings.zalo_oa_zns_base_url or ZNS_BASE).rstrip("/")
        for secret in (settings.zalo_oa_app_secret, settings.zalo_oa_secret_key, settings.zalo_oa_access_token,
                       settings.zalo_oa_refresh_token):
            register_secret(secret)
        self._timeout = timeout
        self.http = self._new_http()
        self.tokens = TokenKeeper(settings, db, self.http, oauth_base or settings.zalo_oa_oauth_base_url or OAUTH_BASE, clock)
        # One limiter per OA, shared by replies, reminders and announcements of this process (channels.limits).
        self.limiter: TokenLimiter = limiter_for(CHANNEL, oa_key(settings))
        self.window_hours = settings.zalo_oa_window_hours
        self.window_messages = settings.zalo_oa_window_messages

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, pool=None),
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))

    def reopen(self) -> None:
        if self.http.is_closed:
            self.http = self._new_http()
            self.tokens.http = self.http

    async def aclose(self) -> None:
        await self.http.aclose()

    # ------------------------------------------------------------------ calls

    async def call(self, what: str, url: str, body: dict | None = None, *, get: bool = False) -> dict:
        """One call with the current access token; on a token error the token is refreshed and the call
        tried once more."""
        token = await self.tokens.token()
        try:
            return await self._request(what, url, body, token.access, get)
        except OAApiError as error:
            if error.kind is not Kind.TOKEN:
                raise
            log.info("zalo_oa: %s: %s; refreshing the access token and trying once more", what, error.meaning)
        token = await self.tokens.refresh(token.version)
        return await self._request(what, url, body, token.access, get)

    async def _request(self, what: str, url: str, body: dict | None, access: str, get: bool) -> dict:
        headers = {"access_token": access}
        try:
            response = await (self.http.get(url, headers=headers) if get else self.http.post(url, headers=headers, json=body or {}))
        except httpx.HTTPError as error:
            raise OAApiError(what, None, type(error).__name__) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OAApiError(what, response.status_code if response.status_code >= 400 else 502, "not JSON")
        code = _int(data.get("error"))
        if response.status_code >= 400 and not code:
            raise OAApiError(what, response.status_code, str(data.get("message") or ""))
        if code:
            raise OAApiError(what, code, str(data.get("message") or ""))
        result = data.get("data")
        return result if isinstance(result, dict) else {}

    async def send_cs(self, user_id: str, message: dict) -> dict:
        """A consultation message (the window is the caller's to check)."""
        return await self.call("message/cs", self.api_base + CS_PATH, {"recipient": {"user_id": user_id}, "message": message})

    async def send_template(self, user_id: str, template_id: str, data: dict[str, str], tracking_id: str) -> dict:
        """An approved template message to the citizen's Zalo user id."""
        body = {"recipient": {"user_id": user_id}, "template_id": template_id, "template_data": data, "tracking_id": tracking_id}
        return await self.call("message/template", self.zns_base + TEMPLATE_PATH, body)

    async def check(self) -> dict:
        """The OA's profile: proves the token works."""
        return await self.call("getoa", self.api_base + OA_INFO_PATH, get=True)

    # ------------------------------------------------------------------ the reply window

    async def take_slot(self, user_id: str) -> bool:
        return await asyncio.to_thread(self._in_session, store.take_window_slot, user_id, self.clock(),
                                       self.window_hours, self.window_messages)

    async def give_back(self, user_id: str) -> None:
        await asyncio.to_thread(self._in_session, store.give_back_slot, user_id)

    async def close_window(self, user_id: str) -> None:
        await asyncio.to_thread(self._in_session, store.close_window, user_id)

    def _in_session(self, function: Callable[..., Any], *args: Any) -> Any:
        with self.db() as session:
            return function(session, *args)


# --------------------------------------------------------------------------- webhook

def signature(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """The X-ZEvent-Signature of a webhook request."""
    digest = hashlib.sha256(app_id.encode("utf-8") + body + timestamp.encode("utf-8") + secret_key.encode("utf-8"))
    return "mac=" + digest.hexdigest()


@dataclass(frozen=True)
class OAEvent:
    name: str
    user_id: str
    text: str
    at: datetime


def event_time(payload: dict) -> datetime | None:
    """The event's timestamp (milliseconds since the epoch, as a string or number)."""
    value = _float(payload.get("timestamp"))
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def event_key(payload: dict) -> str | None:
    """What identifies an event for the once-only check: its message id, else its name, user and time."""
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    msg_id = message.get("msg_id") or message.get("message_id")
    if isinstance(msg_id, str | int) and not isinstance(msg_id, bool) and str(msg_id):
        return f"msg:{msg_id}"
    user = _user_of(payload)
    if payload.get("event_name") and payload.get("timestamp"):
        return f"{payload.get('event_name')}:{user}:{payload.get('timestamp')}"
    return None


def _user_of(payload: dict) -> str:
    for field in ("follower", "sender", "user"):
        part = payload.get(field)
        if isinstance(part, dict) and part.get("id"):
            return str(part["id"])
    return ""


def parse_event(payload: Any, oa_id: str | None = None) -> OAEvent | None:
    """The event's name, citizen and text; None for events the bot does not act on (the OA's own messages,
    receipts, anything without a citizen)."""
    if not isinstance(payload, dict):
        return None
    name = str(payload.get("event_name") or "")
    if not name or name.startswith("oa_") or name in ("user_received_message", "user_seen_message"):
        return None
    user_id = _user_of(payload)
    if not user_id or (oa_id and user_id == str(oa_id)):
        return None
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    text = message.get("text")
    return OAEvent(name, user_id, text if isinstance(text, str) else "", event_time(payload) or store.utc_now())


# --------------------------------------------------------------------------- rendering replies

@dataclass(frozen=True)
class Rendered:
    messages: list[dict]
    offered: dict[str, str]  # what the citizen may send back (a button's text, a number) -> the button's data


def _title(label: str) -> str:
    label = " ".join(label.split())
    return label if len(label) <= BUTTON_TITLE_LIMIT else label[: BUTTON_TITLE_LIMIT - 1].rstrip() + "…"


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def render(reply: Reply, settings: Settings) -> Rendered:
    """A reply as cs messages: text parts with the buttons on the last; choices beyond one message's
    MAX_BUTTONS on one short message after it; more than two messages' worth as numbered lines."""
    buttons = [b for row in reply.buttons for b in row]
    choices = [b for b in buttons if not b.url]
    links = [b for b in buttons if b.url]
    phone = _office_phone_button(reply.text, settings)
    if len(buttons) > 2 * MAX_BUTTONS:
        return _numbered(reply, choices, links)
    offered: dict[str, str] = {}
    oa_buttons: list[dict] = []
    for number, button in enumerate(choices, 1):
        title = _title(button.label)
        while title in offered:  # two choices with one label: the citizen's text must tell them apart
            title = _title(f"{number}. {button.label}")
        offered[title] = button.data
        offered[str(number)] = button.data  # a numbered reply may be answered by typing the number
        oa_buttons.append({"title": title, "type": "oa.query.show", "payload": title})
    for button in links:
        url = button.url or ""
        if url.startswith("tel:"):
            oa_buttons.append({"title": _title(button.label), "type": "oa.open.phone", "payload": {"phone_code": url[4:]}})
        else:
            oa_buttons.append({"title": _title(button.label), "type": "oa.open.url", "payload": {"url": url}})
    if phone and len(oa_buttons) < 2 * MAX_BUTTONS:
        oa_buttons.append(phone)
    messages: list[dict] = [{"text": part} for part in message_parts(reply.text, MESSAGE_LIMIT)]
    if oa_buttons:
        messages[-1]["attachment"] = _buttons(oa_buttons[:MAX_BUTTONS])
    if len(oa_buttons) > MAX_BUTTONS:
        messages.append({"text": MORE_CHOICES, "attachment": _buttons(oa_buttons[MAX_BUTTONS:])})
    return Rendered(messages, offered)


def _buttons(buttons: list[dict]) -> dict:
    return {"type": "template", "payload": {"buttons": buttons}}


def _numbered(reply: Reply, choices: list[Button], links: list[Button]) -> Rendered:
    """Too many choices for buttons: numbered lines, answered by typing the number."""
    lines = [reply.text]
    if not reply.numbered and choices:
        lines += ["", "Gõ số để chọn:"] + [f"{i}. {b.label}" for i, b in enumerate(choices, 1)]
    lines += [f"{b.label}: {b.url}" for b in links]
    return Rendered([{"text": part} for part in message_parts("\n".join(lines), MESSAGE_LIMIT)],
                    {str(i): b.data for i, b in enumerate(choices, 1)})


def _office_phone_button(text: str, settings: Settings) -> dict | None:
    """A call button for the office's phone when the reply gives it (/lienhe, "I don't know")."""
    phone = _digits(settings.office_phone or "")
    if len(phone) < 6 or phone not in _digits(text):
        return None
    return {"title": _title(f"📞 Gọi {settings.office_name}"), "type": "oa.open.phone", "payload": {"phone_code": phone}}


# --------------------------------------------------------------------------- the channel

class ZaloOAChannel:
    """Feeds the OA's webhook events to the conversation core and sends its replies as cs messages."""

    name = CHANNEL

    def __init__(self, core, settings: Settings, *, db: sessionmaker[Session] | None = None, oa: ZaloOA | None = None,
                 max_attempts: int = 4, backoff_base: float = 1.0, backoff_max: float = 30.0,
                 clock: Callable[[], datetime] = store.utc_now) -> None:
        missing = missing_settings(settings)
        if missing:
            raise ValueError(f"missing settings: {', '.join(missing)}")
        self.core = core
        self.settings = settings
        self.db = db or getattr(getattr(core, "context", None), "db", None)
        if self.db is None:
            raise ValueError("the Zalo OA channel needs the database (tokens, reply window, events)")
        self.oa = oa or ZaloOA(settings, self.db, clock=clock)
        self.clock = clock
        self.queues = ChatQueues(getattr(settings, "chat_max_pending", 5))
        self.max_attempts = max(1, max_attempts)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.max_age = settings.zalo_oa_webhook_max_age_seconds
        self.server = None
        self._tasks: set[asyncio.Task] = set()
        if logging.getLogger("httpx").getEffectiveLevel() < logging.WARNING:
            logging.getLogger("httpx").setLevel(logging.WARNING)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, listen: str = "127.0.0.1", port: int = 8445) -> None:
        """Check the token (a failure is logged: the webhook still serves), then serve the webhook."""
        from channels.webhooks import WebhookServer
        from operations import DatabaseProbe

        self.oa.reopen()
        try:
            info = await self.oa.check()
            log.info("zalo_oa: serving the OA %s", info.get("name") or "")
        except OAApiError as error:
            log.warning("zalo_oa: the OA could not be checked (%s); serving the webhook anyway", error)
        await asyncio.to_thread(self._prune)
        server = WebhookServer("zalo_oa webhook")
        server.add_webhook(self.settings.zalo_oa_webhook_path, self.webhook_handler())
        server.add_health(DatabaseProbe(self.db))
        await server.start(listen, port)
        self.server = server
        log.info("zalo_oa: webhook served on %s:%d%s", listen, server.port, self.settings.zalo_oa_webhook_path)

    @property
    def port(self) -> int | None:
        return self.server.port if self.server else None

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop receiving, let the answers being written go out (bounded), close the connections."""
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.oa.aclose()

    def _prune(self) -> None:
        with self.db() as session:
            store.prune_events(session)

    # ------------------------------------------------------------------ receiving

    def webhook_handler(self) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Signature (401), freshness (401), body, once-only, then 200 at once and the work after."""
        from channels.webhooks import BadPayload, parse_json, secret_matches

        app_id = self.settings.zalo_oa_app_id or ""
        secret_key = self.settings.zalo_oa_secret_key or ""

        def refuse(request: web.Request, reason: str) -> web.Response:
            log.warning("zalo_oa webhook: refused a request from %s: %s", request.remote or "?", reason)
            return web.json_response({"error": 401, "message": "Unauthorized"}, status=401)

        async def receive(request: web.Request) -> web.Response:
            given = request.headers.get(SIGNATURE_HEADER)
            if not given:
                return refuse(request, "no signature")
            raw = await request.read()
            try:
                payload = parse_json(raw)
            except BadPayload:
                return refuse(request, "a body that cannot be checked")
            if not isinstance(payload, dict):
                return refuse(request, "a body that cannot be checked")
            stamp = payload.get("timestamp")
            if not secret_matches(given, signature(app_id, raw, str(stamp or ""), secret_key)):
                return refuse(request, "wrong signature")
            at = event_time(payload)
            if at is None or abs((self.clock() - at).total_seconds()) > self.max_age:
                return refuse(request, "stale or missing timestamp")
            key = event_key(payload)
            if key is not None and not await asyncio.to_thread(self._first_time, key):
                log.info("zalo_oa webhook: event received again; already handled")
                return web.json_response({"error": 0, "message": "duplicate"})
            self._spawn(self.handle_event(payload))
            return web.json_response({"error": 0, "message": "ok"})

        return receive

    def _first_time(self, key: str) -> bool:
        with self.db() as session:
            return store.first_time(session, key)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every event taken in has been handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def handle_event(self, payload: dict) -> None:
        """One signed event: answered in the citizen's order, or logged; never raises."""
        try:
            event = parse_event(payload, self.settings.zalo_oa_id)
            if event is None:
                return
            if event.name == "unfollow":
                await asyncio.to_thread(self._in_session, store.set_following, event.user_id, False)
                return
            # Any message, a follow or submitted details open the reply window again.
            following = True if event.name == "follow" else None
            await asyncio.to_thread(self._in_session, store.user_wrote, event.user_id, self.clock(), following)
            if not self.queues.admit(event.user_id):
                log.info("zalo_oa: %s sends faster than it can be answered; a message dropped", chat_tag(CHANNEL, event.user_id))
                if self.queues.first_refusal(event.user_id):
                    await self.send_replies(event.user_id, [Reply(TOO_FAST)])
                return
            async with self.queues.turn(event.user_id):
                replies = await self._replies(event)
                await self.send_replies(event.user_id, replies)
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad event must not affect the other citizens
            log.exception("zalo_oa: an event could not be handled")

    async def _replies(self, event: OAEvent) -> list[Reply]:
        if event.name == "follow":
            return await respond(self.core, Incoming(CHANNEL, event.user_id, event.user_id, WELCOME_COMMAND))
        if event.name == "user_submit_info":
            return [Reply(THANKS_FOR_INFO)]
        if event.name == "user_send_text" and event.text.strip():
            offered = await asyncio.to_thread(self._in_session, store.offered_to, event.user_id)
            data = offered.get(event.text.strip())
            incoming = (Incoming(CHANNEL, event.user_id, event.user_id, "", button=data) if data is not None
                        else Incoming(CHANNEL, event.user_id, event.user_id, event.text))
            return await respond(self.core, incoming)
        if event.name.startswith("user_send_"):
            return [Reply(ONLY_TEXT)]
        return []

    def _in_session(self, function: Callable[..., Any], *args: Any) -> Any:
        with self.db() as session:
            return function(session, *args)

    # ------------------------------------------------------------------ sending

    async def send_replies(self, user_id: str, replies: list[Reply]) -> bool:
        """Send the core's replies; the choices of the last reply with any are what a tap or number means next."""
        rendered = [render(reply, self.settings) for reply in replies]
        if rendered:
            offered = next((r.offered for r in reversed(rendered) if r.offered), None)
            await asyncio.to_thread(self._in_session, store.save_offered, user_id, offered)
        for item in rendered:
            for message in item.messages:
                if not await self.send_message(user_id, message):
                    return False
        return True

    async def send_message(self, user_id: str, message: dict) -> bool:
        """One reply message, inside the window, retried on network errors and rate limits; False if it did not go."""
        tag = chat_tag(CHANNEL, user_id)
        if not await self.oa.take_slot(user_id):
            log.warning("zalo_oa: a reply to %s not sent: the reply window is used up or shut", tag)
            return False
        try:
            await self._call_retrying(user_id, message)
            return True
        except OAApiError as error:
            await self.oa.give_back(user_id)
            if error.kind is Kind.WINDOW:
                await self.oa.close_window(user_id)
            level = logging.WARNING if error.kind in (Kind.BLOCKED, Kind.WINDOW) else logging.ERROR
            log.log(level, "zalo_oa: message to %s given up: %s", tag, error)
            return False

    async def _call_retrying(self, user_id: str, message: dict) -> None:
        retrying = AsyncRetrying(retry=retry_if_exception(lambda e: isinstance(e, OAApiError) and e.retryable),
                                 stop=stop_after_attempt(self.max_attempts), wait=self._retry_wait,
                                 before_sleep=self._log_retry(user_id), reraise=True)
        async for attempt in retrying:
            with attempt:
                await self.oa.limiter.acquire(user_id)
                try:
                    await self.oa.send_cs(user_id, message)
                except OAApiError as error:
                    if error.kind is Kind.RATE:
                        self.oa.limiter.pause(self._backoff(attempt.retry_state.attempt_number))
                    raise

    def _retry_wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return 0.0 if isinstance(error, OAApiError) and error.kind is Kind.RATE else self._backoff(state.attempt_number)

    def _log_retry(self, user_id: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("zalo_oa: message to %s failed (%s); retry %d of %d", chat_tag(CHANNEL, user_id), error,
                        state.attempt_number, self.max_attempts - 1)
        return before_sleep

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (1 + random.random() * 0.1)


# --------------------------------------------------------------------------- unprompted messages

@dataclass(frozen=True)
class ReminderFacts:
    """What a template needs of a reminder: its kind and the dossier's facts."""

    id: int
    kind: str
    code: str
    procedure: str
    date: datetime | None


class ZaloOASender:
    """Reminders and announcements on the OA (channels.outbound.Sender): a cs message inside the window;
    outside it a reminder goes as its kind's template, anything else is undeliverable with the reason."""

    channel = CHANNEL
    max_text = MESSAGE_LIMIT
    seconds_per_chat = 1.0

    def __init__(self, settings: Settings, db: sessionmaker[Session], *, oa: ZaloOA | None = None) -> None:
        self.settings = settings
        self.db = db
        self.oa = oa or ZaloOA(settings, db)
        self.limiter = self.oa.limiter

    @property
    def messages_per_second(self) -> float:
        return self.limiter.messages_per_second

    async def aclose(self) -> None:
        await self.oa.aclose()

    async def send(self, chat_id: str, text: str, buttons: list[list[Button]] | None = None) -> Delivery:
        """One attempt. A reminder being sent by reminders.dispatch is recognised by its claimed row (same chat
        and text), so it can go as a template when the window is shut."""
        return await self._send(chat_id, text, buttons, None)

    async def send_reminder(self, reminder_id: int, chat_id: str, text: str) -> Delivery:
        """One attempt at the reminder `reminder_id` (its kind chooses the template outside the window)."""
        return await self._send(chat_id, text, None, reminder_id)

    async def _send(self, chat_id: str, text: str, buttons: list[list[Button]] | None, reminder_id: int | None) -> Delivery:
        if len(text) > self.max_text:
            return Delivery(Outcome.REJECTED, f"text of {len(text)} characters exceeds {self.max_text}")
        self.oa.reopen()
        if await self.oa.take_slot(chat_id):
            rendered = render(Reply(text, buttons or []), self.settings)
            try:
                await self.oa.send_cs(chat_id, rendered.messages[0])
                return Delivery(Outcome.SENT)
            except OAApiError as error:
                await self.oa.give_back(chat_id)
                if error.kind is not Kind.WINDOW:
                    return self._delivery(chat_id, error)
                await self.oa.close_window(chat_id)  # the platform counts differently: a template may still go
        reminder = await asyncio.to_thread(self._reminder, chat_id, text, reminder_id)
        if reminder is None:
            return Delivery(Outcome.REJECTED, self._outside_window())
        template = getattr(self.settings, TEMPLATE_SETTINGS.get(reminder.kind, ""), None) if reminder.kind in TEMPLATE_SETTINGS else None
        if not template:
            setting = TEMPLATE_SETTINGS.get(reminder.kind)
            missing = f"chưa cấu hình mẫu tin (ZNS) cho loại nhắc '{reminder.kind}'" + (f" ({setting.upper()})" if setting else "")
            log.warning("zalo_oa: reminder %s to %s undeliverable: outside the window and no template for %s",
                        reminder.id, chat_tag(CHANNEL, chat_id), reminder.kind)
            return Delivery(Outcome.REJECTED, f"{self._outside_window()} và {missing}")
        try:
            await self.oa.send_template(chat_id, template, self.template_data(reminder), f"reminder-{reminder.id}")
            return Delivery(Outcome.SENT)
        except OAApiError as error:
            return self._delivery(chat_id, error, template=template)

    def _outside_window(self) -> str:
        return (f"ngoài khung trả lời của Zalo OA ({self.settings.zalo_oa_window_messages} tin trong "
                f"{self.settings.zalo_oa_window_hours:g} giờ sau tin cuối của người dân)")

    def _delivery(self, chat_id: str, error: OAApiError, template: str | None = None) -> Delivery:
        """The outcome of a failed call, with the code's meaning (logged too)."""
        detail = f"lỗi {error.code}: {error.meaning}" + (f" (mẫu {template})" if template else "")
        log.warning("zalo_oa: message to %s not sent: %s", chat_tag(CHANNEL, chat_id), error)
        if error.kind is Kind.QUOTA:
            return Delivery(Outcome.RATE_LIMITED, detail, QUOTA_RETRY_SECONDS)
        if error.kind is Kind.RATE:
            self.limiter.pause(1.0)
            return Delivery(Outcome.RATE_LIMITED, detail, 1.0)
        if error.kind is Kind.BLOCKED:
            return Delivery(Outcome.BLOCKED, detail)
        if error.kind in (Kind.TRANSIENT, Kind.TOKEN):
            return Delivery(Outcome.TRANSIENT, detail)
        return Delivery(Outcome.REJECTED, detail)

    def _reminder(self, chat_id: str, text: str, reminder_id: int | None) -> ReminderFacts | None:
        """The reminder being sent: by id, else the claimed one of this chat with this text."""
        from reminders.models import DossierRow, ReminderRow

        with self.db() as session:
            if reminder_id is not None:
                row = session.get(ReminderRow, reminder_id)
            else:
                row = session.scalars(select(ReminderRow).where(ReminderRow.channel == CHANNEL, ReminderRow.chat_id == chat_id,
                                                                ReminderRow.state == "claimed", ReminderRow.text == text)
                                      .order_by(ReminderRow.id).limit(1)).first()
            if row is None:
                return None
            dossier = session.get(DossierRow, row.dossier_code)
            if dossier is None:
                return ReminderFacts(row.id, row.kind, row.dossier_code, "", None)
            return ReminderFacts(row.id, row.kind, dossier.code, dossier.procedure, _reminder_date(row.kind, dossier))

    def template_data(self, reminder: ReminderFacts) -> dict[str, str]:
        """The template's parameters: dossier code, procedure, the date that matters for the kind, office."""
        zone = ZoneInfo(self.settings.timezone)
        day = store.as_utc(reminder.date).astimezone(zone).strftime("%d/%m/%Y") if reminder.date else ""
        return {"ma_ho_so": _cut(reminder.code), "thu_tuc": _cut(reminder.procedure), "ngay": day,
                "co_quan": _cut(self.settings.office_name)}


def _reminder_date(kind: str, dossier) -> datetime | None:
    if kind in ("appointment", "late"):
        return dossier.new_due_at or dossier.due_at
    if kind == "received":
        return dossier.received_at or dossier.status_since
    return dossier.status_since


def _cut(value: str | None) -> str:
    value = " ".join((value or "").split())
    return value if len(value) <= PARAM_LIMIT else value[: PARAM_LIMIT - 1].rstrip() + "…"


# --------------------------------------------------------------------------- starting

def webhook_port(settings: Settings) -> int:
    return settings.zalo_oa_webhook_port if settings.zalo_oa_webhook_port is not None else settings.webhook_port + 2


async def start_zalo_oa(core, settings: Settings, *, listen: str | None = None,
                        port: int | None = None) -> Callable[[], Awaitable[None]]:
    """Start the OA channel (its webhook server: the OA has no polling) and return how to stop it; a
    ChannelError with a plain reason when it cannot start."""
    from channels.runner import ChannelError

    missing = missing_settings(settings)
    if missing:
        raise ChannelError(f"Kênh Zalo OA cần {', '.join(missing)} (xem README, mục Zalo Official Account).")
    channel = ZaloOAChannel(core, settings)
    try:
        await channel.start(listen or settings.webhook_listen, webhook_port(settings) if port is None else port)
    except OSError as error:
        await channel.stop()
        raise ChannelError(f"Không mở được cổng webhook của Zalo OA: {error}") from None
    return channel.stop


def oa_link(settings: Settings) -> str | None:
    """The OA's own link (and QR code content), where an OA is configured."""
    return f"https://zalo.me/{settings.zalo_oa_id}" if settings.zalo_oa_id else None
