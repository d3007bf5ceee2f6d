"""Feature handlers, one module per feature, all registered here in one place."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from handlers import ask, general, handoff, privacy, question_log, staff, subscribe, track, web_signin
from handlers import broadcast as broadcasting
from handlers.core import CatalogSource, Context, Router
from handlers.state import ChatMemory
from knowledge.catalog import Catalog, FixedCatalog


def build_router(catalog: Catalog | CatalogSource, settings: Settings, db: sessionmaker[Session] | None = None,
                 memory: ChatMemory | None = None) -> Router:
    """The conversation core with every feature registered.

    `catalog` is a fixed Catalog or a live source (knowledge.catalog.LiveCatalog); `db` lets the
    features that keep data (unanswered questions, staff work) reach the database. The chats' memory is
    kept in that database (it outlives a restart) unless `memory` says otherwise; without one, in memory.
    """
    from nlp import prepare

    prepare()  # the classifiers are fitted in this process before its first question, not during it
    source = FixedCatalog(catalog) if isinstance(catalog, Catalog) else catalog
    if memory is None:
        memory = chat_memory(settings, db)
    router = Router(Context(source=source, settings=settings, db=db, memory=memory))
    general.register(router)
    privacy.register(router)
    staff.register(router)
    web_signin.register(router)
    subscribe.register(router)
    broadcasting.register(router)
    ask.register(router)
    track.register(router)
    handoff.register(router)  # before the question log: a chat an officer handles is not logged as questions
    question_log.register(router)
    # The Zalo OA channel's own record of a citizen (when they last wrote: the reply window) goes too.
    from knowledge import zalo_oa_store

    router.forget("thời điểm bạn nhắn gần nhất qua Zalo OA", zalo_oa_store.forget)
    return router


def chat_memory(settings: Settings, db: sessionmaker[Session] | None) -> ChatMemory:
    """The chats' memory: in the database when there is one (kept CHAT_STATE_HOURS), else in this process."""
    ttl = timedelta(hours=settings.chat_state_hours)
    if db is None:
        return ChatMemory(ttl=ttl)
    from knowledge.chat_state import DatabaseBackend

    return ChatMemory(DatabaseBackend(db), ttl=ttl)
