"""What reminders a followed dossier calls for at a moment: the one place where a reminder is decided.

Pure: facts in, planned reminders out (kind, a key that makes it one reminder per follow, when it is
due, the message). The scan stores what is decided here and cancels what is no longer decided; the
dispatcher asks `QuietHours` whether a due reminder may go out now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from config import Settings
from nlp.normalize import fold
from reminders.access import Level
from reminders.statuses import FINISHED, IN_PROGRESS, Status, label

MAX_NOTE = 800  # an office note longer than this is cut: a reminder is a short message


@dataclass(frozen=True)
class DossierFacts:
    code: str
    procedure: str
    status: str
    status_since: datetime
    received_at: datetime | None = None
    due_at: datetime | None = None
    new_due_at: datetime | None = None
    status_history_id: int | None = None
    status_noticed_at: datetime | None = None  # when the bot learnt of the current status
    note: str | None = None
    delivery: str | None = None
    verifiable: bool = False  # the source gave the filer's last 4 digits, so a chat can prove it filed it


@dataclass(frozen=True)
class FollowFacts:
    created_at: datetime
    muted: bool = False
    unreachable: str | None = None


@dataclass(frozen=True)
class Planned:
    kind: str
    key: str
    due_at: datetime  # UTC
    text: str


def parse_clock(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes or 0))


@dataclass(frozen=True)
class QuietHours:
    """Hours in which no reminder goes out (start may be later than end: the night)."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def from_settings(cls, settings: Settings) -> QuietHours:
        return cls(parse_clock(settings.quiet_hours_start), parse_clock(settings.quiet_hours_end), ZoneInfo(settings.timezone))

    def contains(self, moment: datetime) -> bool:
        clock = moment.astimezone(self.zone).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def ends_after(self, moment: datetime) -> datetime:
        """When the quiet hours around `moment` end (UTC); `moment` itself when it is not quiet."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, self.zone)
        return end.astimezone(UTC)

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


# --------------------------------------------------------------------------- formatting

def local(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(zone)
    except OverflowError:  # a bad date already stored (31/12/9999 23:59 UTC): shown as it is rather than failing
        return moment


def show_date(moment: datetime | None, zone: ZoneInfo) -> str:
    """dd/mm/yyyy, with the time when the office gave one."""
    if moment is None:
        return "chưa có"
    at = local(moment, zone)
    return f"{at:%d/%m/%Y}" if at.time() == time(0) else f"{at:%H:%M} ngày {at:%d/%m/%Y}"


def _delivery_kind(delivery: str | None) -> str:
    text = fold(delivery or "")
    if "buu" in text or "bcci" in text or "post" in text:
        return "post"
    if "truc tuyen" in text or "online" in text or "dien tu" in text:
        return "online"
    return "office"


def _note(note: str | None) -> str:
    note = " ".join((note or "").split())
    return note if len(note) <= MAX_NOTE else note[: MAX_NOTE - 1] + "…"


def _name(d: DossierFacts, capital: bool = True) -> str:
    return f"{'Hồ' if capital else 'hồ'} sơ {d.code} ({d.procedure})"


def _collect(settings: Settings) -> str:
    where = settings.office_name + (f", {settings.office_address}" if settings.office_address else "")
    when = f" trong giờ làm việc ({settings.office_hours})" if settings.office_hours else " trong giờ làm việc"
    return (f"Mời bạn đến nhận kết quả tại {where}{when}, từ bây giờ; nhớ mang theo giấy tiếp nhận hồ sơ "
            "và giấy tờ tùy thân.")


def footer(code: str) -> str:
    return f"\n\nTắt nhắc: /tatnhac {code} · Ngừng theo dõi: /huytheodoi {code}"


def status_message(d: DossierFacts, settings: Settings) -> str:
    """The message for the dossier's current status (also the chat's answer about it, without the footer)."""
    zone = ZoneInfo(settings.timezone)
    name = _name(d)
    status = Status(d.status)
    appointment = d.new_due_at or d.due_at
    if status is Status.RECEIVED:
        text = f"{name} đã được tiếp nhận"
        text += f" ngày {local(d.received_at, zone):%d/%m/%Y}." if d.received_at else "."
        if appointment:
            text += f" Ngày hẹn trả kết quả: {show_date(appointment, zone)}."
    elif status is Status.PROCESSING:
        text = f"{name} đang được xử lý."
        if appointment:
            text += f" Ngày hẹn trả kết quả: {show_date(appointment, zone)}."
    elif status is Status.NEEDS_DOCUMENTS:
        text = f"{name} cần bổ sung giấy tờ."
        note = _note(d.note)
        text += f" Nội dung cần bổ sung: {note}" if note else " Bạn vui lòng liên hệ Bộ phận Một cửa để biết cần bổ sung gì."
        if note and not note.endswith((".", "!", "?", "…")):
            text += "."
        text += f" Bạn bổ sung tại {settings.office_name} để hồ sơ được tiếp tục giải quyết."
    elif status is Status.RESULT_READY:
        text = f"{name} đã có kết quả. "
        kind = _delivery_kind(d.delivery)
        if kind == "post":
            text += "Kết quả sẽ được gửi đến bạn qua bưu điện theo địa chỉ bạn đã đăng ký; bạn không cần đến nhận."
        elif kind == "online":
            text += "Bạn nhận kết quả trực tuyến trên Cổng dịch vụ công (tài khoản bạn đã dùng để nộp hồ sơ)."
        else:
            text += _collect(settings)
    elif status is Status.RETURNED:
        text = f"{name} đã được trả kết quả. Cảm ơn bạn đã sử dụng dịch vụ của {settings.office_name}."
    else:  # rejected
        text = f"{name} không được giải quyết."
        note = _note(d.note)
        text += f" Lý do: {note}" if note else " Bạn vui lòng liên hệ Bộ phận Một cửa để biết lý do."
        if note and not note.endswith((".", "!", "?", "…")):
            text += "."
    return text


def status_only_message(d: DossierFacts, settings: Settings) -> str:
    """The status alone (no procedure, dates, note or reason): what an office may show without verification."""
    zone = ZoneInfo(settings.timezone)
    return (f"Hồ sơ {d.code}: {label(d.status)} (cập nhật {show_date(d.status_since, zone)}). "
            f"Chi tiết hồ sơ xin liên hệ {settings.office_name} (/lienhe).")


def verify_prompt(d: DossierFacts, settings: Settings) -> str:
    """What a follow started before verification existed gets instead of details: how to go on."""
    if d.verifiable:
        how = (f"Để tiếp tục nhận tin, bạn gửi: /theodoi {d.code} <4 số cuối số điện thoại hoặc số CCCD đã khai khi nộp "
               "hồ sơ>.")
    else:
        how = f"Hồ sơ này chưa có thông tin để xác nhận; bạn vui lòng liên hệ {settings.office_name} (/lienhe)."
    return (f"Để bảo vệ thông tin của người nộp, từ nay tôi chỉ nhắn chi tiết hồ sơ {d.code} cho người đã xác nhận "
            f"là người nộp. {how}\n\nNgừng theo dõi: /huytheodoi {d.code}")


def _start_of(day: date, zone: ZoneInfo, clock: time = time(0)) -> datetime:
    return datetime.combine(day, clock, zone).astimezone(UTC)


# --------------------------------------------------------------------------- deciding

NOTIFIED_STATUSES = frozenset({Status.RECEIVED, Status.NEEDS_DOCUMENTS, Status.RESULT_READY, Status.RETURNED, Status.REJECTED})


def reminders_for(d: DossierFacts, follow: FollowFacts, now: datetime, settings: Settings,
                  level: Level = Level.FULL) -> list[Planned]:
    """Every reminder this follow should have for this dossier as of `now` (already sent ones included:
    the scan keeps one row per key, so a reminder decided again is not sent again).

    `level` is what the chat may see (reminders.access): an unverified follow (one started before chats
    had to prove they filed the dossier) gets one message saying how to verify and nothing about the
    dossier; a status-only follow hears of status changes in the status-only wording."""
    if follow.muted or follow.unreachable:
        return []
    zone = ZoneInfo(settings.timezone)
    status = Status(d.status)
    today = now.astimezone(zone).date()
    planned: list[Planned] = []
    tail = footer(d.code)
    if level is Level.NONE:
        return [] if status in FINISHED else [Planned("verify", "verify", now, verify_prompt(d, settings))]

    # A status change the citizen has not heard of (one learnt after they started following).
    noticed = d.status_noticed_at
    if status in NOTIFIED_STATUSES and d.status_history_id is not None and noticed is not None and noticed > follow.created_at:
        text = status_message(d, settings) if level is Level.FULL else status_only_message(d, settings)
        planned.append(Planned(status.value, f"status:{d.status_history_id}", noticed, text + tail))
    if level is not Level.FULL:
        return planned

    appointment = d.new_due_at or d.due_at
    # The day before the appointment, while the result may still be collected on the day.
    if appointment is not None and status in IN_PROGRESS | {Status.RESULT_READY}:
        day = appointment.astimezone(zone).date()
        if today < day:
            due = _start_of(day - timedelta(days=1), zone, parse_clock(settings.appointment_reminder_time))
            text = f"Nhắc lịch: ngày mai ({day:%d/%m/%Y}) là ngày hẹn trả kết quả của {_name(d, False)}."
            if status is Status.RESULT_READY and _delivery_kind(d.delivery) == "office":
                text += " Kết quả đã sẵn sàng. " + _collect(settings)
            elif status is Status.RESULT_READY:
                text += " Kết quả đã sẵn sàng" + (" và được gửi qua bưu điện." if _delivery_kind(d.delivery) == "post" else " trên Cổng dịch vụ công.")
            else:
                text += " Nếu hồ sơ có thay đổi, tôi sẽ nhắn bạn ngay."
            planned.append(Planned("appointment", f"appointment:{day.isoformat()}", due, text + tail))

    # Late: past the appointment and the office not done. The apology names the new date when the office set one.
    if d.due_at is not None and status in IN_PROGRESS:
        first = d.due_at.astimezone(zone).date()
        later = d.new_due_at.astimezone(zone).date() if d.new_due_at is not None else None
        passed = [day for day in (first, later) if day is not None and today > day]
        if passed:
            missed = max(passed)
            upcoming = later if later is not None and later >= today and later > missed else None
            text = (f"{settings.office_name} thành thật xin lỗi: {_name(d, False)} đã quá ngày hẹn trả "
                    f"{missed:%d/%m/%Y} mà chưa có kết quả. ")
            text += (f"Ngày hẹn trả mới: {upcoming:%d/%m/%Y}." if upcoming else
                     "Tôi sẽ nhắn bạn ngay khi hồ sơ có ngày hẹn mới hoặc có kết quả.")
            text += " Mong bạn thông cảm."
            key = f"late:{missed.isoformat()}:{upcoming.isoformat() if upcoming else '-'}"
            planned.append(Planned("late", key, _start_of(missed + timedelta(days=1), zone), text + tail))

    # A result waiting at the office, not collected after N days: one reminder.
    if status is Status.RESULT_READY and _delivery_kind(d.delivery) == "office" and settings.uncollected_days > 0:
        since = d.status_since
        due = since + timedelta(days=settings.uncollected_days)
        text = (f"{_name(d)} đã có kết quả từ ngày {since.astimezone(zone):%d/%m/%Y} nhưng chưa được nhận. "
                + _collect(settings))
        planned.append(Planned("uncollected", f"uncollected:{d.status_history_id or since.isoformat()}", due, text + tail))
    return planned


def describe_status(d: DossierFacts, settings: Settings, now: datetime) -> str:
    """The chat's answer about one dossier: its status in words, the appointment, and lateness."""
    zone = ZoneInfo(settings.timezone)
    lines = [status_message(d, settings)]
    appointment = d.new_due_at or d.due_at
    status = Status(d.status)
    if status in IN_PROGRESS and appointment is not None and now.astimezone(zone).date() > appointment.astimezone(zone).date():
        lines.append(f"Hồ sơ đã quá ngày hẹn trả {show_date(appointment, zone)}. {settings.office_name} thành thật xin lỗi vì sự chậm trễ.")
    elif status not in FINISHED and status not in (Status.RECEIVED, Status.PROCESSING) and appointment is not None:
        lines.append(f"Ngày hẹn trả kết quả: {show_date(appointment, zone)}.")
    lines.append(f"Trạng thái: {label(d.status)} (cập nhật {show_date(d.status_since, zone)}).")
    return "\n".join(lines)
