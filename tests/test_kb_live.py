"""Live reload (issue 3): a running bot answers from the changed knowledge base soon after an import,
a revert or an alias, made by another process sharing the database (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set), and a failed import leaves it as it was. The tests wait for the change to be
seen (a few tenths of a second: the bot checks every 0.2 s here); how fast is a benchmark's business,
not a unit test's on a loaded machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from conftest import Chat, make_settings
from test_kb_cli import run_bot
from test_kb_files import (  # noqa: F401 - fixtures
    FEE_ENTRY,
    FEE_QUESTION,
    edit_csv_fee,
    export,
    flat,
    history_rows,
    kb,
    kb_url,
    money,
    read_csv,
    starter_db,
    write_csv,
)
from test_kb_staff_chat import HAWKER_ENTRY, OUT_OF_SCOPE

from handlers import build_router
from handlers.core import Router
from handlers.messages import Incoming
from knowledge import editing, staff
from knowledge.catalog import LiveCatalog
from knowledge.db import session_factory
from knowledge.loader import open_knowledge_base

CHECK_EVERY = 0.2
PATIENCE = 60.0  # how long to wait for a change to be seen before calling it never seen


@contextmanager
def running_bot(url: str) -> Iterator[tuple[LiveCatalog, Router]]:
    """A bot process's knowledge base: its own engine, a live catalogue checking every 0.2 s."""
    engine = open_knowledge_base(url)
    live = LiveCatalog(engine, check_every=CHECK_EVERY).start()
    try:
        yield live, build_router(live, make_settings(), session_factory(engine))
    finally:
        live.stop()
        if live._thread is not None:
            live._thread.join(timeout=5)
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = PATIENCE) -> None:
    """Return once `condition` holds (polled every 50 ms); fail if it still does not after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not seen after {timeout:g} s"
        time.sleep(0.05)


def fee(live: LiveCatalog) -> int | None:
    return live.current.entries[FEE_ENTRY].fees[0].amount_vnd


def test_a_running_bot_sees_an_import_and_a_revert_by_another_process(kb_url, tmp_path):
    path = export(kb_url, tmp_path, "csv")
    old, new = edit_csv_fee(path)
    with running_bot(kb_url) as (live, router):
        chat = Chat(router)
        assert f"{money(old)} đồng" in chat.ask(FEE_QUESTION).text

        done = run_bot("--db", kb_url, "kb", "import", path)
        assert done.returncode == 0, done.stderr[-2000:]
        wait_for(lambda: fee(live) == new)
        answer = chat.ask(FEE_QUESTION)
        assert answer.entry_id == FEE_ENTRY and f"{money(new)} đồng" in answer.text

        (change_id, *_), = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
        assert kb(kb_url, "kb", "revert", change_id).exit_code == 0  # its own engine: another connection
        wait_for(lambda: fee(live) == old)
        assert f"{money(old)} đồng" in chat.ask(FEE_QUESTION).text

        serving, version = live.current, live.version
        rows = read_csv(path)
        rows[3]["id"] = ""
        bad = kb(kb_url, "kb", "import", write_csv(tmp_path / "hong.csv", rows))
        assert bad.exit_code == 1 and "hong.csv, hàng 5, cột id" in flat(bad.output)
        assert live.refresh() is False, "nothing to reload: the failed import bumped no version"
        assert live.current is serving and live.version == version, "a failed import leaves the running bot as it was"
        assert f"{money(old)} đồng" in chat.ask(FEE_QUESTION).text


def test_an_alias_attached_in_one_bot_is_answered_by_another(kb_url):
    engine = open_knowledge_base(kb_url)
    with session_factory(engine).begin() as session:
        staff.add(session, "telegram", "42", staff.Role.EDITOR)
    engine.dispose()
    with running_bot(kb_url) as (live_a, bot_a), running_bot(kb_url) as (live_b, bot_b):
        def send(bot: Router, user: str, text: str):
            (reply,) = bot.handle(Incoming("telegram", f"chat-{user}", user, text))
            return reply

        assert send(bot_b, "7", OUT_OF_SCOPE[1]).entry_id is None
        listing = send(bot_a, "42", "/chuatraloi").text
        question_id = listing.split("#", 1)[1].split(" ", 1)[0]
        assert send(bot_a, "42", f"/gan {question_id} {HAWKER_ENTRY}").text.startswith("Đã gắn")

        for live in (live_b, live_a):
            wait_for(lambda: OUT_OF_SCOPE[1] in live.current.entries[HAWKER_ENTRY].aliases)
        assert send(bot_b, "8", OUT_OF_SCOPE[1]).entry_id == HAWKER_ENTRY
        assert send(bot_a, "9", OUT_OF_SCOPE[0]).entry_id == HAWKER_ENTRY


def test_two_changes_at_once_are_both_seen(kb_url, monkeypatch):
    """Two staff changes at the same time (e.g. /gan in two bot processes): the second waits for the
    first's lock, so revisions are numbered in the order they are committed and a bot that reloaded
    after the first still sees the second (a revision numbered before the first but committed after it
    would have been skipped)."""
    engine = open_knowledge_base(kb_url)
    db = session_factory(engine)
    live = LiveCatalog(engine)
    waiting, b_ready, go_b = threading.Event(), threading.Event(), threading.Event()
    errors: list[Exception] = []
    acquire = editing._acquire

    def announced(session) -> None:
        if threading.current_thread().name == "first-staff":
            waiting.set()
        acquire(session)

    monkeypatch.setattr(editing, "_acquire", announced)

    def second_staff() -> None:  # e.g. /gan in another bot process, slower to commit
        try:
            with db.begin() as session:
                editing.add_phrase(session, HAWKER_ENTRY, "giấy phép bán hàng rong", "telegram:2", "chat")
                b_ready.set()
                assert go_b.wait(PATIENCE)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    def first_staff() -> None:
        try:
            with db.begin() as session:
                editing.add_phrase(session, "1.001193", "giấy chào đời của bé", "telegram:1", "chat")
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    b = threading.Thread(target=second_staff, name="second-staff")
    a = threading.Thread(target=first_staff, name="first-staff")
    try:
        b.start()
        assert b_ready.wait(PATIENCE)
        a.start()
        assert waiting.wait(PATIENCE)
        live.refresh()
    finally:
        go_b.set()
        b.join(PATIENCE)
        a.join(PATIENCE)
    try:
        assert not errors, errors
        wait_for(lambda: live.refresh() or "giấy chào đời của bé" in live.current.entries["1.001193"].aliases)
        assert "giấy chào đời của bé" in live.current.entries["1.001193"].aliases
        assert "giấy phép bán hàng rong" in live.current.entries[HAWKER_ENTRY].aliases, "the second change never went live"
    finally:
        engine.dispose()
