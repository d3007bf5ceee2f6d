"""/tongquan: how the bot serves citizens, for every staff role (issue 14).

Questions per day and channel split by outcome, distinct citizens, satisfaction and its trend, the most asked
procedures, dossiers on time and late, subscribers and announcements, for a range of days (default the last
30, office time); every table downloads as CSV or XLSX at /tongquan/bang/<name>.<csv|xlsx>?from=..&to=..
Figures come from knowledge.figures (definitions there); nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from knowledge import figures
from knowledge.figures import OUTCOME_LABELS, Overview
from knowledge.question_log import OUTCOMES
from knowledge.staff import ALL_STAFF
from web import charts
from web.export import FORMATS, table_download
from web.rendering import render
from web.security import StaffUser, require

router = APIRouter()
Staff = Annotated[StaffUser, Depends(require(ALL_STAFF))]

DEFAULT_DAYS = 30
MAX_DAYS = 366
COLORS = {"answered": "#067647", "clarified": "#0b5cad", "not_understood": "#b54708", "law": "#6941c6"}
SERIES = [charts.Series(key, OUTCOME_LABELS[key], COLORS[key]) for key in OUTCOMES]
CHANNEL_LABELS = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA", "test": "Thử nghiệm", "console": "Dòng lệnh"}
STATE_LABELS = {"sending": "Đang gửi", "done": "Đã gửi xong", "cancelled": "Đã hủy", "scheduled": "Đã hẹn giờ", "draft": "Nháp"}


def channel_label(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}".replace(".", ",") + "%"


# --------------------------------------------------------------------------- the range asked for

@dataclass(frozen=True)
class Asked:
    start: date
    end: date
    problem: str | None = None  # what was wrong with the dates typed (the default range is shown instead)

    @property
    def query(self) -> str:
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


def asked_range(request: Request, zone: ZoneInfo) -> Asked:
    """The days in ?from=YYYY-MM-DD&to=YYYY-MM-DD, or the last 30 days; a polite word about bad input."""
    today = datetime.now(zone).date()
    default = Asked(today - timedelta(days=DEFAULT_DAYS - 1), today)
    given_from, given_to = request.query_params.get("from", "").strip(), request.query_params.get("to", "").strip()
    if not given_from and not given_to:
        return default
    try:
        end = date.fromisoformat(given_to) if given_to else today
        start = date.fromisoformat(given_from) if given_from else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        return Asked(default.start, default.end, "Ngày không hợp lệ (cần dạng ngày/tháng/năm). Đang hiển thị 30 ngày gần nhất.")
    if end < start:
        return Asked(default.start, default.end, "Ngày bắt đầu sau ngày kết thúc. Đang hiển thị 30 ngày gần nhất.")
    if (end - start).days + 1 > MAX_DAYS:
        return Asked(end - timedelta(days=MAX_DAYS - 1), end,
                     f"Mỗi lần xem tối đa {MAX_DAYS} ngày: đang hiển thị {MAX_DAYS} ngày đến {end:%d/%m/%Y}.")
    return Asked(start, end)


def compute(request: Request, asked: Asked, parts: frozenset[str] = figures.PARTS) -> Overview:
    bot = request.app.state.motcua
    catalog = bot.source.current

    def name_of(entry_id: str) -> str | None:
        from handlers.answers import display_name

        entry = catalog.get(entry_id)
        return display_name(entry) if entry is not None else None

    with bot.db() as session:
        return figures.overview(session, figures.period(asked.start, asked.end, bot.settings.timezone), name_of, parts=parts)


# --------------------------------------------------------------------------- tables (shown and downloadable)

Table = tuple[str, list[str], list[list[object]]]  # title, headers, rows
OUTCOME_HEADERS = [OUTCOME_LABELS[key] for key in OUTCOMES]


def _by_day(o: Overview) -> Table:
    return ("Câu hỏi theo ngày", ["Ngày", *OUTCOME_HEADERS, "Tổng"],
            [[d.day, *(d.counts[k] for k in OUTCOMES), d.total] for d in o.by_day])


def _by_day_channel(o: Overview) -> Table:
    return ("Câu hỏi theo ngày và kênh", ["Ngày", "Kênh", *OUTCOME_HEADERS, "Tổng"],
            [[d.day, channel_label(d.channel or ""), *(d.counts[k] for k in OUTCOMES), d.total] for d in o.by_day_channel])


def _by_channel(o: Overview) -> Table:
    return ("Câu hỏi theo kênh", ["Kênh", *OUTCOME_HEADERS, "Tổng"],
            [[channel_label(channel), *(counts[k] for k in OUTCOMES), sum(counts.values())] for channel, counts in o.by_channel.items()])


def _satisfaction(o: Overview) -> Table:
    headers = ["Kỳ", "👍 Hữu ích", "👎 Chưa đúng", "Tỉ lệ hài lòng (%)"]
    rows = [[v.label, v.up, v.down, None if v.share is None else round(v.share * 100, 1)] for v in o.trend]
    if o.ratings is not None:  # the hand-off feature's 1–5 ratings
        headers += ["Lượt đánh giá 1–5", "Điểm trung bình"]
        for row, v in zip(rows, o.trend, strict=True):
            row += [v.rated, None if v.average is None else round(v.average, 2)]
    return ("Mức độ hài lòng", headers, rows)


def _procedures(o: Overview) -> Table:
    return ("Thủ tục được hỏi nhiều nhất", ["Hạng", "Mã", "Thủ tục", "Số câu hỏi"],
            [[rank, p.entry_id, p.name, p.count] for rank, p in enumerate(o.procedures, 1)])


def _dossiers(o: Overview) -> Table:
    d = o.dossiers
    return ("Hồ sơ tiếp nhận trong kỳ", ["Chỉ tiêu", "Số hồ sơ"], [
        ["Tiếp nhận", d.received], ["Đúng hạn", d.on_time], ["Trễ hạn", d.late],
        ["Tỉ lệ đúng hạn (%)", None if d.on_time_share is None else round(d.on_time_share * 100, 1)],
        ["Đang giải quyết, chưa đến hạn", d.in_time_pending], ["Chờ công dân bổ sung (quá hẹn)", d.waiting_citizen],
        ["Không có ngày hẹn trả", d.no_due_date]])


def _announcements(o: Overview) -> Table:
    return ("Thông báo đã gửi", ["Mã", "Bắt đầu gửi", "Nội dung", "Người nhận", "Đã gửi", "Không gửi được", "Trạng thái"],
            [[a.id, a.started_at, a.text, a.recipients, a.sent, a.failed, STATE_LABELS.get(a.state, a.state)] for a in o.announcements])


def _summary(o: Overview) -> Table:
    s = o.satisfaction
    rows: list[list[object]] = [
        ["Câu hỏi", o.questions], *([OUTCOME_LABELS[k], o.totals[k]] for k in OUTCOMES),
        ["Người hỏi (khác nhau)", o.citizens], ["Lượt 👍", s.up], ["Lượt 👎", s.down],
        ["Tỉ lệ hài lòng (%)", None if s.share is None else round(s.share * 100, 1)],
    ]
    if o.ratings is not None:
        rows += [["Lượt đánh giá 1–5", o.ratings.count],
                 ["Điểm đánh giá trung bình", None if o.ratings.average is None else round(o.ratings.average, 2)],
                 *([f"Số lượt {score} sao", n] for score, n in o.ratings.by_score.items())]
    rows += [["Người đăng ký nhận thông báo", o.subscribers.active], ["Đăng ký mới", o.subscribers.joined],
             ["Hủy đăng ký", o.subscribers.left], ["Thông báo đã gửi", len(o.announcements)]]
    return ("Tổng hợp", ["Chỉ tiêu", "Số liệu"], rows)


# Each table, and the figures it needs (a download computes only those).
TABLES: dict[str, tuple[Callable[[Overview], Table], frozenset[str]]] = {
    "tong-hop": (_summary, figures.PARTS - {"procedures", "dossiers"}),
    "cau-hoi-theo-ngay": (_by_day, frozenset({"questions"})),
    "cau-hoi-theo-kenh": (_by_channel, frozenset({"questions"})),
    "cau-hoi-theo-ngay-va-kenh": (_by_day_channel, frozenset({"questions"})),
    "hai-long": (_satisfaction, frozenset({"votes"})),
    "thu-tuc-hoi-nhieu": (_procedures, frozenset({"procedures"})),
    "ho-so": (_dossiers, frozenset({"dossiers"})),
    "thong-bao": (_announcements, frozenset({"announcements"})),
}


def shown(value: object, zone: ZoneInfo) -> str:
    """A cell as the page shows it: 1.234, 12,5 (a share), dd/mm/YYYY, office time, – for nothing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    if isinstance(value, float):
        return f"{value:.1f}".replace(".", ",")
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def _local(o: Overview, rows: list[list[object]]) -> list[list[object]]:
    """Moments in office time for the file (spreadsheets have no time zones)."""
    zone = o.period.zone
    return [[v.astimezone(zone) if isinstance(v, datetime) else v for v in row] for row in rows]


# --------------------------------------------------------------------------- pages

@router.get("/tongquan", response_class=HTMLResponse)
def overview_page(request: Request, user: Staff) -> Response:
    bot = request.app.state.motcua
    asked = asked_range(request, ZoneInfo(bot.settings.timezone))
    o = compute(request, asked)
    labels = [d.day.strftime("%d/%m") for d in o.by_day]
    questions_chart = charts.stacked_bars("Câu hỏi theo ngày", labels, [d.counts for d in o.by_day], SERIES)
    trend_chart = charts.line("Tỉ lệ hài lòng (👍 trên số câu trả lời được đánh giá)", [v.label for v in o.trend],
                              [None if v.share is None else v.share * 100 for v in o.trend])
    tables = {}
    for name, (build, _) in TABLES.items():
        title, headers, rows = build(o)
        # Right-aligned: the columns holding only numbers.
        numeric = {i for i in range(len(headers))
                   if all(row[i] is None or (isinstance(row[i], int | float) and not isinstance(row[i], bool)) for row in rows)}
        tables[name] = (title, headers, [[shown(v, o.period.zone) for v in row] for row in rows], numeric if rows else set())
    return render(request, "overview/page.html", o=o, asked=asked, tables=tables, questions_chart=questions_chart,
                  trend_chart=trend_chart, outcomes=OUTCOMES, outcome_labels=OUTCOME_LABELS, percent=percent,
                  channel_label=channel_label, formats=list(FORMATS))


@router.get("/tongquan/bang/{name}.{fmt}")
def download_table(name: str, fmt: str, request: Request, user: Staff) -> Response:
    if name not in TABLES or fmt not in FORMATS:
        return render(request, "overview/missing.html", status_code=404)
    bot = request.app.state.motcua
    asked = asked_range(request, ZoneInfo(bot.settings.timezone))
    build, parts = TABLES[name]
    o = compute(request, asked, parts)
    title, headers, rows = build(o)
    return table_download(f"{name}_{asked.start.isoformat()}_{asked.end.isoformat()}", headers, _local(o, rows), fmt, sheet=title)
