"""`python bot.py kb ...` and `python bot.py staff ...`: the knowledge base and staff, from the terminal."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config import Settings
from knowledge.models import local_time

kb_app = typer.Typer(help="Knowledge base: export, validate, import, audit, history, revert, unanswered questions.",
                     no_args_is_help=True)
staff_app = typer.Typer(help="Staff members and their roles.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

NATIONAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz")
SHOWN_CLEANING = 20  # entries listed by name in `kb validate`; the rest are counted


def _engine(ctx: typer.Context):
    from knowledge.loader import open_knowledge_base

    settings: Settings = ctx.obj
    return open_knowledge_base(settings.database_url)


def cli_actor() -> str:
    """Who made a change from the terminal, as revisions and reports name them."""
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:  # no user name in some containers
        return "cli"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False, disable=not err.is_terminal and not sys.stderr.isatty())


def is_national(path: Path) -> bool:
    return path.name.lower().endswith(NATIONAL_SUFFIXES)


def read_any(path: Path):
    """Entries from a staff file or the national catalogue, with the origin to store them under.

    Raises FileProblems / CatalogueError with the place of every problem.
    """
    if is_national(path):
        from knowledge.dvcqg import load_catalogue

        with _progress() as progress:
            task = progress.add_task(f"Đọc {path.name}", total=None)
            entries = load_catalogue(path)
            progress.update(task, total=len(entries), completed=len(entries))
        return entries, "dvcqg"
    from knowledge.spreadsheet import read_entries

    return read_entries(path), "staff"


def _fail(error: Exception) -> None:
    problems = getattr(error, "problems", None)
    if problems:
        err.print(f"[red]Có {len(problems)} lỗi, không ghi gì vào cơ sở dữ liệu:[/red]")
        for problem in problems:
            err.print(f"  • {problem}", highlight=False)
    else:
        err.print(f"[red]Lỗi:[/red] {error}", highlight=False)
    raise typer.Exit(1)


@kb_app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", "-f", help="yaml, csv or xlsx")] = "xlsx",
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: stdout for yaml/csv)")] = None,
) -> None:
    """Every entry with every fact, in a form staff can edit in Excel/LibreOffice."""
    from knowledge.db import session_factory
    from knowledge.repository import load_entries
    from knowledge.spreadsheet import export_csv, export_xlsx, export_yaml

    fmt = fmt.lower()
    if fmt not in ("yaml", "csv", "xlsx"):
        err.print(f"[red]Định dạng không hỗ trợ: {fmt}[/red] (yaml, csv, xlsx)")
        raise typer.Exit(2)
    with session_factory(_engine(ctx))() as session:
        entries = load_entries(session)
    if fmt == "xlsx":
        target = out_file or Path("motcua-kb.xlsx")
        with _progress() as progress:
            task = progress.add_task("Xuất Excel", total=len(entries))
            export_xlsx(entries, target, progress=lambda n: progress.update(task, completed=n))
        err.print(f"Đã xuất {len(entries)} mục vào {target}")
        return
    text = export_yaml(entries) if fmt == "yaml" else export_csv(entries)
    if out_file is None:
        sys.stdout.write(text)
    else:
        out_file.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        err.print(f"Đã xuất {len(entries)} mục vào {out_file}")


@kb_app.command("validate")
def validate(ctx: typer.Context, file: Path) -> None:
    """Check a file (YAML/CSV/XLSX or national .jsonl[.gz]) and say what importing it would change."""
    from knowledge.db import session_factory
    from knowledge.dvcqg import CatalogueError
    from knowledge.editing import current_version, plan
    from knowledge.spreadsheet import FileProblems

    try:
        entries, origin = read_any(file)
    except (FileProblems, CatalogueError) as error:
        _fail(error)
    with session_factory(_engine(ctx))() as session:
        version = current_version(session)
        summary = plan(session, entries, keep_curated=origin == "dvcqg")
    out.print(f"{file.name}: {len(entries)} mục hợp lệ. Nếu nhập: {summary.describe()}", highlight=False)
    out.print(f"Kiểm tra trên phiên bản {version} của cơ sở kiến thức. Để chỉ nhập khi chưa ai sửa gì thêm: "
              f"kb import {file.name} --if-version {version}", highlight=False)
    if origin == "dvcqg":
        _print_cleaning(entries, skipped=set(summary.skipped))
    else:
        _print_findings_brief(entries)


def _print_cleaning(entries, skipped: frozenset[str] | set[str] = frozenset(), details: bool = True) -> None:
    """What cleaning did to the national records (knowledge.dvcqg.Cleaning): totals by kind, then the
    entries a person should look at (their answers carry a caveat, or a fee has no figure)."""
    from knowledge.dvcqg import CLEANING_FLAGS, CLEANING_LABELS

    cleaning = {i: log for i, log in getattr(entries, "cleaning", {}).items() if i not in skipped}
    cleaned = [i for i, log in cleaning.items() if log.cleaned]
    flagged = [i for i, log in cleaning.items() if log.flagged]
    out.print(f"Làm sạch khi nhập: {len(cleaned)} mục đã được sửa chữ, {len(flagged)} mục cần cán bộ xem lại "
              "(câu trả lời của chúng kèm lưu ý).", highlight=False)
    if not details:
        return
    for kind, label in CLEANING_LABELS.items():
        counts = [log.counts[kind] for log in cleaning.values() if kind in log.counts]
        if counts:
            mark = "⚑" if kind in CLEANING_FLAGS else "•"
            out.print(f"  {mark} {label}: {sum(counts)} lần, ở {len(counts)} mục", highlight=False)
    for entry_id in flagged[:SHOWN_CLEANING]:
        out.print(f"  ⚑ {entry_id}: {cleaning[entry_id].describe()}", highlight=False, markup=False)
    if len(flagged) > SHOWN_CLEANING:
        out.print(f"  … và {len(flagged) - SHOWN_CLEANING} mục khác: sau khi nhập, xem đủ bằng `kb audit --review`.",
                  highlight=False)


def _print_findings_brief(entries) -> None:
    """The audit of a staff file's entries, as warnings: nothing stops the import."""
    from knowledge.audit import KINDS, audit

    report = audit(entries)
    if report.clean:
        return
    out.print(f"Lưu ý nội dung ({len(report.findings)} điểm, không chặn việc nhập):", highlight=False)
    for finding in report.findings[:SHOWN_CLEANING]:
        out.print(f"  ⚠ {KINDS[finding.kind]}: {finding}", highlight=False, markup=False)


@kb_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would change")] = False,
    overwrite_curated: Annotated[bool, typer.Option("--overwrite-curated", help="Let national records replace entries staff or the starter data wrote")] = False,
    if_version: Annotated[int | None, typer.Option("--if-version", help="Refuse if the knowledge base changed after this version (shown by kb validate)")] = None,
) -> None:
    """Import a staff file or the national catalogue in one transaction: any error writes nothing.

    Imports run one at a time (a second waits for the first, then sees what it wrote)."""
    from knowledge.db import session_factory
    from knowledge.dvcqg import CatalogueError
    from knowledge.editing import EditError, apply, plan
    from knowledge.spreadsheet import FileProblems

    try:
        entries, origin = read_any(file)
    except (FileProblems, CatalogueError) as error:
        _fail(error)
    keep_curated = origin == "dvcqg" and not overwrite_curated
    engine = _engine(ctx)
    if dry_run:
        with session_factory(engine)() as session:
            out.print(plan(session, entries, keep_curated).describe(), highlight=False)
        return
    with _progress() as progress:
        task = progress.add_task(f"Nhập {file.name}", total=None)
        try:
            with session_factory(engine).begin() as session:
                summary = apply(session, entries, cli_actor(), f"file:{file.name}", origin=origin, keep_curated=keep_curated,
                                expected_version=if_version)
        except EditError as error:
            progress.stop()
            _fail(error)
        progress.update(task, total=len(entries), completed=len(entries))
    out.print(f"Đã nhập {file.name}: {summary.describe()}", highlight=False)
    if origin == "dvcqg":
        _print_cleaning(entries, skipped=set(summary.skipped), details=False)


@kb_app.command("audit")
def audit_command(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="A file to check before importing it (default: the database)")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Findings shown per kind")] = 10,
    review: Annotated[bool, typer.Option("--review", help="List the imported entries staff should look at")] = False,
) -> None:
    """Check what every entry's answers say: outdated structure (cấp huyện, thị trấn, Sổ hộ khẩu) without the
    current rule or a caveat, repeated sentences, fees without an amount, conditional documents listed as
    required, figures without a source. Exits with 1 when anything is found (for CI)."""
    from knowledge.audit import KINDS, OUTDATED_TERMS, audit, needs_review

    entries, sources, imported = _audit_input(ctx, file)
    if review:
        _print_review(entries, needs_review)
        return
    report = audit(entries, sources, imported)
    where = file.name if file else "cơ sở kiến thức"
    out.print(f"Kiểm tra {report.entries} mục của {where}: {len(report.findings)} điểm cần sửa.", highlight=False)
    table = Table()
    for column in ("loại", "nghĩa là", "số điểm", "số mục"):
        table.add_column(column)
    counts = report.counts()
    for kind, meaning in KINDS.items():
        table.add_row(kind, meaning, str(counts[kind]), str(report.entries_with(kind)))
        if kind == "outdated":
            for term in OUTDATED_TERMS:
                table.add_row("", f"  trong đó \"{term}\"", str(counts[f"outdated:{term}"]), "")
    out.print(table)
    for kind, found in report.by_kind().items():
        for finding in found[:limit]:
            out.print(f"  ⚠ {kind} {finding}", highlight=False, markup=False)
        if len(found) > limit:
            out.print(f"  … và {len(found) - limit} điểm {kind} khác (--limit để xem thêm)", highlight=False)
    if not report.clean:
        raise typer.Exit(1)


def _audit_input(ctx: typer.Context, file: Path | None):
    """(entries, national records' own text by id, ids of entries imported from the national catalogue)."""
    if file is None:
        from sqlalchemy import select

        from knowledge.db import session_factory
        from knowledge.models import EntryRow
        from knowledge.repository import load_entries

        with session_factory(_engine(ctx))() as session:
            entries = load_entries(session)
            imported = {i for i, source in session.execute(select(EntryRow.id, EntryRow.source)) if source == "dvcqg"}
        return entries, {}, imported
    from knowledge.dvcqg import CatalogueError, record_texts
    from knowledge.spreadsheet import FileProblems

    try:
        entries, origin = read_any(file)
        sources = record_texts(file) if origin == "dvcqg" else {}
    except (FileProblems, CatalogueError) as error:
        _fail(error)
    return entries, sources, set(sources)


def _print_review(entries, needs_review) -> None:
    """Imported entries whose answers carry a caveat or lack a fee's amount: for staff to check and edit."""
    rows = [(entry.id, reasons) for entry in entries if (reasons := needs_review(entry))]
    out.print(f"{len(rows)} mục nhập từ CSDL quốc gia cần cán bộ xem lại (sửa trong tệp Excel rồi nhập lại; "
              "mục cán bộ đã sửa không bị lần nhập sau ghi đè).", highlight=False)
    for entry_id, reasons in rows:
        out.print(f"  ⚑ {entry_id}: {'; '.join(reasons)}", highlight=False, markup=False)


@kb_app.command("history")
def history(ctx: typer.Context, entry_id: str) -> None:
    """Every change to one entry: who, when, from where, what changed."""
    from knowledge.db import session_factory
    from knowledge.editing import history as entry_history

    with session_factory(_engine(ctx))() as session:
        revisions = entry_history(session, entry_id)
    if not revisions:
        out.print(f"Chưa có thay đổi nào ghi nhận cho {entry_id}.")
        return
    table = Table(title=f"Lịch sử {entry_id}")
    for column in ("#", "lúc", "ai", "từ đâu", "thao tác", "trường đã đổi", "hoàn tác bởi"):
        table.add_column(column)
    for r in revisions:
        fields = [k for k in (r.after or r.before or {}) if (r.before or {}).get(k) != (r.after or {}).get(k)]
        table.add_row(str(r.id), f"{local_time(r.created_at, ctx.obj.timezone):%d/%m/%Y %H:%M}", r.actor, r.source, r.action,
                      ", ".join(fields)[:60], str(r.reverted_by or ""))
    out.print(table)


@kb_app.command("revert")
def revert(
    ctx: typer.Context,
    revision: int,
    force: Annotated[bool, typer.Option("--force", help="Revert even if the entry changed since")] = False,
) -> None:
    """Undo one change (a revision number from `kb history`)."""
    from knowledge.db import session_factory
    from knowledge.editing import EditError
    from knowledge.editing import revert as revert_revision

    try:
        with session_factory(_engine(ctx)).begin() as session:
            undo = revert_revision(session, revision, cli_actor(), "cli", force=force)
            entry_id, undo_id = undo.entry_id, undo.id
    except EditError as error:
        _fail(error)
    out.print(f"Đã hoàn tác thay đổi #{revision} của {entry_id} (ghi nhận là thay đổi #{undo_id}).")


@kb_app.command("unanswered")
def unanswered(ctx: typer.Context, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """The questions the bot could not answer well, most frequent first."""
    from knowledge.db import session_factory
    from knowledge.unanswered import most_frequent

    with session_factory(_engine(ctx))() as session:
        rows = most_frequent(session, limit)
    if not rows:
        out.print("Chưa có câu hỏi nào chưa trả lời được.")
        return
    table = Table(title="Câu hỏi chưa trả lời được")
    for column in ("#", "số lần", "lý do", "câu hỏi", "đoán gần nhất"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row.id), str(row.count), row.reason, row.text[:80], row.best_guess or "")
    out.print(table)


@staff_app.command("add")
def staff_add(ctx: typer.Context, member: str, role: Annotated[str, typer.Option("--role")] = "editor") -> None:
    """Register <platform>:<user id> with a role (admin, editor, broadcaster)."""
    from knowledge import staff
    from knowledge.db import session_factory

    try:
        platform, user_id = staff.parse_member(member)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if role not in {r.value for r in staff.Role}:
        err.print(f"[red]Vai trò không hợp lệ: {role} (admin, editor, broadcaster)[/red]")
        raise typer.Exit(2)
    chosen = staff.Role(role)
    with session_factory(_engine(ctx)).begin() as session:
        staff.add(session, platform, user_id, chosen)
    out.print(f"Đã đăng ký {platform}:{user_id} với vai trò {chosen.value}.")


@staff_app.command("list")
def staff_list(ctx: typer.Context) -> None:
    """Everyone registered, with their role."""
    from knowledge import staff
    from knowledge.db import session_factory

    with session_factory(_engine(ctx))() as session:
        rows = staff.list_staff(session)
    if not rows:
        out.print("Chưa có cán bộ nào được đăng ký.")
        return
    table = Table()
    for column in ("nền tảng:mã", "vai trò", "từ"):
        table.add_column(column)
    for row in rows:
        table.add_row(f"{row.platform}:{row.user_id}", row.role, f"{local_time(row.added_at, ctx.obj.timezone):%d/%m/%Y}")
    out.print(table)


@staff_app.command("remove")
def staff_remove(ctx: typer.Context, member: str) -> None:
    """Remove <platform>:<user id> from the staff."""
    from knowledge import staff
    from knowledge.db import session_factory

    try:
        platform, user_id = staff.parse_member(member)
    except ValueError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    with session_factory(_engine(ctx)).begin() as session:
        removed = staff.remove(session, platform, user_id)
    if not removed:
        err.print(f"{platform}:{user_id} không có trong danh sách cán bộ.")
        raise typer.Exit(1)
    out.print(f"Đã xóa {platform}:{user_id} khỏi danh sách cán bộ.")
