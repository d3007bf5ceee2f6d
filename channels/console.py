"""The console chat: the embedded default when no platform token is configured."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

from handlers.core import Router
from handlers.messages import Incoming, Reply

CHANNEL = "console"
EXIT_WORDS = {"/thoat", "/quit", "/exit", "thoát", "thoat"}


def render(console: Console, reply: Reply) -> None:
    """Print a reply; buttons become numbered choices, as on platforms without buttons."""
    console.print(Panel(reply.text, border_style="cyan", title="motcua", title_align="left"))
    choices = [b for row in reply.buttons for b in row if not b.data.startswith("fb:")]
    if choices and not any(line[:2].strip(". ").isdigit() for line in reply.text.splitlines()[1:2]):
        console.print("[dim]Gợi ý: " + " · ".join(b.label for b in choices) + "[/dim]")


def run_console(router: Router, console: Console | None = None) -> None:
    """Read questions from the terminal until /thoat or end of input."""
    console = console or Console()
    console.print("[bold]Trợ lý thủ tục hành chính[/bold] – gõ câu hỏi, /help để xem lệnh, /thoat để thoát.")
    for reply in router.handle(Incoming(CHANNEL, "local", "local", "/start")):
        render(console, reply)
    while True:
        try:
            text = console.input("[bold green]Bạn:[/bold green] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        if text.strip().lower() in EXIT_WORDS:
            break
        for reply in router.handle(Incoming(CHANNEL, "local", "local", text)):
            render(console, reply)
    console.print("Tạm biệt!")
