"""Office hours as settings: "T2-T6 07:30-11:30,13:30-17:00; T7 07:30-11:30" and a list of holidays.

Used to tell a citizen asking for an officer whether one answers now, and if not, from when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = {"T2": 0, "T3": 1, "T4": 2, "T5": 3, "T6": 4, "T7": 5, "CN": 6}
SPOKEN_DAYS = ["thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật"]
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
LOOK_AHEAD_DAYS = 400  # long enough for any run of holidays


class HoursError(ValueError):
    """A setting that does not read (the message says how to write it)."""


@dataclass(frozen=True)
class OfficeHours:
    ranges: dict[int, tuple[tuple[time, time], ...]]  # weekday -> opening ranges
    holidays: frozenset[date]
    zone: ZoneInfo

    @classmethod
    def parse(cls, hours: str, holidays: str = "", zone: str = "Asia/Ho_Chi_Minh") -> OfficeHours:
        ranges: dict[int, list[tuple[time, time]]] = {}
        for group in filter(None, (g.strip() for g in hours.split(";"))):
            days, _, times = group.partition(" ")
            if not times.strip():
                raise HoursError(f"HANDOFF_HOURS: \"{group}\" thiếu giờ, ví dụ \"T2-T6 07:30-11:30,13:30-17:00\"")
            spans = [_span(part.strip(), group) for part in times.split(",") if part.strip()]
            for day in _days(days.strip().upper(), group):
                ranges.setdefault(day, []).extend(spans)
        if not ranges:
            raise HoursError("HANDOFF_HOURS trống: cần ít nhất một nhóm ngày và giờ, ví dụ \"T2-T6 07:30-17:00\"")
        return cls({d: tuple(sorted(r)) for d, r in ranges.items()}, frozenset(_holidays(holidays)), ZoneInfo(zone))

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        return any(start <= local.time() < end for start, end in self.ranges.get(local.weekday(), ()))

    def next_opening(self, moment: datetime) -> datetime | None:
        """The first moment from `moment` on when the office is open (itself, if open now)."""
        local = moment.astimezone(self.zone)
        for offset in range(LOOK_AHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, end in self.ranges.get(day.weekday(), ()):
                opens = datetime.combine(day, start, self.zone)
                closes = datetime.combine(day, end, self.zone)
                if closes > local:
                    return max(opens, local)
        return None


def spoken(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """"07:30 sáng mai", "13:30 hôm nay", "07:30 thứ Hai, 14/12/2026"."""
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    clock = f"{local:%H:%M}"
    if local.date() == today:
        return f"{clock} hôm nay"
    if local.date() == today + timedelta(days=1):
        return f"{clock} ngày mai ({SPOKEN_DAYS[local.weekday()]}, {local:%d/%m/%Y})"
    return f"{clock} {SPOKEN_DAYS[local.weekday()]}, {local:%d/%m/%Y}"


def _span(text: str, group: str) -> tuple[time, time]:
    match = _RANGE.match(text)
    if not match:
        raise HoursError(f"HANDOFF_HOURS: \"{text}\" (trong \"{group}\") không đúng dạng giờ HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(x) for x in match.groups())
    try:
        # "24:00" ends the day: "T2-CN 00:00-24:00" is always open.
        start, end = time(h1, m1), (time.max if (h2, m2) == (24, 0) else time(h2, m2))
    except ValueError:
        raise HoursError(f"HANDOFF_HOURS: \"{text}\" có giờ không hợp lệ") from None
    if end <= start:
        raise HoursError(f"HANDOFF_HOURS: \"{text}\": giờ kết thúc phải sau giờ bắt đầu")
    return start, end


def _days(text: str, group: str) -> list[int]:
    days: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        if first not in DAY_NAMES or (dash and last not in DAY_NAMES):
            raise HoursError(f"HANDOFF_HOURS: \"{part}\" (trong \"{group}\") không phải ngày; dùng T2…T7, CN, vd \"T2-T6\"")
        start, end = DAY_NAMES[first], DAY_NAMES[last] if dash else DAY_NAMES[first]
        if end < start:
            raise HoursError(f"HANDOFF_HOURS: \"{part}\": ngày đầu phải trước ngày cuối")
        days.extend(range(start, end + 1))
    return days


def _holidays(text: str) -> list[date]:
    found = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        for layout in ("%d/%m/%Y", "%Y-%m-%d"):
            try:
                found.append(datetime.strptime(part, layout).date())
                break
            except ValueError:
                continue
        else:
            raise HoursError(f"HANDOFF_HOLIDAYS: \"{part}\" không phải ngày dạng dd/mm/yyyy")
    return found
