"""Exam delivery over HTTP (the ``service`` extra: FastAPI and uvicorn).

``adaptive serve --bank item_pools/cmcs --db sqlite:///sessions.db`` runs it; :func:`create_app`
builds the application for other ASGI servers or tests; :class:`Delivery` is the same service
without HTTP; :func:`open_store` opens its database (SQLite, or PostgreSQL with the ``postgres``
extra).
"""

from .delivery import (
    Conflict,
    Delivery,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
    delivery_problems,
)
from .store import Store, StoreError, open_store

__all__ = [
    "Conflict",
    "Delivery",
    "Invalid",
    "NotFound",
    "ServiceError",
    "Store",
    "StoreError",
    "Unauthorized",
    "create_app",
    "delivery_problems",
    "open_store",
]


def __getattr__(name):
    if name == "create_app":  # FastAPI is imported only when the HTTP application is wanted
        from .app import create_app

        return create_app
    raise AttributeError(name)
