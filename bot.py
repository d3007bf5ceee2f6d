"""motcua: answers citizens' questions about administrative procedures.

`python bot.py` opens the console chat when no platform token is configured. This is the command line
only: the bot itself is assembled in app.py.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from app import build_app, setup_logging
from broadcasts.cli import broadcast_app
from config import PROJECT_DIR, Settings, get_settings
from knowledge.cli import kb_app, staff_app
from reminders.cli import dossiers_app, jobs_app

app = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__)
app.add_typer(kb_app, name="kb")
app.add_typer(staff_app, name="staff")
app.add_typer(dossiers_app, name="dossiers")
app.add_typer(jobs_app, name="jobs")
app.add_typer(broadcast_app, name="broadcast")
# Labelled with the starter entries' ids, and the project's own: `eval` and `bench` work on a fresh clone.
DEFAULT_EVAL = PROJECT_DIR / "quality" / "blind_questions.jsonl"


DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (overrides DATABASE_URL)")]


def _settings(ctx: typer.Context, db: str | None = None) -> Settings:
    """The settings, with a command's own --db taking precedence over the global one."""
    settings: Settings = ctx.obj
    return settings.model_copy(update={"database_url": db}) if db else settings


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    db: DbOption = None,
) -> None:
    """Trợ lý thủ tục hành chính. Without a command: the console chat."""
    settings = get_settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    setup_logging(settings)
    ctx.obj = settings
    if ctx.invoked_subcommand is None:
        if settings.has_channel_token:
            run(ctx, None, False, None)
        else:
            chat(ctx, None)


@app.command()
def run(
    ctx: typer.Context,
    channel: Annotated[str | None, typer.Option("--channel", help="telegram, zalo, zalo_oa or several: telegram,zalo_oa (default: those with a token)")] = None,
    webhook: Annotated[bool, typer.Option("--webhook", help="Receive updates on WEBHOOK_URL behind a reverse proxy instead of long polling")] = False,
    db: DbOption = None,
) -> None:
    """Serve the chat channels (Telegram, Zalo, or both in one process)."""
    import asyncio

    from background import background_services
    from channels.runner import CHANNELS, ChannelError, run_channels

    settings = _settings(ctx, db)
    chosen = [c.strip().lower() for c in channel.split(",")] if channel else [
        name for name, token in (("telegram", settings.telegram_bot_token), ("zalo", settings.zalo_bot_token),
                                 ("zalo_oa", settings.zalo_oa_access_token)) if token]
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown or not chosen:
        typer.echo(f"Kênh không hợp lệ: {', '.join(unknown) or '(chưa có)'}; dùng telegram, zalo, zalo_oa (và đặt token tương ứng).", err=True)
        raise typer.Exit(2)
    import operations
    from redaction import redact

    try:
        operations.wait_for_database(settings.database_url, settings.database_wait_seconds)
    except operations.DatabaseUnavailable as error:
        typer.echo(redact(str(error)), err=True)
        raise typer.Exit(1) from None
    # Only the running bot: in one-shot commands each error is wanted, and tests capture logs their own way.
    operations.install_repeated_error_filter(settings.log_repeat_seconds)
    bot = build_app(settings, live=True)
    services = background_services(settings, bot.db)
    if settings.web_in_run:
        from web.server import WebConsoleService

        services.append(WebConsoleService(bot))
    try:
        asyncio.run(run_channels(bot.router, settings, chosen, webhook, services))
    except ChannelError as error:
        typer.echo(redact(str(error)), err=True)
        raise typer.Exit(1) from None
    except Exception as error:  # noqa: BLE001 - a traceback printed as it is would quote URLs holding the token
        logging.getLogger("bot").critical("the bot stopped", exc_info=error)
        typer.echo(redact(f"Bot dừng do lỗi: {type(error).__name__}: {error}"), err=True)
        raise typer.Exit(1) from None
    finally:
        bot.close()


@app.command()
def web(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default WEB_LISTEN, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default WEB_PORT, 8080)")] = None,
    db: DbOption = None,
) -> None:
    """Serve the office's web console (sign in with /dangnhap in chat)."""
    from web.server import serve

    settings = _settings(ctx, db)
    bot = build_app(settings, live=True)
    host = host or settings.web_listen
    port = port if port is not None else settings.web_port
    typer.echo(f"Bảng điều khiển: {settings.web_public_url or f'http://{host}:{port}'} (Ctrl+C để dừng)")
    try:
        serve(bot, host, port)
    finally:
        bot.close()


@app.command()
def chat(ctx: typer.Context, db: DbOption = None) -> None:
    """Interactive console chat on the configured knowledge base."""
    from channels.console import run_console

    bot = build_app(_settings(ctx, db), live=True)
    try:
        run_console(bot.router)
    finally:
        bot.close()


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(help="Câu hỏi")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Read JSON lines {chat, q} from stdin, write answers as JSON lines")] = False,
    db: DbOption = None,
) -> None:
    """Answer one question, or a stream of JSON lines (the contract of ../shared/eval/README.md)."""
    from handlers.state import ChatMemory
    from quality.contract import answer_lines, answer_one

    if not jsonl and question is None:
        typer.echo("Give a question, or --jsonl to read JSON lines from standard input.", err=True)
        raise typer.Exit(2)
    # Each run starts fresh: its conversations never read or leave memory of the stored chats; and its questions are
    # not citizens' (an evaluation, a developer trying one): kept out of the office's figures and teaching queue.
    bot = build_app(_settings(ctx, db).model_copy(update={"record_questions": False}), memory=ChatMemory())
    try:
        if jsonl:
            for line in answer_lines(bot.router, sys.stdin):
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            return
        typer.echo(json.dumps(answer_one(bot.router, "cli", question), ensure_ascii=False))
    finally:
        bot.close()


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Labelled questions (JSON lines)")] = DEFAULT_EVAL,
    show_errors: Annotated[bool, typer.Option("--errors", help="List the questions answered wrongly")] = False,
    db: DbOption = None,
) -> None:
    """Scored figures on a labelled question set (default: quality/blind_questions.jsonl)."""
    from quality.evaluate import LabelledFileError, labelled_items, print_report, run_eval

    if not file.exists():
        typer.echo(f"File not found: {file}", err=True)
        raise typer.Exit(2)
    try:
        labelled_items(file)  # a bad line is reported at once, before the bot is built and half the file asked
    except LabelledFileError as error:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(2) from None
    from handlers.state import ChatMemory

    # Each run starts fresh (its own memory of its conversations), so figures never depend on an earlier run.
    bot = build_app(_settings(ctx, db).model_copy(update={"record_questions": False}), memory=ChatMemory())
    try:
        report = run_eval(bot.router, file)
    finally:
        bot.close()
    print_report(report, show_errors=show_errors)


@app.command()
def bench(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Questions to time (JSON lines with q)")] = DEFAULT_EVAL,
    repeat: Annotated[int, typer.Option(help="Timed passes over the questions", min=1)] = 5,
    scale: Annotated[bool, typer.Option("--scale", help="Also measure 53, ~2,700 and 10,000 entries (starter + national catalogue + synthetic)")] = False,
    db: DbOption = None,
) -> None:
    """Time per question (median, p95, p99), questions/s, index build time, peak memory, ratio to the tokenizer."""
    from quality.benchmark import print_bench, run_bench

    if not file.exists():
        typer.echo(f"File not found: {file}", err=True)
        raise typer.Exit(2)
    settings = _settings(ctx, db)
    print_bench(run_bench(settings, file, repeat))
    if scale:
        from quality.benchmark import print_scale, run_scale

        print_scale(run_scale(file, settings.national_catalogue))


@app.command()
def link(ctx: typer.Context, entry_id: str) -> None:
    """Print the Telegram deep link that opens one entry (set TELEGRAM_BOT_USERNAME)."""
    from channels.links import LinkError, deep_link

    settings = _settings(ctx)
    try:
        _known_entries(settings, [entry_id])
        typer.echo(deep_link(settings.telegram_bot_username or "", entry_id))
    except LinkError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None


@app.command()
def qr(
    ctx: typer.Context,
    entry_ids: Annotated[list[str], typer.Argument(help="Entry ids")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files and the A4 PDF sheet")] = Path("qr"),
) -> None:
    """A PNG QR code per entry (Telegram) and a printable A4 PDF sheet of them, with each procedure's name;
    where a Zalo OA is configured, its own QR code first (the OA has no link to one entry)."""
    from channels.links import LinkError, a4_sheet, deep_link, qr_png
    from channels.zalo_oa import oa_link

    settings = _settings(ctx)
    try:
        entries = _known_entries(settings, entry_ids)
        out.mkdir(parents=True, exist_ok=True)
        items = []
        oa = oa_link(settings)
        if oa:
            items.append((oa.removeprefix("https://"), f"Hỏi {settings.office_name} trên Zalo", qr_png(oa, out / "zalo-oa.png")))
        if settings.telegram_bot_username or not oa:
            for entry in entries:
                png = qr_png(deep_link(settings.telegram_bot_username or "", entry.id), out / f"{entry.id}.png")
                items.append((f"mã {entry.id}", entry.short_name or entry.name, png))
        sheet = a4_sheet(items, out / "ma-qr-thu-tuc.pdf", settings.office_name)
    except LinkError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(items)} mã QR trong {out}/, bản in A4: {sheet}")


def _known_entries(settings: Settings, entry_ids: list[str]):
    from channels.links import LinkError
    from knowledge.catalog import Catalog
    from knowledge.loader import open_knowledge_base

    catalog = Catalog.load(open_knowledge_base(settings.database_url), settings.office_level)
    missing = [i for i in entry_ids if i not in catalog.entries]
    if missing:
        raise LinkError(f"Không có mục: {', '.join(missing)}")
    return [catalog.entries[i] for i in entry_ids]


if __name__ == "__main__":
    app()
