"""Composing an announcement: checking it, previewing who gets it, creating, cancelling, reporting.

Decision on length: an announcement longer than one message of a recipient's platform is refused with
the limit and the excess, never split. Split parts can arrive apart or half-delivered (a crash, a
block between parts), and one delivery row per recipient would no longer mean one message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from broadcasts.audience import Audience, AudienceError, parse_audience, recipients
from broadcasts.models import BroadcastRow, DeliveryRow, DeliveryState, State, aware, utcnow
from config import Settings
from knowledge.models import local_time

# One message's length per platform; Zalo also carries the link in the text (it has no buttons).
TELEGRAM_MAX_TEXT = 4096  # telegram.constants.MessageLimit.MAX_TEXT_LENGTH
ZALO_MAX_TEXT = 2000  # channels.zalo.MESSAGE_LIMIT
MAX_LINK_LABEL = 64
LATE_TOLERANCE = timedelta(minutes=1)  # "at 8:00" typed at 8:00:30 still means now-ish, not the past


def max_text(channel: str) -> int:
    if channel == "telegram":
        from telegram.constants import MessageLimit

        return MessageLimit.MAX_TEXT_LENGTH
    if channel == "zalo":
        from channels.zalo import MESSAGE_LIMIT

        return MESSAGE_LIMIT
    if channel == "zalo_oa":
        from channels.zalo_oa import MESSAGE_LIMIT as OA_LIMIT

        return OA_LIMIT
    return TELEGRAM_MAX_TEXT


class ComposeError(ValueError):
    """Bad input, with a message for staff (Vietnamese)."""


@dataclass
class Draft:
    text: str
    audience: str = "all"
    at: datetime | None = None  # None: now
    link_label: str | None = None
    link_url: str | None = None


@dataclass
class Preview:
    audience: Audience
    by_channel: Counter
    at: datetime | None
    description: str

    @property
    def count(self) -> int:
        return sum(self.by_channel.values())


def parse_time(text: str, settings: Settings, now: datetime | None = None) -> datetime:
    """A time as staff type it, in the office's zone: "08:00" (today), "27/11 08:00", "27/11/2026 08:00",
    "2026-11-27 08:00", or an ISO time with its own zone. Returns UTC-aware."""
    zone = ZoneInfo(settings.timezone)
    now_local = (now or utcnow()).astimezone(zone)
    raw = " ".join(text.strip().split())
    try:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(ZoneInfo("UTC"))
    except ValueError:
        pass
    for pattern in ("%H:%M %d/%m/%Y", "%d/%m/%Y %H:%M", "%H:%M %d/%m", "%d/%m %H:%M", "%Hh%M %d/%m", "%d/%m %Hh%M", "%H:%M", "%Hh%M", "%Hh"):
        try:
            parsed = datetime.strptime(raw, pattern)
        except ValueError:
            continue
        if "%Y" not in pattern:
            parsed = parsed.replace(year=now_local.year)
        if "%d" not in pattern:
            parsed = parsed.replace(month=now_local.month, day=now_local.day)
        return parsed.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
    raise ComposeError(f"Không hiểu thời điểm \"{text}\". Ví dụ: 08:00, 27/11 08:00 hoặc 27/11/2026 08:00.")


def check_text(draft: Draft) -> str:
    """What can be said of the text alone (the length per platform needs the recipients)."""
    text = (draft.text or "").strip()
    if not text:
        raise ComposeError("Nội dung thông báo đang trống. Vui lòng nhập nội dung.")
    if bool(draft.link_label) != bool(draft.link_url):
        raise ComposeError("Nút liên kết cần cả nhãn và địa chỉ (--link-label và --link-url).")
    if draft.link_url and not draft.link_url.startswith(("https://", "http://")):
        raise ComposeError(f"Địa chỉ liên kết \"{draft.link_url}\" phải bắt đầu bằng https://")
    if draft.link_label and len(draft.link_label) > MAX_LINK_LABEL:
        raise ComposeError(f"Nhãn nút liên kết dài quá {MAX_LINK_LABEL} ký tự.")
    longest = max(max_text(c) for c in ("telegram", "zalo"))
    if len(text) > longest:
        raise ComposeError(f"Thông báo dài {len(text)} ký tự, quá giới hạn {longest} ký tự một tin "
                           f"({len(text) - longest} ký tự thừa). Vui lòng rút gọn; thông báo không được chia nhỏ.")
    return text


def check(session: Session, draft: Draft, settings: Settings, now: datetime | None = None) -> Preview:
    """Everything wrong with a draft raises ComposeError; otherwise who would get it."""
    now = now or utcnow()
    text = check_text(draft)
    if draft.at is not None and aware(draft.at) < now - LATE_TOLERANCE:
        shown = local_time(draft.at, settings.timezone)
        raise ComposeError(f"Thời điểm gửi {shown:%H:%M %d/%m/%Y} đã qua. Vui lòng chọn thời điểm trong tương lai.")
    try:
        audience = parse_audience(draft.audience, settings, session)
    except AudienceError as error:
        raise ComposeError(str(error)) from None
    rows = recipients(session, audience)
    by_channel = Counter(row.channel for row in rows)
    if not rows:
        raise ComposeError(f"Chưa có ai thuộc đối tượng này ({audience.describe(settings)}), nên không có ai để gửi.")
    for channel in by_channel:
        length = len(text) + (len(f"\n\n{draft.link_label}: {draft.link_url}") if channel == "zalo" and draft.link_url else 0)
        limit = max_text(channel)
        if length > limit:
            name = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA"}.get(channel, channel)
            raise ComposeError(f"Thông báo dài {length} ký tự, quá giới hạn {limit} ký tự một tin của {name} "
                               f"({length - limit} ký tự thừa). Vui lòng rút gọn; thông báo không được chia nhỏ.")
    return Preview(audience, by_channel, aware(draft.at), audience.describe(settings))


def create(session: Session, draft: Draft, settings: Settings, actor: str, now: datetime | None = None) -> BroadcastRow:
    """Check and save; one to send now gets its recipients at once (those the preview counted)."""
    now = now or utcnow()
    preview = check(session, draft, settings, now)
    later = preview.at is not None and preview.at > now
    row = BroadcastRow(text=draft.text.strip(), link_label=draft.link_label, link_url=draft.link_url,
                       audience=preview.audience.spec, scheduled_at=preview.at if later else now,
                       state=State.SCHEDULED.value, created_by=actor, created_at=now)
    session.add(row)
    session.flush()
    if not later:
        materialise(session, row, settings, now)
    return row


def materialise(session: Session, row: BroadcastRow, settings: Settings, now: datetime | None = None) -> int:
    """Choose the recipients (one delivery row each) and start sending; nobody matching ends it."""
    now = now or utcnow()
    try:
        chats = recipients(session, parse_audience(row.audience, settings, session))
    except AudienceError:  # its area left OFFICE_AREAS since it was scheduled: nobody to send it to
        chats = []
    if chats:
        session.execute(insert(DeliveryRow), [
            {"broadcast_id": row.id, "channel": s.channel, "chat_id": s.chat_id, "state": DeliveryState.PENDING.value,
             "attempts": 0} for s in chats])
    row.recipients = len(chats)
    if chats:
        row.state = State.SENDING.value
    else:
        row.state, row.started_at, row.finished_at = State.DONE.value, now, now
        row.note = "không còn ai thuộc đối tượng lúc gửi"
    session.flush()
    return len(chats)


def cancel(session: Session, broadcast_id: int, actor: str) -> tuple[BroadcastRow | None, str]:
    """Cancel a scheduled or sending announcement; a sending dispatcher sees it within a fraction of a second."""
    row = session.get(BroadcastRow, broadcast_id)
    if row is None:
        return None, f"Không có thông báo số {broadcast_id}."
    if row.state in (State.DONE.value, State.CANCELLED.value):
        return row, f"Thông báo #{row.id} đã {'gửi xong' if row.state == State.DONE.value else 'bị hủy'} rồi, không hủy được nữa."
    was, now = row.state, utcnow()
    row.state, row.cancelled_by, row.finished_at = State.CANCELLED.value, actor, now
    # Rows in flight belong to a live dispatcher, which records them; with nobody sending they are stuck.
    nobody_sending = row.lease_owner is None or aware(row.lease_until) is None or aware(row.lease_until) < now
    stopped = [DeliveryState.PENDING.value] + ([DeliveryState.IN_FLIGHT.value] if nobody_sending else [])
    session.execute(update(DeliveryRow).where(DeliveryRow.broadcast_id == row.id, DeliveryRow.state.in_(stopped))
                    .values(state=DeliveryState.CANCELLED.value))
    session.flush()
    refresh_counts(session, row)
    if was == State.SCHEDULED.value:
        return row, f"Đã hủy thông báo #{row.id} (chưa gửi cho ai)."
    return row, (f"Đã dừng thông báo #{row.id}: đến lúc này {row.sent} người đã nhận. "
                 f"Vài tin đang gửi dở có thể vẫn đến; số cuối cùng xem bằng báo cáo của thông báo #{row.id}.")


# --------------------------------------------------------------------------- reports

def counts(session: Session, broadcast_id: int) -> Counter:
    rows = session.execute(select(DeliveryRow.state, func.count()).where(DeliveryRow.broadcast_id == broadcast_id)
                           .group_by(DeliveryRow.state))
    return Counter({state: n for state, n in rows})


def refresh_counts(session: Session, row: BroadcastRow) -> Counter:
    found = counts(session, row.id)
    row.sent, row.blocked, row.failed = found["sent"], found["blocked"], found["failed"]
    row.recipients = max(row.recipients, sum(found.values()))
    return found


def rate(row: BroadcastRow) -> float | None:
    """Messages per second from start to finish (or to now, while sending)."""
    if not row.started_at or not row.sent:
        return None
    end = aware(row.finished_at) or utcnow()
    seconds = (end - aware(row.started_at)).total_seconds()
    return row.sent / seconds if seconds > 0 else None


STATE_LABELS = {"draft": "nháp", "scheduled": "đã lên lịch", "sending": "đang gửi", "done": "đã gửi xong",
                "cancelled": "đã hủy"}


def report_lines(session: Session, row: BroadcastRow, settings: Settings) -> list[str]:
    found = counts(session, row.id)
    zone = settings.timezone

    def when(moment):
        return f"{local_time(moment, zone):%H:%M:%S %d/%m/%Y}" if moment else "—"

    recipients_count = sum(found.values()) or row.recipients
    speed = rate(row)
    lines = [f"Thông báo #{row.id} – {STATE_LABELS.get(row.state, row.state)}",
             f"Nội dung: {row.text[:80]}{'…' if len(row.text) > 80 else ''}",
             f"Đối tượng: {_describe(row.audience, settings)}; tạo bởi {row.created_by}",
             f"Hẹn gửi: {when(row.scheduled_at)}",
             f"Người nhận: {recipients_count}; đã gửi: {found['sent']}; chặn bot: {found['blocked']}; "
             f"lỗi: {found['failed']}; chưa gửi: {found['pending'] + found['in_flight']}"
             + (f"; bỏ do hủy: {found['cancelled']}" if found["cancelled"] else ""),
             f"Bắt đầu: {when(row.started_at)}; kết thúc: {when(row.finished_at)}",
             f"Tốc độ: {speed:.1f} tin/giây" if speed else "Tốc độ: —"]
    if row.note:
        lines.append(f"Ghi chú: {row.note}")
    return lines


def _describe(spec: str, settings: Settings) -> str:
    try:
        return parse_audience(spec, settings).describe(settings)
    except AudienceError:  # an area since removed from the settings
        return spec


def latest(session: Session, limit: int = 10) -> list[BroadcastRow]:
    return list(session.scalars(select(BroadcastRow).order_by(BroadcastRow.id.desc()).limit(limit)))
