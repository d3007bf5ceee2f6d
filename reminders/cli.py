"""`python bot.py dossiers ...` (staff: import the one-stop export, look dossiers up) and `python bot.py jobs run`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Column, Table

from config import Settings

dossiers_app = typer.Typer(help="Dossiers: import the one-stop software's export, list, show one with its reminders.",
                           no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs, run once (for operators and tests).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def open_db(settings: Settings):
    from knowledge.db import open_database, session_factory

    engine = open_database(settings.database_url)
    return engine, session_factory(engine)


def parse_now(text: str | None, timezone: str) -> datetime:
    """`--now 2026-12-01T08:00` in office time (or with an explicit offset); none: the clock."""
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        err.print(f"[red]--now \"{text}\" không đúng dạng[/red] (vd 2026-12-01T08:00)", highlight=False)
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


@dossiers_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check the file and say what would change")] = False,
    now: Annotated[str | None, typer.Option("--now", help="Act as at this moment (office time), for tests")] = None,
) -> None:
    """Import a status export (.csv/.xlsx) in one transaction: any error writes nothing."""
    from knowledge.spreadsheet import FileProblems
    from reminders.importer import read_dossiers
    from reminders.store import apply_updates

    settings: Settings = ctx.obj
    moment = parse_now(now, settings.timezone)
    try:
        updates = read_dossiers(file, settings.timezone, moment)
    except FileProblems as error:
        err.print(f"[red]Có {len(error.problems)} lỗi, không ghi gì vào cơ sở dữ liệu:[/red]")
        for problem in error.problems:
            err.print(f"  • {problem}", highlight=False)
        raise typer.Exit(1) from None
    engine, db = open_db(settings)
    try:
        with db() as session:
            result = apply_updates(session, updates, f"import:{file.name}", moment)
            if dry_run:
                session.rollback()
            else:
                session.commit()
        verb = "Nếu nhập" if dry_run else "Đã nhập"
        out.print(f"{file.name}: {len(updates)} hồ sơ hợp lệ. {verb}: {result.describe()}.", highlight=False)
    finally:
        engine.dispose()


@dossiers_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only dossiers with this status (as offices write it)")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
) -> None:
    """Dossiers with their status, appointment and number of followers."""
    from sqlalchemy import func, select

    from reminders.decide import show_date
    from reminders.models import DossierRow, FollowRow
    from reminders.statuses import label, parse_status

    settings: Settings = ctx.obj
    wanted = parse_status(status) if status else None
    if status and wanted is None:
        err.print(f"[red]Trạng thái không rõ: {status}[/red]", highlight=False)
        raise typer.Exit(2)
    engine, db = open_db(settings)
    zone = ZoneInfo(settings.timezone)
    try:
        with db() as session:
            followers = func.count(FollowRow.id)
            query = (select(DossierRow, followers).outerjoin(FollowRow, FollowRow.dossier_code == DossierRow.code)
                     .group_by(DossierRow.code).order_by(DossierRow.updated_at.desc()).limit(limit))
            if wanted:
                query = query.where(DossierRow.status == wanted.value)
            rows = session.execute(query).all()
        table = Table(Column("Mã hồ sơ", no_wrap=True), "Thủ tục", "Trạng thái", "Hẹn trả", "Theo dõi", "Lưu ý")
        for dossier, count in rows:
            warning = "⚠ lỗi dữ liệu: không lập được nhắc (dossiers show)" if dossier.scan_problem else ""
            table.add_row(dossier.code, dossier.procedure[:50], label(dossier.status),
                          show_date(dossier.new_due_at or dossier.due_at, zone), str(count), warning)
        out.print(table)
    finally:
        engine.dispose()


@dossiers_app.command("show")
def show(ctx: typer.Context, code: str) -> None:
    """One dossier: its facts, status history and every reminder with its state and reason."""
    from reminders.codes import normalize_code
    from reminders.decide import show_date
    from reminders.statuses import label
    from reminders.store import get_dossier, has_second_factor, history, reminders_of

    settings: Settings = ctx.obj
    canonical = normalize_code(code)
    if canonical is None:
        err.print(f"[red]Mã \"{code}\" không đúng dạng mã hồ sơ.[/red]", highlight=False)
        raise typer.Exit(2)
    engine, db = open_db(settings)
    zone = ZoneInfo(settings.timezone)
    try:
        with db() as session:
            dossier = get_dossier(session, canonical)
            if dossier is None:
                err.print(f"[red]Không có hồ sơ {canonical}.[/red]", highlight=False)
                raise typer.Exit(1)
            out.print(f"{dossier.code} – {dossier.procedure}\nTrạng thái: {label(dossier.status)} từ {show_date(dossier.status_since, zone)}"
                      f"\nTiếp nhận: {show_date(dossier.received_at, zone)}; hẹn trả: {show_date(dossier.due_at, zone)}"
                      + (f"; hẹn mới: {show_date(dossier.new_due_at, zone)}" if dossier.new_due_at else "")
                      + (f"\nGhi chú: {dossier.note}" if dossier.note else "")
                      + (f"\nTrả kết quả: {dossier.delivery}" if dossier.delivery else "")
                      # Whether a citizen can verify, never the digits themselves: staff do not need them here.
                      + "\nXác nhận người nộp: " + ("có 4 số cuối SĐT/CCCD" if has_second_factor(dossier) else
                                                     "chưa có (nguồn dữ liệu không gửi SĐT/CCCD)")
                      + (f"\n⚠ {dossier.scan_problem}" if dossier.scan_problem else ""), highlight=False)
            table = Table("Lịch sử", "Trạng thái", "Ghi nhận", "Nguồn")
            for row in history(session, canonical):
                table.add_row(show_date(row.changed_at, zone), label(row.status), show_date(row.noticed_at, zone), row.source)
            out.print(table)
            reminders = Table("Nhắc", "Loại", "Kênh", "Đến hạn", "Trạng thái", "Gửi lúc", "Lý do")
            for row in reminders_of(session, canonical):
                reminders.add_row(str(row.id), row.kind, row.channel, show_date(row.due_at, zone), row.state,
                                  show_date(row.sent_at, zone) if row.sent_at else "", row.reason or "")
            out.print(reminders)
    finally:
        engine.dispose()


@jobs_app.command("run")
def run(
    ctx: typer.Context,
    now: Annotated[str | None, typer.Option("--now", help="Act as at this moment, office time (e.g. 2026-12-01T08:00)")] = None,
) -> None:
    """Run once whatever is due (plan reminders, send due ones, poll the status URL if set) and exit."""
    from channels.outbound import close_all, senders_from_settings
    from reminders.dispatch import dispatch
    from reminders.scan import scan

    settings: Settings = ctx.obj
    moment = parse_now(now, settings.timezone)
    engine, db = open_db(settings)

    async def once():
        senders = senders_from_settings(settings)
        try:
            if settings.dossier_status_url:
                from reminders.sources import poll_once

                polled = await poll_once(settings, db, now=moment)
                err.print(f"Nguồn trạng thái: {polled}", highlight=False)
            planned = await asyncio.to_thread(scan, db, settings, moment)
            result = await dispatch(db, senders, settings, moment)
            return planned, result
        finally:
            await close_all(senders)

    try:
        planned, result = asyncio.run(once())
    finally:
        engine.dispose()
    err.print(f"Nhắc hồ sơ lúc {moment.astimezone(ZoneInfo(settings.timezone)):%d/%m/%Y %H:%M}: "
              f"{planned.planned} nhắc mới, {planned.cancelled} hủy; {result.describe()}.", highlight=False)
    for code, problem in planned.skipped.items():
        err.print(f"[yellow]⚠ Bỏ qua hồ sơ {code}: dữ liệu lỗi, không lập được nhắc ({problem}). "
                  "Sửa hồ sơ ở nguồn rồi nhập lại.[/yellow]", highlight=False)
