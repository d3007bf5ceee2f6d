"""`python bot.py broadcast ...`: announcements from the terminal."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config import Settings
from knowledge.cli import cli_actor
from knowledge.models import local_time

broadcast_app = typer.Typer(help="Announcements to subscribers: send, list, status, cancel, run.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _db(ctx: typer.Context):
    from knowledge.db import open_database, session_factory

    settings: Settings = ctx.obj
    return session_factory(open_database(settings.database_url))


@broadcast_app.command("send")
def send(
    ctx: typer.Context,
    text: Annotated[str, typer.Option("--text", help="Nội dung thông báo")],
    audience: Annotated[str, typer.Option("--audience", help="all, area:<xã/phường>[,...] hoặc topic:<chủ đề>[,...]")] = "all",
    at: Annotated[str | None, typer.Option("--at", help="Giờ gửi (giờ văn phòng): 08:00, 27/11 08:00, 2026-11-27T08:00")] = None,
    link_label: Annotated[str | None, typer.Option("--link-label", help="Nhãn nút liên kết")] = None,
    link_url: Annotated[str | None, typer.Option("--link-url", help="Địa chỉ của nút liên kết (https://...)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Gửi không hỏi lại")] = False,
) -> None:
    """Create an announcement: checked, previewed with its number of recipients, then confirmed."""
    from broadcasts.compose import ComposeError, Draft, check, create, parse_time

    settings: Settings = ctx.obj
    db = _db(ctx)
    try:
        when = parse_time(at, settings) if at else None
        draft = Draft(text=text, audience=audience, at=when, link_label=link_label, link_url=link_url)
        with db() as session:
            preview = check(session, draft, settings)
    except ComposeError as error:
        err.print(f"[red]Không tạo được thông báo:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    channels = ", ".join(f"{name} {n}" for name, n in sorted(preview.by_channel.items()))
    moment = f"lúc {local_time(preview.at, settings.timezone):%H:%M %d/%m/%Y}" if preview.at else "ngay"
    out.print(f"Gửi {moment} tới {preview.count} người ({preview.description}; {channels}):", highlight=False)
    out.print(text.strip() + (f"\n[{link_label}]({link_url})" if link_url else ""), highlight=False, markup=False)
    if not yes and not typer.confirm("Gửi thông báo này?", default=False):
        err.print("Đã hủy, chưa gửi gì.")
        raise typer.Exit(1)
    try:
        with db.begin() as session:
            row = create(session, draft, settings, cli_actor())
            broadcast_id, state, recipients = row.id, row.state, row.recipients
    except ComposeError as error:
        err.print(f"[red]Không tạo được thông báo:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    if state == "scheduled":
        out.print(f"Đã lên lịch thông báo #{broadcast_id}. Bot đang chạy sẽ gửi đúng giờ "
                  f"(hoặc chạy `python bot.py broadcast run` sau giờ đó).", highlight=False)
    else:
        out.print(f"Đã tạo thông báo #{broadcast_id} cho {recipients} người. Bot đang chạy sẽ gửi ngay; "
                  f"không chạy bot thì gửi bằng `python bot.py broadcast run`.", highlight=False)


@broadcast_app.command("list")
def list_(ctx: typer.Context, limit: Annotated[int, typer.Option(help="Bao nhiêu thông báo gần nhất")] = 20) -> None:
    """The latest announcements with their state and counts."""
    from broadcasts.compose import STATE_LABELS, latest

    settings: Settings = ctx.obj
    with _db(ctx)() as session:
        rows = latest(session, limit)
    if not rows:
        out.print("Chưa có thông báo nào.")
        return
    table = Table(title="Thông báo")
    for column in ("#", "trạng thái", "hẹn gửi", "đối tượng", "người nhận", "đã gửi", "chặn", "lỗi", "nội dung"):
        table.add_column(column)
    for r in rows:
        when = f"{local_time(r.scheduled_at, settings.timezone):%H:%M %d/%m}" if r.scheduled_at else "—"
        table.add_row(str(r.id), STATE_LABELS.get(r.state, r.state), when, r.audience, str(r.recipients), str(r.sent),
                      str(r.blocked), str(r.failed), r.text[:40])
    out.print(table)


@broadcast_app.command("status")
def status(ctx: typer.Context, broadcast_id: int) -> None:
    """One announcement: recipients, sent, blocked, failed, started, finished, messages per second."""
    from broadcasts.compose import report_lines
    from broadcasts.models import BroadcastRow

    settings: Settings = ctx.obj
    with _db(ctx)() as session:
        row = session.get(BroadcastRow, broadcast_id)
        if row is None:
            err.print(f"Không có thông báo số {broadcast_id}.")
            raise typer.Exit(1)
        out.print("\n".join(report_lines(session, row, settings)), highlight=False)


@broadcast_app.command("cancel")
def cancel(ctx: typer.Context, broadcast_id: int) -> None:
    """Cancel a scheduled announcement, or stop one being sent."""
    from broadcasts.compose import cancel as cancel_broadcast

    with _db(ctx).begin() as session:
        row, message = cancel_broadcast(session, broadcast_id, cli_actor())
    (out if row is not None and row.cancelled_by == cli_actor() else err).print(message, highlight=False)
    if row is None:
        raise typer.Exit(1)


@broadcast_app.command("run")
def run(ctx: typer.Context) -> None:
    """Deliver every announcement that is due, until done, then exit."""
    from broadcasts.dispatcher import Dispatcher
    from channels.outbound import close_all, senders_from_settings

    settings: Settings = ctx.obj
    db = _db(ctx)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                        TimeElapsedColumn(), console=err, disable=not sys.stderr.isatty())
    tasks: dict[int, int] = {}

    def show(report) -> None:
        if report.broadcast_id not in tasks:
            tasks[report.broadcast_id] = progress.add_task(f"Thông báo #{report.broadcast_id}", total=report.recipients or None, rate="")
        finished = report.sent + report.blocked + report.failed
        progress.update(tasks[report.broadcast_id], completed=finished, total=report.recipients or None,
                        rate=f"{report.rate:.1f} tin/s" if report.rate else "")

    async def deliver():
        senders = senders_from_settings(settings)
        try:
            return await Dispatcher(db, senders, settings).run_pending(progress=show)
        finally:
            await close_all(senders)

    with progress:
        reports = asyncio.run(deliver())
    if not reports:
        out.print("Không có thông báo nào cần gửi.")
    words = {"done": "đã gửi xong", "cancelled": "đã bị hủy", "busy": "đang do tiến trình khác gửi",
             "waiting": "còn tin cho kênh chưa cấu hình token", "gone": "không còn cần gửi", "scheduled": "chưa đến giờ"}
    for r in reports:
        out.print(f"Thông báo #{r.broadcast_id}: {words.get(r.state, r.state)}; người nhận {r.recipients}, đã gửi {r.sent}, "
                  f"chặn bot {r.blocked}, lỗi {r.failed}" + (f"; {r.rate:.1f} tin/giây" if r.sent_now else ""), highlight=False)
