"""Live sessions: each process's cache, checked against the store, and rebuilding a session from its rows.

A mixin of :class:`~adaptive.service.delivery.Delivery`. A cached session is used when it has exactly the
stored answers; when another process recorded answers since, only those are applied; otherwise (not cached,
or ahead) the session is replayed from its stored answers, after their signatures are checked
(:mod:`adaptive.service.integrity`).
"""

from __future__ import annotations

import json
import logging
import threading

from ..cat.session import Session
from ..exceptions import AdaptiveError
from .integrity import Tampered, chain_problem
from .parts import DeliveryParts
from .versions import Conflict, Version

__all__ = ["SessionCache"]

log = logging.getLogger("adaptive.service")


class SessionCache(DeliveryParts):
    cache_size: int
    _cache_lock: threading.Lock

    def _cache(self, sid: str, live: Session) -> None:
        with self._cache_lock:
            self._live[sid] = live
            self._live.move_to_end(sid)
            while len(self._live) > self.cache_size:
                self._live.popitem(last=False)

    def _evict(self, sid: str) -> None:
        with self._cache_lock:
            self._live.pop(sid, None)

    def _session(self, row: dict, ver: Version) -> Session:
        """The live session, from this process's cache when it is current. The cache is checked against the
        stored answer count: when another process recorded answers since, only those are applied (not a replay
        from the start); when the cache is ahead or missing, the session is rebuilt from the store."""
        sid = row["id"]
        with self._cache_lock:
            live = self._live.get(sid)
        n = int(row["n_answered"])
        if live is not None and live.n_answered == n:
            return live
        if live is not None and live.n_answered < n:
            try:
                self._catch_up(live, row)
                return live
            except (Conflict, AdaptiveError):
                self._evict(sid)  # fall back to a full rebuild from the store
        live = self._rebuild(row, ver)
        with self.store.transaction() as tx:
            self._event(tx, sid, "resumed", {"answers_replayed": int(row["n_answered"]), "item": live.pending_item})
        self._cache(sid, live)
        return live

    def _catch_up(self, live: Session, row: dict) -> None:
        """Apply the answers another process stored after ``live``'s last one (row locked, one transaction)."""
        have = live.n_answered
        with self.store.transaction() as tx:
            cur = tx.one("SELECT n_answered FROM sessions WHERE id = ?" + tx.for_update, (row["id"],))
            stored = tx.rows("SELECT seq, item_id, choice, response, seconds, mac FROM answers WHERE session_id = ? "
                             "ORDER BY seq", (row["id"],))
        newer = stored[have:]
        if cur is None or int(cur["n_answered"]) != int(row["n_answered"]) or \
                [int(a["seq"]) for a in newer] != list(range(have + 1, int(row["n_answered"]) + 1)):
            raise Conflict(f"session {row['id']!r}: another request recorded an answer at the same time; get the "
                           "current item and answer it")
        self._check_integrity(row, stored)
        for a in newer:
            presented = live.next_item()
            if presented != a["item_id"]:
                raise AdaptiveError(f"session {row['id']!r}: stored answer {a['seq']} is to {a['item_id']!r}, but "
                                    f"the cached session presents {presented!r}")
            live.answer(a["item_id"], int(a["response"]), float(a["seconds"]))
        if not live.finished:
            live.next_item()

    def _rebuild(self, row: dict, ver: Version) -> Session:
        """The session replayed from its stored answers. The session row and its answers are read in one
        transaction with the row locked, so another process's answer cannot fall between the two reads; when
        that process recorded an answer after ``row`` was read, the caller's view is stale: 409 (the candidate
        gets the current item and answers it), never a rebuilt session that differs from what was presented."""
        with self.store.transaction() as tx:
            cur = tx.one("SELECT n_answered, pending_item FROM sessions WHERE id = ?" + tx.for_update, (row["id"],))
            stored = tx.rows("SELECT seq, item_id, choice, response, seconds, mac FROM answers WHERE session_id = ? "
                             "ORDER BY seq", (row["id"],))
        if cur is None or int(cur["n_answered"]) != int(row["n_answered"]) or len(stored) != int(cur["n_answered"]):
            raise Conflict(f"session {row['id']!r}: another request recorded an answer at the same time; get the "
                           "current item and answer it")
        self._check_integrity(row, stored)
        answers = [(a["item_id"], int(a["response"]), float(a["seconds"])) for a in stored]
        live = Session.replay(ver.design, ver.bank, int(row["seed"]), answers, session_id=row["id"],
                              engine=ver.engine, exclude=json.loads(row.get("exclude_json") or "[]"),
                              time_limit=row.get("time_limit"), expired=bool(row.get("expired")))
        if not live.finished:
            nxt = live.next_item()
            if row["pending_item"] is not None and nxt != row["pending_item"]:
                raise AdaptiveError(f"session {row['id']!r}: rebuilt from {len(answers)} answers it presents {nxt!r},"
                                    f" but {row['pending_item']!r} was presented; the engine or the stored version "
                                    "changed under the session")
        return live

    def _check_integrity(self, row: dict, stored: list[dict]) -> None:
        """Refuse to rebuild a session whose signed rows were changed outside the service (audited, logged)."""
        problem = chain_problem(self.state_key, row, stored)
        if problem is None:
            return
        log.error("session %s failed its integrity check: %s", row["id"], problem)
        with self.store.transaction() as tx:
            self._event(tx, row["id"], "integrity_failed", {"problem": problem})
        raise Tampered(f"session {row['id']!r} failed its integrity check ({problem} outside the service); it "
                       "cannot continue: the exam administrator must review its audit trail")

