"""The core in worker processes (CORE_WORKERS): same answers, a chat's memory kept, a dead worker replaced,
and a burst of 200 chats through the fake Telegram server all answered, with and without workers."""

from __future__ import annotations

import os
import signal

import pytest

from channels.base import respond
from channels.workers import CoreWorkers
from conftest import make_settings
from handlers import build_router
from handlers.core import SORRY
from handlers.messages import Incoming
from knowledge.catalog import Catalog
from knowledge.db import session_factory
from knowledge.loader import open_knowledge_base
from quality.channel_bench import _burst


@pytest.fixture
def router_with_workers(tmp_path):
    """A router whose questions are answered by one worker process on the same SQLite knowledge base."""
    settings = make_settings(f"sqlite:///{tmp_path / 'kb.db'}", record_questions=False)
    engine = open_knowledge_base(settings.database_url)
    router = build_router(Catalog.load(engine), settings, session_factory(engine))
    yield router, settings
    if router.workers is not None:
        router.workers.shutdown()
    engine.dispose()


def ask(chat: str, text: str, channel: str = "telegram") -> Incoming:
    return Incoming(channel, chat, chat, text)


async def test_a_worker_answers_like_the_core_and_remembers_the_chat(router_with_workers):
    router, settings = router_with_workers
    router.workers = await CoreWorkers(settings, 1).start()
    [direct] = router.handle(ask("other", "làm căn cước mất bao lâu"))
    [answer] = await respond(router, ask("w1", "làm căn cước mất bao lâu"))
    assert answer.entry_id == direct.entry_id is not None and answer.text == direct.text
    # The follow-up needs the chat's memory, which lives in the worker.
    [follow] = await respond(router, ask("w1", "thế còn lệ phí?"))
    assert follow.entry_id == answer.entry_id and "fee" in follow.aspects


async def test_numbered_choices_work_on_a_buttonless_channel_through_a_worker(router_with_workers):
    router, settings = router_with_workers
    router.buttonless_channels.add("zalo")
    router.workers = await CoreWorkers(settings, 2).start()
    [choices] = await respond(router, ask("z1", "/thutuc", channel="zalo"))
    assert choices.buttons
    [picked] = await respond(router, ask("z1", "1", channel="zalo"))
    assert picked.text != choices.text and "Nút này đã cũ" not in picked.text


async def test_a_killed_worker_costs_one_apology_then_a_new_one_answers(router_with_workers):
    router, settings = router_with_workers
    workers = router.workers = await CoreWorkers(settings, 1).start()
    [pid] = list(workers._pools[0]._processes)
    os.kill(pid, signal.SIGKILL)
    [sorry] = await respond(router, ask("k1", "làm căn cước mất bao lâu"))
    assert sorry.text == SORRY
    [answer] = await respond(router, ask("k1", "làm căn cước mất bao lâu"))
    assert answer.entry_id is not None


@pytest.mark.parametrize("workers", [0, 1])
async def test_200_chats_at_the_same_moment_are_all_answered(router_with_workers, workers):
    router, _ = router_with_workers
    result = await _burst(router, 200, flood_limit=False, workers=workers)
    assert result["answered"] == 200 and result["rejected_429"] == 0
