"""Feature handlers, one module per feature, all registered here in one place."""

from __future__ import annotations

from config import Settings
from handlers import ask, general
from handlers.core import Context, Router
from knowledge.catalog import Catalog


def build_router(catalog: Catalog, settings: Settings) -> Router:
    """The conversation core with every feature registered."""
    router = Router(Context(catalog=catalog, settings=settings))
    general.register(router)
    ask.register(router)
    return router
