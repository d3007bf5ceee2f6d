"""One composition root (app.py) for the CLI, the worker processes and later the web console: no import
circle through the CLI, and no channel state in the conversation core (buttonless-ness travels on each
message, the worker processes are held by the runner)."""

from __future__ import annotations

import subprocess
import sys

from conftest import PROJECT_DIR, make_settings

from app import build_app
from channels.base import respond, without_buttons
from handlers.messages import Incoming
from handlers.state import ChatMemory


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], check=False, cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=300)


def test_a_worker_process_assembles_the_bot_without_the_cli(tmp_path):
    """channels.workers imported bot.build_router: the CLI (typer and every command) in each worker, and a circle."""
    done = _run("import sys\n"
                "from channels import workers\n"
                "from config import Settings\n"
                f"workers._start_worker(Settings(_env_file=None, database_url='sqlite:///{tmp_path / 'w.db'}'))\n"
                "assert workers._ready()\n"
                "assert 'bot' not in sys.modules and 'typer' not in sys.modules, [m for m in ('bot', 'typer') if m in sys.modules]\n")
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_app_is_assembled_from_settings_and_closed(tmp_path):
    app = build_app(make_settings(f"sqlite:///{tmp_path / 'app.db'}"), live=True)
    try:
        assert app.router.context.db is app.db and app.router.context.source is app.source
        assert app.router.context.memory.durable, "a bot with a database keeps its chats' memory there"
        assert app.source.current.entries, "the starter entries are loaded on first start"
    finally:
        app.close()
    assert app.source._stop.is_set(), "the knowledge base is no longer followed"
    fresh = build_app(make_settings(f"sqlite:///{tmp_path / 'app.db'}"), memory=ChatMemory())
    try:
        assert not fresh.router.context.memory.durable
    finally:
        fresh.close()


def test_the_core_holds_no_channel_state(router):
    assert not hasattr(router, "workers") and not hasattr(router, "buttonless_channels")


async def test_one_core_serves_a_platform_with_buttons_and_one_without_side_by_side(router):
    zalo = without_buttons(router)
    assert zalo.context is router.context, "a channel's health check still reaches the database through it"
    [answer_z] = await respond(zalo, Incoming("zalo", "z9", "z9", "làm thẻ căn cước lần đầu mất bao nhiêu tiền"))
    [answer_t] = await respond(router, Incoming("telegram", "t9", "t9", "làm thẻ căn cước lần đầu mất bao nhiêu tiền"))
    assert answer_z.buttons and answer_t.buttons and answer_z.entry_id == answer_t.entry_id
    [picked] = await respond(zalo, Incoming("zalo", "z9", "z9", "1"))
    assert picked.entry_id == answer_z.entry_id and picked.aspects != answer_z.aspects, "on Zalo '1' presses the first button"
    [typed] = await respond(router, Incoming("telegram", "t9", "t9", "1"))
    assert typed.aspects != picked.aspects or typed.entry_id != picked.entry_id, "on Telegram '1' is not a button press"
