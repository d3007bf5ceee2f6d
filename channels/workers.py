"""The conversation core in worker processes (CORE_WORKERS=N), for servers with more than one core.

Answering a question is pure CPU (tokenizing, matching); in the channels' process it competes with
their network I/O for the interpreter lock, so under a burst every chat waits for every other. In worker
processes the channels keep receiving and sending while the core answers. Each worker opens the
knowledge base itself (and follows its changes, like the bot); one chat always goes to the same worker,
because the chat's memory (the entry talked about, the choices offered) lives there.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from config import Settings
from handlers.messages import Incoming, Reply

log = logging.getLogger(__name__)

_router = None  # the worker process's own conversation core


def _start_worker(settings: Settings) -> None:
    global _router
    from bot import build_router, setup_logging

    setup_logging(settings)  # the same redaction (and chat tags) as the channels' process
    _router = build_router(settings, live=True)


def _handle(incoming: Incoming, buttonless: frozenset[str]) -> list[Reply]:
    _router.buttonless_channels.update(buttonless)
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

    async def handle(self, incoming: Incoming, buttonless: frozenset[str] = frozenset()) -> list[Reply]:
        """The core's replies, from the chat's worker. A worker that died (killed, out of memory) is
        replaced for the next messages; the message in hand raises, and the channel apologises."""
        number = self.pool_for(incoming.chat_key)
        pool = self._pools[number]
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _handle, incoming, buttonless)
        except BrokenProcessPool:
            if self._pools[number] is pool:
                log.error("core worker %d died; starting a new one (its chats' memory is lost)", number)
                pool.shutdown(wait=False, cancel_futures=True)
                self._pools[number] = self._new_pool()
            raise

    def shutdown(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
