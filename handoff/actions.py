"""What the chat, the inbox and the delivery service do alike: end a hand-off (the citizen told, asked to
rate), the rating prompt and its buttons, the texts citizens read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from config import Settings
from handlers.buttons import ButtonData
from handlers.messages import Button
from handoff.hours import OfficeHours
from knowledge import handoff_store as store

RATING_HOURS = 72.0  # a request to rate is answered within this, or forgotten


@dataclass(frozen=True)
class HandoffButton(ButtonData):
    """"🙋 Hỏi cán bộ" under an answer the bot could not give well."""

    prefix: ClassVar[str] = "hb"
    action: Literal["ask"] = "ask"


@dataclass(frozen=True)
class RatingButton(ButtonData):
    """A score 1-5 for a rating request; 0: no comment to add."""

    prefix: ClassVar[str] = "rt"
    request: int
    score: int


ASK_LABEL = "🙋 Hỏi cán bộ"
RATE_HANDOFF = ("Bạn hài lòng thế nào với sự hỗ trợ của cán bộ? Chọn từ 1 (rất không hài lòng) đến 5 (rất hài lòng), "
                "hoặc gõ một số từ 1 đến 5.")
RATE_DOSSIER = ("Hồ sơ {code} đã được trả kết quả. Bạn hài lòng thế nào với việc giải quyết hồ sơ? Chọn từ 1 (rất không "
                "hài lòng) đến 5 (rất hài lòng), hoặc gõ một số từ 1 đến 5.")
CLOSED_BY_OFFICER = "Cán bộ đã kết thúc cuộc trò chuyện. Cảm ơn bạn! Bạn có thể tiếp tục hỏi trợ lý bất cứ lúc nào."
CLOSED_IDLE = ("Cuộc trò chuyện với cán bộ đã kết thúc vì không có tin nhắn mới trong {minutes} phút. Cần hỏi thêm, bạn "
               "gõ /canbo; hoặc cứ hỏi trợ lý như thường.")
CLOSED_BY_CITIZEN = "Đã kết thúc cuộc trò chuyện với cán bộ. Bạn có thể tiếp tục hỏi trợ lý như thường."


@lru_cache(maxsize=8)
def _hours(hours: str, holidays: str, zone: str) -> OfficeHours:
    return OfficeHours.parse(hours, holidays, zone)


def office_hours(settings: Settings) -> OfficeHours:
    """HANDOFF_HOURS and HANDOFF_HOLIDAYS, read (a HoursError says what is wrong)."""
    return _hours(settings.handoff_hours, settings.handoff_holidays, settings.timezone)


def month_of(moment: datetime, settings: Settings) -> str:
    return f"{moment.astimezone(ZoneInfo(settings.timezone)):%Y-%m}"


def rating_buttons(request_id: int) -> list[list[Button]]:
    return [[Button(f"{score} ⭐", RatingButton(request_id, score).pack()) for score in range(1, 6)]]


def rating_rows(request_id: int) -> list[list[tuple[str, str]]]:
    """rating_buttons as the outbox stores them."""
    return [[(b.label, b.data) for b in row] for row in rating_buttons(request_id)]


@dataclass
class Ended:
    handoff: store.HandoffRow
    rating: store.RatingRequestRow | None  # asked to rate (an answered hand-off)


def end(session: Session, handoff_id: int, closed_by: str, settings: Settings, now: datetime, *,
        notify: str | None = None, idle_since: datetime | None = None) -> Ended | None:
    """Close the hand-off once (None when it was not open); an answered one asks the citizen to rate.

    `notify`: a notice queued for the citizen's chat (officer's close, idle) with the rating prompt after it;
    the citizen ending it reads both in the reply instead. Commits.
    """
    row = store.close(session, handoff_id, closed_by, now, only_if_idle_since=idle_since)
    if row is None:
        return None
    request = None
    if row.first_reply_at is not None:
        request = store.ask_rating(session, f"handoff:{row.id}", row.channel, row.chat_id, "handoff", now, RATING_HOURS)
    if notify:
        message = store.add_message(session, row, store.NOTICE, notify, now=now)
        store.queue(session, row.channel, row.chat_id, notify, handoff_id=row.id, message_id=message.id, now=now)
        if request is not None:
            store.queue(session, row.channel, row.chat_id, RATE_HANDOFF, handoff_id=row.id, buttons=rating_rows(request.id), now=now)
    if settings.handoff_telegram_group_id:
        who = {"citizen": "người dân kết thúc", "idle": "không có tin nhắn mới"}.get(closed_by, f"cán bộ {closed_by} đóng")
        store.queue(session, "telegram", str(settings.handoff_telegram_group_id), f"✔️ Cuộc trò chuyện #{row.id} đã kết thúc ({who}).",
                    handoff_id=row.id, target=store.TO_GROUP, now=now)
    session.commit()
    return Ended(row, request)
