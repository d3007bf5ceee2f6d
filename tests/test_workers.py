"""The core in worker processes (CORE_WORKERS): same answers, a chat's memory kept, a dead worker replaced,
and a burst of 200 chats through the fake Telegram server all answered, with and without workers."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import make_settings

from channels.base import respond, without_buttons
from channels.workers import CoreWorkers, WorkerCore
from handlers import build_router
from handlers.core import SORRY
from handlers.messages import Incoming
from knowledge.catalog import Catalog
from knowledge.db import session_factory
from knowledge.loader import open_knowledge_base
from quality.channel_bench import _burst


@pytest.fixture
def router_with_workers(tmp_path):
    """A router on a SQLite knowledge base, and the worker pools a test starts in front of it (shut down after)."""
    settings = make_settings(f"sqlite:///{tmp_path / 'kb.db'}", record_questions=False)
    engine = open_knowledge_base(settings.database_url)
    router = build_router(Catalog.load(engine), settings, session_factory(engine))
    pools: list[CoreWorkers] = []
    yield router, settings, pools
    for pool in pools:
        pool.shutdown()
    engine.dispose()


async def in_workers(router, settings, pools: list, count: int) -> WorkerCore:
    """The core as the channels see it with `count` worker processes answering."""
    pool = await CoreWorkers(settings, count).start()
    pools.append(pool)
    return WorkerCore(router, pool)


def ask(chat: str, text: str, channel: str = "telegram") -> Incoming:
    return Incoming(channel, chat, chat, text)


async def test_a_worker_answers_like_the_core_and_remembers_the_chat(router_with_workers):
    router, settings, pools = router_with_workers
    core = await in_workers(router, settings, pools, 1)
    [direct] = router.handle(ask("other", "làm căn cước mất bao lâu"))
    [answer] = await respond(core, ask("w1", "làm căn cước mất bao lâu"))
    assert answer.entry_id == direct.entry_id is not None and answer.text == direct.text
    # The follow-up needs the chat's memory, kept in the database by the worker.
    [follow] = await respond(core, ask("w1", "thế còn lệ phí?"))
    assert follow.entry_id == answer.entry_id and "fee" in follow.aspects


async def test_numbered_choices_work_on_a_buttonless_channel_through_a_worker(router_with_workers):
    router, settings, pools = router_with_workers
    core = without_buttons(await in_workers(router, settings, pools, 2))
    [choices] = await respond(core, ask("z1", "/thutuc", channel="zalo"))
    assert choices.buttons
    [picked] = await respond(core, ask("z1", "1", channel="zalo"))
    assert picked.text != choices.text and "Nút này đã cũ" not in picked.text


async def test_a_killed_worker_costs_one_apology_then_a_new_one_answers(router_with_workers):
    router, settings, pools = router_with_workers
    core = await in_workers(router, settings, pools, 1)
    [pid] = list(core.workers._pools[0]._processes)
    os.kill(pid, signal.SIGKILL)
    [sorry] = await respond(core, ask("k1", "làm căn cước mất bao lâu"))
    assert sorry.text == SORRY
    [answer] = await respond(core, ask("k1", "làm căn cước mất bao lâu"))
    assert answer.entry_id is not None


@pytest.mark.parametrize("workers", [0, 1])
async def test_200_chats_at_the_same_moment_are_all_answered(router_with_workers, workers):
    router, _, _ = router_with_workers
    result = await _burst(router, 200, flood_limit=False, workers=workers)
    assert result["answered"] == 200 and result["rejected_429"] == 0


async def test_run_channels_answers_through_workers_when_configured(router_with_workers):
    import asyncio
    import multiprocessing

    from fake_telegram import FakeTelegram
    from fake_zalo import FakeZalo

    from channels.runner import run_channels

    router, settings, _ = router_with_workers
    before = set(multiprocessing.active_children())
    async with FakeTelegram() as telegram:
        zalo = await FakeZalo().start()
        try:
            settings = settings.model_copy(update={
                "core_workers": 1, "telegram_bot_token": telegram.token, "telegram_api_base_url": telegram.base_url,
                "zalo_bot_token": zalo.token, "zalo_api_base_url": zalo.base_url,
            })
            serving = asyncio.create_task(run_channels(router, settings, ["telegram", "zalo"]))
            telegram.push_text(601, "lam cccd lan dau mat bao nhieu tien")
            zalo.push_text("z-601", "/thutuc")
            [answer] = await telegram.wait_messages(601, 1, timeout=60)
            [groups] = await zalo.wait_messages("z-601", 1, timeout=60)
            assert len(set(multiprocessing.active_children()) - before) == 1, "one worker process answers"
            zalo.push_text("z-601", "1")  # Zalo has no buttons: the worker must know to read the number
            picked = (await zalo.wait_messages("z-601", 2, timeout=60))[1]
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
        finally:
            await zalo.stop()
    assert "căn cước lần đầu" in answer.text and "Lệ phí" in answer.text
    assert "1." in groups and picked != groups and "Nút này đã cũ" not in picked
    assert not set(multiprocessing.active_children()) - before, "workers are stopped with the channels"


def test_one_worker_by_default_on_a_machine_with_two_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert make_settings(core_workers=None).answering_workers == 1
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert make_settings(core_workers=None).answering_workers == 0
    assert make_settings(core_workers=3).answering_workers == 3
