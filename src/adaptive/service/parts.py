"""What the parts of :class:`~adaptive.service.delivery.Delivery` (its mixins) rely on of each other."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["DeliveryParts"]


class DeliveryParts:
    """The attributes and methods :class:`~adaptive.service.delivery.Delivery` provides to its mixins."""

    store: Any
    clock: Any
    state_key: bytes | None = None
    _live: OrderedDict
    _heartbeat_stop: threading.Event | None = None

    def version(self, version_id: int) -> Any:
        raise NotImplementedError

    def active_version(self) -> Any:
        raise NotImplementedError

    def current(self, session_id: str, token: str | None) -> dict:
        raise NotImplementedError

    def remaining(self, row: dict, now: float | None = None) -> float | None:
        raise NotImplementedError

    def _row(self, session_id: str) -> dict | None:
        raise NotImplementedError

    def _lock(self, session_id: str) -> threading.RLock:
        raise NotImplementedError

    def _evict(self, sid: str) -> None:
        raise NotImplementedError

    def _expire(self, row: dict, ver: Any, live: Any = None) -> dict:
        raise NotImplementedError

    def _exam_info(self, ver: Any, row: dict | None = None) -> dict:
        raise NotImplementedError

    def _begin(self, ver: Any, *, candidate: str | None = None, eligibility_id: int | None = None,
               attempt: int | None = None, time_limit: float | None = None, exclude: Any = (),
               code_hash: str | None = None) -> dict:
        raise NotImplementedError

    @staticmethod
    def _event(tx, sid, kind, detail) -> None:
        raise NotImplementedError
