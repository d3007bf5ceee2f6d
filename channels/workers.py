"""The conversation core in worker processes (CORE_WORKERS=N), for servers with more than one core.

Answering a question is pure CPU (tokenizing, matching); in the channels' process it competes with
their network I/O for the interpreter lock, so under a burst every chat waits for every other. In worker
processes the channels keep receiving and sending while the core answers. Each worker opens the
knowledge base itself (and follows its changes, like the bot), assembled by app.py like every other
entry point. A chat's memory lives in the database (handlers.state), so any process may answer it; one chat
still always goes to the same worker, so its messages are answered in the order they came.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from config import Settings
from handlers.core import Context, Router
from handlers.messages import Incoming, Reply
from knowledge.staff import Role

log = logging.getLogger(__name__)

_router = None  # the worker process's own conversation core


def _start_worker(settings: Settings) -> None:
    global _router
    from app import build_app, setup_logging

    setup_logging(settings)  # the same redaction (and chat tags) as the channels' process
    _router = build_app(settings, live=True).router


def _handle(incoming: Incoming) -> list[Reply]:
    return _router.handle(incoming)


def _ready() -> bool:
    return _router is not None


class CoreWorkers:
    """N single-process pools, each holding one conversation core; a chat is pinned to one of them."""

    def __init__(self, settings: Settings, count: int) -> None:
        if count < 1:
            raise ValueError("at least one worker")
        self._settings = settings
        self._pools = [self._new_pool() for _ in range(count)]

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn": the bot's process has threads (the knowledge base's reloader) that a fork would copy mid-work.
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker, initargs=(self._settings,))

    def __len__(self) -> int:
        return len(self._pools)

    async def start(self) -> CoreWorkers:
        """Load the knowledge base in every worker now, not on the first citizen's question."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(pool, _ready) for pool in self._pools))
        return self

    def pool_for(self, chat_key: str) -> int:
        return zlib.crc32(chat_key.encode("utf-8")) % len(self._pools)

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """The core's replies, from the chat's worker. A worker that died (killed, out of memory) is
        replaced for the next messages; the message in hand raises, and the channel apologises."""
        number = self.pool_for(incoming.chat_key)
        pool = self._pools[number]
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _handle, incoming)
        except BrokenProcessPool:
            if self._pools[number] is pool:
                log.error("core worker %d died; starting a new one", number)
                pool.shutdown(wait=False, cancel_futures=True)
                self._pools[number] = self._new_pool()
            raise

    def shutdown(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


class WorkerCore:
    """The core as the channels see it when questions are answered in worker processes (channels.base.Core):
    messages go to the chat's worker; staff lookups stay in this process, on the same database."""

    def __init__(self, router: Router, workers: CoreWorkers) -> None:
        self.router = router
        self.workers = workers

    @property
    def context(self) -> Context:
        return self.router.context

    def handle(self, incoming: Incoming) -> list[Reply]:
        return self.router.handle(incoming)

    def role_of(self, incoming: Incoming) -> Role | None:
        return self.router.role_of(incoming)

    async def answer(self, incoming: Incoming) -> list[Reply]:
        return await self.workers.handle(incoming)
