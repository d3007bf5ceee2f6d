"""The console's announcements (/thongbao), for admins and broadcasters.

Compose (text, audience, optional link button, now or at a time) with the recipient count and a preview as
each platform will show it, refreshed by htmx as the form changes; the list with live progress (htmx polls a
fragment every 2 s while an announcement is scheduled or sending); one announcement's report; cancel with a
confirmation page (works without JavaScript, and on a phone).

Every check and change goes through broadcasts.compose, the functions `bot.py broadcast` and the chat's
/thongbao use, so the three accept, refuse (same messages) and create alike; a running bot finds the new
row by its poll and sends it. Nothing here sends a message itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcasts import compose
from broadcasts.audience import AudienceError, known_topics, office_areas, parse_audience, recipients
from broadcasts.models import BroadcastRow, DeliveryRow, State, aware, utcnow
from config import Settings
from handlers.messages import Button, Reply
from knowledge.groups import group_label, ordered_groups
from knowledge.models import local_time
from knowledge.staff import CAN_BROADCAST, record_action
from web.rendering import render
from web.security import StaffUser, require

router = APIRouter()
Broadcaster = Annotated[StaffUser, Depends(require(CAN_BROADCAST))]  # admins and broadcasters only

LIST_LIMIT = 50
ACTIVE = (State.SCHEDULED.value, State.SENDING.value)
SOON = timedelta(minutes=2)  # a scheduled announcement this close to its time is polled as if sending
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA", "console": "Console"}
DEFAULT_LINK_LABEL = "Xem chi tiết"  # what the dispatcher writes on a button given no label


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def channel_limit(channel: str) -> int:
    return compose.max_text(channel)


# --------------------------------------------------------------------------- the form

@dataclass
class ComposeForm:
    """The compose form as posted (field names are the HTML ones)."""

    noidung: str = ""
    doituong: str = "all"  # all | area | topic
    khuvuc: list[str] = field(default_factory=list)
    chude: list[str] = field(default_factory=list)
    khi: str = "ngay"  # ngay (now) | hengio (at `thoidiem`)
    thoidiem: str = ""  # datetime-local "2026-12-07T08:00", or as staff type it in the chat ("27/11 08:00")
    nhan: str = ""  # link button label
    lienket: str = ""  # link button address

    @classmethod
    async def read(cls, request: Request) -> ComposeForm:
        form = await request.form()

        def one(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        # Browsers post a textarea's line breaks as CRLF; citizens get LF, and the length limits count LF.
        text = form.get("noidung")
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip() if isinstance(text, str) else ""
        return cls(noidung=text, doituong=one("doituong") or "all",
                   khuvuc=[v.strip() for v in form.getlist("khuvuc") if isinstance(v, str) and v.strip()],
                   chude=[v.strip() for v in form.getlist("chude") if isinstance(v, str) and v.strip()],
                   khi=one("khi") or "ngay", thoidiem=one("thoidiem"), nhan=one("nhan"), lienket=one("lienket"))

    def audience_spec(self) -> str:
        """The audience as compose understands it ("all", "area:a,b", "topic:x")."""
        if self.doituong == "area":
            if not self.khuvuc:
                raise compose.ComposeError("Vui lòng chọn ít nhất một xã/phường.")
            return "area:" + ",".join(self.khuvuc)
        if self.doituong == "topic":
            if not self.chude:
                raise compose.ComposeError("Vui lòng chọn ít nhất một chủ đề.")
            return "topic:" + ",".join(self.chude)
        return "all"

    def moment(self, settings: Settings) -> datetime | None:
        if self.khi != "hengio":
            return None
        if not self.thoidiem:
            raise compose.ComposeError("Vui lòng chọn ngày giờ gửi, hoặc chọn Gửi ngay.")
        return compose.parse_time(self.thoidiem, settings)

    def draft(self, settings: Settings) -> compose.Draft:
        """Raises ComposeError for what the form itself gets wrong; compose.check judges the rest."""
        label = self.nhan or None
        if self.lienket and not label:
            label = DEFAULT_LINK_LABEL  # as the chat does for a bare address
        return compose.Draft(text=self.noidung, audience=self.audience_spec(), at=self.moment(settings),
                             link_label=label, link_url=self.lienket or None)


def checked(session: Session, draft: compose.Draft, settings: Settings) -> compose.Preview:
    """compose.check: the same checks (per-channel length limits included) as the CLI and the chat."""
    return compose.check(session, draft, settings)


# --------------------------------------------------------------------------- how citizens see it

@dataclass
class Rendering:
    channel: str
    text: str
    buttons: list[tuple[str, str]]  # (label, url) under the message
    length: int
    limit: int

    @property
    def name(self) -> str:
        return channel_name(self.channel)

    @property
    def too_long(self) -> bool:
        return self.length > self.limit


def rendering(channel: str, text: str, label: str | None, url: str | None, settings: Settings) -> Rendering:
    """The message a recipient on `channel` gets, built as the senders build it (channels.outbound and
    channels.zalo_oa): Telegram shows a link button under the text; Zalo has no buttons and gets the link
    written after the text; the OA renders buttons through its own renderer."""
    buttons = [[Button(label or DEFAULT_LINK_LABEL, url=url)]] if url else []
    if channel == "zalo":  # ZaloSender.send
        links = [f"{b.label}: {b.url}" for row in buttons for b in row if b.url]
        shown = "\n\n".join([text, *links]) if links else text
        return Rendering(channel, shown, [], len(shown), channel_limit(channel))
    if channel == "zalo_oa":
        from channels.zalo_oa import render as render_oa

        first = render_oa(Reply(text, buttons), settings).messages[0]
        oa_buttons = first.get("attachment", {}).get("payload", {}).get("buttons", [])
        shown_buttons = [(b.get("title", ""), str((b.get("payload") or {}).get("url") or (b.get("payload") or {}).get("phone_code", "")))
                         for b in oa_buttons]
        return Rendering(channel, text, shown_buttons, len(text), channel_limit(channel))
    return Rendering(channel, text, [(b.label, b.url or "") for row in buttons for b in row], len(text), channel_limit(channel))


@dataclass
class Live:
    """What the compose page shows beside the form: who would get it, how, and what is wrong."""

    by_channel: Counter
    description: str | None
    renderings: list[Rendering]
    error: str | None
    ready: bool  # the draft passes every check
    note: str | None = None  # choices the form holds that the chosen audience does not use

    @property
    def count(self) -> int:
        return sum(self.by_channel.values())

    @property
    def channels(self) -> list[tuple[str, int]]:
        return [(channel_name(c), n) for c, n in sorted(self.by_channel.items())]


def live_preview(session: Session, form: ComposeForm, settings: Settings) -> Live:
    by_channel: Counter = Counter()
    description = None
    error = None
    try:
        audience = parse_audience(form.audience_spec(), settings, session)
        by_channel = Counter(row.channel for row in recipients(session, audience))
        description = audience.describe(settings)
    except (AudienceError, compose.ComposeError) as problem:
        error = str(problem)
    ready = False
    if error is None and form.noidung:
        try:
            checked(session, form.draft(settings), settings)
            ready = True
        except compose.ComposeError as problem:
            error = str(problem)
    label = form.nhan or (DEFAULT_LINK_LABEL if form.lienket else None)
    channels = sorted(by_channel) or ["telegram"]
    renderings = [rendering(c, form.noidung, label, form.lienket or None, settings) for c in channels] if form.noidung else []
    note = None
    if form.doituong != "area" and form.khuvuc or form.doituong != "topic" and form.chude:
        # Ticking an area without choosing "Theo xã/phường" would otherwise go unnoticed until everyone got it.
        note = "Các xã/phường hoặc chủ đề đã đánh dấu không được dùng vì chưa chọn cách gửi tương ứng ở trên."
    return Live(by_channel, description, renderings, error, ready, note)


# --------------------------------------------------------------------------- reports

@dataclass
class ChannelReport:
    channel: str
    states: Counter

    @property
    def name(self) -> str:
        return channel_name(self.channel)

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def waiting(self) -> int:
        return self.states["pending"] + self.states["in_flight"]


def channel_reports(session: Session, broadcast_id: int) -> list[ChannelReport]:
    found: dict[str, Counter] = defaultdict(Counter)
    rows = session.execute(select(DeliveryRow.channel, DeliveryRow.state, func.count())
                           .where(DeliveryRow.broadcast_id == broadcast_id)
                           .group_by(DeliveryRow.channel, DeliveryRow.state))
    for channel, state, n in rows:
        found[channel][state] = n
    return [ChannelReport(c, found[c]) for c in sorted(found)]


def describe_audience(spec: str, settings: Settings) -> str:
    try:
        return parse_audience(spec, settings).describe(settings)
    except AudienceError:  # an area since removed from the settings
        return spec


@dataclass
class Progress:
    """One announcement's state and counters, as the dispatcher last wrote them to its row."""

    row: BroadcastRow
    audience: str
    channels: list[ChannelReport]
    rate: float | None

    @property
    def active(self) -> bool:
        return self.row.state in ACTIVE

    @property
    def poll_seconds(self) -> int:
        """Every 2 s while sending or about to; a list of announcements scheduled for next week need not hammer
        the server, so those are looked at every 30 s (their state changes when the time comes)."""
        at = aware(self.row.scheduled_at)
        if self.row.state == State.SCHEDULED.value and at is not None and at - utcnow() > SOON:
            return 30
        return 2

    @property
    def cancellable(self) -> bool:
        return self.row.state in ACTIVE

    @property
    def finished(self) -> int:
        return self.row.sent + self.row.failed + self.row.blocked

    @property
    def state_label(self) -> str:
        return compose.STATE_LABELS.get(self.row.state, self.row.state)


def progress_of(session: Session, row: BroadcastRow, settings: Settings, detail: bool) -> Progress:
    return Progress(row, describe_audience(row.audience, settings), channel_reports(session, row.id) if detail else [],
                    compose.rate(row))


# --------------------------------------------------------------------------- pages

def _choices(session: Session, settings: Settings) -> dict:
    topics = known_topics(session)
    return {"areas": office_areas(settings),
            "topics": [(slug, group_label(slug)) for slug in ordered_groups(topics)]}


def _default_moment(settings: Settings) -> str:
    """8:00 tomorrow in the office's zone, as the chat offers it, in a datetime-local input's format."""
    zone = ZoneInfo(settings.timezone)
    tomorrow = utcnow().astimezone(zone).date() + timedelta(days=1)
    return f"{tomorrow:%Y-%m-%d}T08:00"


def _compose_page(request: Request, session: Session, form: ComposeForm, settings: Settings, error: str | None = None,
                  status_code: int = 200) -> HTMLResponse:
    live = live_preview(session, form, settings)
    now_local = utcnow().astimezone(ZoneInfo(settings.timezone))
    return render(request, "announcements/compose.html", status_code=status_code, form=form, live=live, error=error,
                  min_moment=f"{now_local:%Y-%m-%dT%H:%M}", **_choices(session, settings))


@router.get("/thongbao", response_class=HTMLResponse)
def announcements_list(request: Request, user: Broadcaster) -> HTMLResponse:
    bot = request.app.state.motcua
    with bot.db() as session:
        rows = compose.latest(session, LIST_LIMIT)
        items = [progress_of(session, row, bot.settings, detail=False) for row in rows]
        return render(request, "announcements/list.html", items=items)


@router.get("/thongbao/moi", response_class=HTMLResponse)
def compose_page(request: Request, user: Broadcaster) -> HTMLResponse:
    bot = request.app.state.motcua
    with bot.db() as session:
        return _compose_page(request, session, ComposeForm(thoidiem=_default_moment(bot.settings)), bot.settings)


@router.post("/thongbao/xemtruoc", response_class=HTMLResponse)
async def preview_fragment(request: Request, user: Broadcaster) -> HTMLResponse:
    """htmx: the count, the preview and any problem, for the form as it stands (nothing stored)."""
    bot = request.app.state.motcua
    form = await ComposeForm.read(request)
    with bot.db() as session:
        live = live_preview(session, form, bot.settings)
    return render(request, "announcements/_live.html", live=live, form=form)


@router.post("/thongbao/moi", response_class=HTMLResponse)
async def create_announcement(request: Request, user: Broadcaster):
    bot = request.app.state.motcua
    settings = bot.settings
    form = await ComposeForm.read(request)
    try:
        draft = form.draft(settings)
        with bot.db.begin() as session:
            checked(session, draft, settings)
            row = compose.create(session, draft, settings, user.actor)  # created_by = the staff member's actor
            when = f"lúc {local_time(row.scheduled_at, settings.timezone):%H:%M %d/%m/%Y}" if row.state == State.SCHEDULED.value else "ngay"
            record_action(session, user.actor, "announcement.create",
                          f"thông báo #{row.id}, gửi {when}, đối tượng {row.audience}, {row.recipients or 'chưa chọn'} người nhận")
            broadcast_id = row.id
    except compose.ComposeError as problem:
        with bot.db() as session:
            return _compose_page(request, session, form, settings, error=str(problem), status_code=400)
    return RedirectResponse(f"/thongbao/{broadcast_id}?moi=1", status_code=303)


def _row_or_404(request: Request, session: Session, broadcast_id: int) -> BroadcastRow | HTMLResponse:
    row = session.get(BroadcastRow, broadcast_id)
    if row is None:
        return render(request, "announcements/missing.html", status_code=404, broadcast_id=broadcast_id)
    return row


@router.get("/thongbao/{broadcast_id}", response_class=HTMLResponse)
def announcement_page(request: Request, broadcast_id: int, user: Broadcaster) -> HTMLResponse:
    bot = request.app.state.motcua
    settings = bot.settings
    with bot.db() as session:
        row = _row_or_404(request, session, broadcast_id)
        if isinstance(row, HTMLResponse):
            return row
        progress = progress_of(session, row, settings, detail=True)
        channels = sorted(c.channel for c in progress.channels) or ["telegram"]
        renderings = [rendering(c, row.text, row.link_label, row.link_url, settings) for c in channels]
        return render(request, "announcements/detail.html", p=progress, renderings=renderings,
                      created=request.query_params.get("moi") == "1", cancelled=request.query_params.get("dahuy") == "1")


@router.get("/thongbao/{broadcast_id}/tiendo", response_class=HTMLResponse)
def progress_fragment(request: Request, broadcast_id: int, user: Broadcaster) -> HTMLResponse:
    """htmx, every 2 s while scheduled or sending: state and counters (the fragment stops polling once it ends)."""
    bot = request.app.state.motcua
    detail = request.query_params.get("chitiet") == "1"
    with bot.db() as session:
        row = session.get(BroadcastRow, broadcast_id)
        if row is None:
            return HTMLResponse(f'<p class="tb-error">Không có thông báo số {broadcast_id}.</p>', status_code=404)
        return render(request, "announcements/_progress.html", p=progress_of(session, row, bot.settings, detail), detail=detail)


@router.get("/thongbao/{broadcast_id}/huy", response_class=HTMLResponse)
def cancel_page(request: Request, broadcast_id: int, user: Broadcaster) -> HTMLResponse:
    bot = request.app.state.motcua
    with bot.db() as session:
        row = _row_or_404(request, session, broadcast_id)
        if isinstance(row, HTMLResponse):
            return row
        return render(request, "announcements/cancel.html", p=progress_of(session, row, bot.settings, detail=False), error=None)


@router.post("/thongbao/{broadcast_id}/huy", response_class=HTMLResponse)
def cancel_announcement(request: Request, broadcast_id: int, user: Broadcaster):
    bot = request.app.state.motcua
    with bot.db.begin() as session:
        before = session.get(BroadcastRow, broadcast_id)
        if before is None:
            return render(request, "announcements/missing.html", status_code=404, broadcast_id=broadcast_id)
        was = before.state
        row, message = compose.cancel(session, broadcast_id, user.actor)
        if was in ACTIVE:
            record_action(session, user.actor, "announcement.cancel",
                          f"thông báo #{broadcast_id} ({'chưa gửi' if was == State.SCHEDULED.value else 'đang gửi'}), "
                          f"{row.sent} người đã nhận")
        else:  # already done or cancelled: nothing changed, say why
            return render(request, "announcements/cancel.html", status_code=409,
                          p=progress_of(session, row, bot.settings, detail=False), error=message)
    return RedirectResponse(f"/thongbao/{broadcast_id}?dahuy=1", status_code=303)
