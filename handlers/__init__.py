"""Feature handlers, one module per feature, all registered here in one place."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from handlers import ask, general, privacy, staff, subscribe, track
from handlers import broadcast as broadcasting
from handlers.core import CatalogSource, Context, Router
from knowledge.catalog import Catalog, FixedCatalog


def build_router(catalog: Catalog | CatalogSource, settings: Settings, db: sessionmaker[Session] | None = None) -> Router:
    """The conversation core with every feature registered.

    `catalog` is a fixed Catalog or a live source (knowledge.catalog.LiveCatalog); `db` lets the
    features that keep data (unanswered questions, staff work) reach the database.
    """
    from nlp import prepare

    prepare()  # the classifiers are fitted in this process before its first question, not during it
    source = FixedCatalog(catalog) if isinstance(catalog, Catalog) else catalog
    router = Router(Context(source=source, settings=settings, db=db))
    general.register(router)
    privacy.register(router)
    staff.register(router)
    subscribe.register(router)
    broadcasting.register(router)
    ask.register(router)
    track.register(router)
    return router
