"""Exam delivery: sessions kept in a database, the engine behind them, no HTTP.

:class:`Delivery` is what the HTTP application calls. It owns

- bank versions (bank + design, stored as JSON; new sessions take the active version and keep
  it to the end, however often the version is replaced);
- sessions: a random id, a secret token (only its SHA-256 is stored), a seed, and the answers.
  A session's state is a pure function of (version, seed, answers), so a server that was killed
  rebuilds any session by replaying its stored answers through the engine and presents the same
  next item (:meth:`adaptive.cat.Session.replay` checks every step);
- the audit trail: one row per answer (θ̂ and SE before and after, P(pass), time, the option
  order shown) and events (started, resumed, refused, late answer, expired, paused, voided, ...);
- exam day: launch codes and eligibility (:mod:`.eligibility`; open starts only in practice
  mode), the clock the server enforces (:mod:`.clock`), proctor controls (:mod:`.proctor`), and
  options shown in a per-candidate order fixed by the session's seed (answers are stored as the
  authored option).

An answer is acknowledged only after the transaction that stores it has committed. Answers carry
the item id and the sequence number of the step; the same answer sent again is acknowledged
again without being scored twice, and anything stale, ahead or not presented is refused with the
reason (:class:`Conflict`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
import zlib
from collections import OrderedDict

import numpy as np

from ..bank import ItemBank
from ..cat.design import ExamDesign
from ..cat.engine import CatEngine
from ..cat.session import Session
from ..exceptions import AdaptiveError
from ..irt.registry import model_spec
from .cache import SessionCache
from .clock import Clock
from .eligibility import LaunchCodes, format_time
from .integrity import answer_mac, session_mac, tip_mac
from .proctor import Proctoring
from .store import Store
from .versions import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
    Version,
    _content,
    delivery_problems,
)
from .views import CandidateViews, candidate_result

__all__ = [
    "Conflict",
    "Delivery",
    "Forbidden",
    "Invalid",
    "NotFound",
    "ServiceError",
    "Unauthorized",
    "Version",
    "delivery_problems",
]


log = logging.getLogger("adaptive.service")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Delivery(LaunchCodes, Proctoring, CandidateViews, SessionCache, Clock):
    """Sessions in a :class:`~adaptive.service.store.Store`, run by the engine.

    ``clock`` gives wall-clock seconds (item times are the difference between presenting an item
    and receiving its answer, kept in the database so they survive a restart). ``practice``
    allows open starts (:meth:`start`) without a launch code. ``state_key`` signs what is stored (see
    :mod:`adaptive.service.integrity`).
    """

    def __init__(self, store: Store, *, clock=time.time, cache_size: int = 5000, practice: bool = False,
                 state_key: str | bytes | None = None):
        self.store = store
        self.clock = clock
        self.practice = bool(practice)
        self.state_key = state_key.encode() if isinstance(state_key, str) else state_key
        self.cache_size = int(cache_size)
        self._versions: dict[int, Version] = {}
        self._live: OrderedDict[str, Session] = OrderedDict()
        self._stripes = [threading.RLock() for _ in range(256)]
        self._cache_lock = threading.Lock()
        self._version_lock = threading.Lock()

    # ------------------------------------------------------------------ bank versions
    def add_version(self, bank: ItemBank, design: ExamDesign, *, source: str = "", activate: bool = True) -> dict:
        """Store a bank version (after checking it can be delivered); the same bank and design
        again returns the stored version. ``activate`` makes it the version new sessions take."""
        problems = delivery_problems(bank)
        if problems:
            raise Invalid(f"bank {bank.name!r} v{bank.version} cannot be delivered: {len(problems)} problem(s):\n  - "
                          + "\n  - ".join(problems[:50]))
        try:
            CatEngine(design, bank)
        except AdaptiveError as err:
            raise Invalid(f"bank {bank.name!r} v{bank.version} does not fit the design: {err}") from None
        bfp, dfp = bank.fingerprint(), design.fingerprint()
        with self.store.transaction() as tx:
            row = tx.one("SELECT id FROM bank_versions WHERE bank_fingerprint = ? AND design_fingerprint = ?",
                         (bfp, dfp))
            if row is None:
                vid = tx.insert_id(
                    "INSERT INTO bank_versions (name, version, bank_fingerprint, design_fingerprint, bank_json, "
                    "design_json, source, created_at, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    (bank.name, bank.version, bfp, dfp, bank.to_json(indent=None),
                     design.model_dump_json(), source, self.clock()))
            else:
                vid = int(row["id"])
            if activate:
                tx.run("UPDATE bank_versions SET active = CASE WHEN id = ? THEN 1 ELSE 0 END", (vid,))
        return self.version_info(vid)

    def activate(self, version_id: int) -> dict:
        with self.store.transaction() as tx:
            if tx.one("SELECT id FROM bank_versions WHERE id = ?", (version_id,)) is None:
                raise NotFound(f"bank version {version_id} does not exist; GET /api/v1/admin/banks lists them")
            tx.run("UPDATE bank_versions SET active = CASE WHEN id = ? THEN 1 ELSE 0 END", (version_id,))
        return self.version_info(version_id)

    def versions(self) -> list[dict]:
        with self.store.transaction() as tx:
            rows = tx.rows("SELECT v.id, v.name, v.version, v.bank_fingerprint, v.design_fingerprint, v.source, "
                           "v.created_at, v.active, (SELECT COUNT(*) FROM sessions s WHERE s.bank_version = v.id) "
                           "AS n_sessions FROM bank_versions v ORDER BY v.id")
        for r in rows:
            r["active"] = bool(r["active"])
            r["n_sessions"] = int(r["n_sessions"])
        return rows

    def version_info(self, version_id: int) -> dict:
        for r in self.versions():
            if r["id"] == version_id:
                v = self.version(version_id)
                r.update(n_items=len(v.bank), design=v.design.name)
                return r
        raise NotFound(f"bank version {version_id} does not exist")

    def version(self, version_id: int) -> Version:
        v = self._versions.get(version_id)
        if v is not None:
            return v
        with self._version_lock:
            if version_id in self._versions:
                return self._versions[version_id]
            with self.store.transaction() as tx:
                row = tx.one("SELECT * FROM bank_versions WHERE id = ?", (version_id,))
            if row is None:
                raise NotFound(f"bank version {version_id} does not exist")
            bank = ItemBank.model_validate_json(row["bank_json"])
            design = ExamDesign.model_validate_json(row["design_json"])
            keys = np.array([ord(_content(it).key or "A") - ord("A") if model_spec(it.model).dichotomous else -1
                             for it in bank.items])
            v = Version(int(row["id"]), row["name"], row["version"], bank, design, CatEngine(design, bank), keys)
            self._versions[version_id] = v
            return v

    def active_version(self) -> Version:
        with self.store.transaction() as tx:
            row = tx.one("SELECT id FROM bank_versions WHERE active = 1")
        if row is None:
            raise Conflict("no bank version is active; an administrator must load one (POST /api/v1/admin/banks)")
        return self.version(int(row["id"]))

    # ------------------------------------------------------------------ candidates
    def start(self, candidate: str | None = None) -> dict:
        """Start a practice session on the active version (practice mode only): its id, its token (shown once)
        and the first item. Real exams start with a launch code (:meth:`launch`)."""
        if not self.practice:
            raise Forbidden("this server starts exams with a launch code only (POST /api/v1/launch); open starts "
                            "exist in practice mode (adaptive serve --practice)")
        return self._begin(self.active_version(), candidate=candidate)

    def _begin(self, ver: Version, *, candidate: str | None = None, eligibility_id: int | None = None,
               attempt: int | None = None, time_limit: float | None = None, exclude=(),
               code_hash: str | None = None) -> dict:
        sid = uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        seed = secrets.randbits(63)
        if time_limit is None:
            time_limit = ver.design.stopping.time_limit
        try:
            live = Session.start(ver.design, ver.bank, seed, session_id=sid, engine=ver.engine, exclude=exclude,
                                 time_limit=time_limit)
        except AdaptiveError as err:  # a retake the items left cannot serve
            raise Conflict(f"attempt {attempt} cannot start: {err}") from None
        item = live.next_item()
        now = self.clock()
        exclude_json = json.dumps(list(exclude)) if exclude else None
        mac = None if self.state_key is None else session_mac(self.state_key, {
            "id": sid, "seed": seed, "bank_version": ver.id, "exclude_json": exclude_json, "time_limit": time_limit})
        with self._lock(sid):
            with self.store.transaction() as tx:
                tx.run("INSERT INTO sessions (id, token_hash, bank_version, seed, candidate, status, n_answered, "
                       "pending_item, presented_at, created_at, updated_at, eligibility_id, attempt, time_limit, "
                       "elapsed, exclude_json, mac) VALUES (?, ?, ?, ?, ?, 'active', 0, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                       (sid, _hash_token(token), ver.id, seed, candidate, item, now, now, now, eligibility_id, attempt,
                        time_limit, exclude_json, mac))
                if code_hash is not None and tx.run("UPDATE launch_codes SET session_id = ?, status = 'used' WHERE "
                                                    "code_hash = ? AND session_id IS NULL", (sid, code_hash)) != 1:
                    raise Conflict("this launch code was used by another request at the same moment; enter it again "
                                   "to resume that attempt")
                self._event(tx, sid, "started", {"bank_version": ver.id, "candidate": candidate, "item": item,
                                                 "attempt": attempt, "time_limit": time_limit,
                                                 "excluded_items": len(exclude)})
            self._cache(sid, live)
        row = self._row(sid)
        assert row is not None
        return {"session_id": sid, "token": token, "attempt": attempt, "resumed": False,
                "exam": self._exam_info(ver, row), "finished": False, "paused": False,
                "item": self._item(row, ver, live), "progress": self._progress(ver, 0)}

    def authorize(self, session_id: str, token: str | None) -> dict:
        """The session's row if ``token`` is its token; otherwise :class:`Unauthorized`/:class:`NotFound`."""
        if not token:
            raise Unauthorized("this endpoint needs the session's token: send 'Authorization: Bearer <token>'")
        row = self._row(session_id)
        if row is None or not hmac.compare_digest(row["token_hash"], _hash_token(token)):
            raise NotFound(f"session {session_id!r} was not found, or the token does not belong to it")
        return row

    def current(self, session_id: str, token: str | None) -> dict:
        """The item to answer now, or that the exam has finished, was voided or is paused by a proctor."""
        with self._lock(session_id):
            for attempt in range(3):  # another process may answer between our reads: read again
                row = self.authorize(session_id, token)
                ver = self.version(int(row["bank_version"]))
                if row["status"] != "active" or row["paused_at"] is not None:
                    return self._state_view(row, ver)
                left = self.remaining(row)
                if left is not None and left <= 0:
                    self._expire(row, ver)
                    return self._state_view(self.authorize(session_id, token), ver)
                try:
                    live = self._session(row, ver)
                    break
                except Conflict:
                    if attempt == 2:
                        raise
            return {"session_id": session_id, "finished": False, "paused": False, "item": self._item(row, ver, live),
                    "progress": self._progress(ver, int(row["n_answered"]))}

    def answer(self, session_id: str, token: str | None, *, item_id: str, seq: int, choice) -> dict:
        """Record the answer to step ``seq``; a repeat of a stored answer is acknowledged again unchanged."""
        with self._lock(session_id):
            row = self.authorize(session_id, token)
            ver = self.version(int(row["bank_version"]))
            n = int(row["n_answered"])
            where = f"session {session_id!r}"
            if seq <= n:
                return self._repeat(row, ver, item_id, seq, choice)
            if row["status"] == "voided":
                raise Conflict(f"{where}: the exam was voided by a proctor ({row['void_reason']}); nothing more is "
                               "taken")
            if row["status"] == "finished":
                why = "its time ran out" if row["expired"] else f"{n} answers"
                raise Conflict(f"{where}: the exam has ended after {why}; nothing more is taken")
            if row["paused_at"] is not None:
                raise self._refuse(session_id, f"{where}: a proctor paused the exam; answer once it is resumed",
                                   item_id, seq)
            if seq > n + 1:
                raise self._refuse(session_id, f"{where}: seq {seq} is ahead of the session; the item awaiting an "
                                   f"answer is seq {n + 1}", item_id, seq)
            now = self.clock()
            left = self.remaining(row, now)
            if left is not None and left <= 0:  # too late: not scored, audited, and the exam ends by the time rule
                with self.store.transaction() as tx:
                    self._event(tx, session_id, "late_answer", {"seq": seq, "item": item_id, "choice": str(choice),
                                                               "seconds_late": -left})
                self._expire(row, ver)
                raise Conflict(f"{where}: time expired {-left:.0f} s before this answer arrived; it was not scored "
                               "and the exam has ended (get the result)")
            live = self._session(row, ver)
            if item_id != live.pending_item:
                why = "was answered already" if item_id in ver.bank.index and self._answered(session_id, item_id) \
                    else "was not presented"
                raise self._refuse(session_id, f"{where}: item {item_id!r} {why}; the item awaiting an answer "
                                   f"(seq {seq}) is {live.pending_item!r}", item_id, seq)
            order = ver.option_order(int(row["seed"]), item_id)
            idx = order[self._choice_index(ver, item_id, choice, where)]  # the authored option behind the letter
            response = ver.score(item_id, idx)
            seconds = max(0.0, now - float(row["presented_at"] or now))
            try:
                entry = live.answer(item_id, response, seconds)
                nxt = live.next_item()
                finished = live.finished
                result = self._result_dict(live, ver) if finished else None
                with self.store.transaction() as tx:
                    cur = tx.one("SELECT n_answered, mac FROM sessions WHERE id = ?" + tx.for_update, (session_id,))
                    if int(cur["n_answered"]) != n:
                        raise Conflict(f"{where}: another request recorded seq {n + 1} first; get the current item")
                    mac = tip = None
                    if self.state_key is not None and cur["mac"] is not None:  # chained to the previous answer
                        prev = None if seq == 1 else tx.one("SELECT mac FROM answers WHERE session_id = ? AND "
                                                            "seq = ?", (session_id, seq - 1))["mac"]
                        mac = answer_mac(self.state_key, prev, session_id, seq, item_id, idx, response, seconds)
                        tip = tip_mac(self.state_key, session_id, seq, mac)
                    tx.run("INSERT INTO answers (session_id, seq, item_id, choice, response, pretest, seconds, "
                           "answered_at, theta_before, se_before, theta_after, se_after, p_pass, options_order, mac) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (session_id, seq, item_id, idx, response, int(entry.pretest), seconds, now,
                            entry.theta_before, entry.se_before, entry.theta_after, entry.se_after, entry.p_pass,
                            json.dumps(order), mac))
                    tx.run("UPDATE sessions SET n_answered = ?, pending_item = ?, presented_at = ?, status = ?, "
                           "updated_at = ?, finished_at = ?, result_json = ?, elapsed = ?, tip = ? WHERE id = ?",
                           (seq, nxt, now, "finished" if finished else "active", now, now if finished else None,
                            json.dumps(result) if finished else None, live.elapsed, tip, session_id))
                    if entry.selection_note:  # e.g. the shadow test hit its time limit for this item
                        self._event(tx, session_id, "selection", {"seq": seq, "item_id": item_id,
                                                                  "note": entry.selection_note})
                    if result is not None:
                        self._event(tx, session_id, "finished", {"stopped_by": result["stopped_by"],
                                                                 "decision": result["decision"]})
            except BaseException:
                self._evict(session_id)  # the stored state is the truth; rebuild from it next time
                raise
        after = {**row, "n_answered": seq, "pending_item": nxt, "presented_at": now, "elapsed": live.elapsed}
        return {"session_id": session_id, "seq": seq, "item_id": item_id, "accepted": True, "repeated": False,
                "finished": finished, "next": None if finished else self._item(after, ver, live),
                "progress": self._progress(ver, seq)}

    def result(self, session_id: str, token: str | None) -> dict:
        """The candidate's score report: decision, scaled score, exam, date, attempt and performance by content
        domain; P(pass) and θ̂ only when the design's ``report`` says so."""
        row = self.authorize(session_id, token)
        ver = self.version(int(row["bank_version"]))
        if row["status"] == "active":
            left = self.remaining(row)
            if left is None or left > 0:
                raise Conflict(f"session {session_id!r}: the exam is still in progress ({row['n_answered']} answered); "
                               "the result is ready once it has finished")
            self._expire(row, ver)
            row = self.authorize(session_id, token)
        base = {"session_id": session_id, "finished": True, "exam": ver.design.name, "attempt": row["attempt"],
                "date": format_time(row["finished_at"]), "candidate": row["candidate"]}
        if row["status"] == "voided":
            return {**base, "voided": True, "void_reason": row["void_reason"], "decision": None, "scaled_score": None,
                    "domains": []}
        return {**base, **candidate_result(json.loads(row["result_json"]), ver.design), "time_expired":
                bool(row["expired"]), "scale": self._scale(ver)}

    # ------------------------------------------------------------------ replay
    def replay(self, session_id: str) -> Session:
        """The session rebuilt from its stored answers alone (what a restarted server does)."""
        row = self._row(session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} does not exist")
        ver = self.version(int(row["bank_version"]))
        return self._rebuild(row, ver)

    # ------------------------------------------------------------------ internals
    def _lock(self, session_id: str) -> threading.RLock:
        return self._stripes[zlib.crc32(session_id.encode()) % len(self._stripes)]

    def _row(self, session_id: str) -> dict | None:
        with self.store.transaction() as tx:
            return tx.one("SELECT * FROM sessions WHERE id = ?", (session_id,))

    def _answered(self, session_id: str, item_id: str) -> bool:
        with self.store.transaction() as tx:
            return tx.one("SELECT seq FROM answers WHERE session_id = ? AND item_id = ?",
                          (session_id, item_id)) is not None

    def _repeat(self, row, ver, item_id, seq, choice) -> dict:
        """An answer for a step already stored: the same answer again is acknowledged again; anything else is stale."""
        sid = row["id"]
        with self.store.transaction() as tx:
            stored = tx.one("SELECT item_id, choice FROM answers WHERE session_id = ? AND seq = ?", (sid, seq))
        try:
            idx = ver.option_order(int(row["seed"]), item_id)[self._choice_index(ver, item_id, choice, f"session "
                                                                                 f"{sid!r}")] \
                if item_id in ver.bank.index else None
        except Invalid:
            idx = None
        if stored is not None and stored["item_id"] == item_id and int(stored["choice"]) == idx:
            with self.store.transaction() as tx:
                self._event(tx, sid, "repeated", {"seq": seq, "item": item_id})
            n = int(row["n_answered"])
            finished = row["status"] != "active"
            nxt = None
            if not finished and row["paused_at"] is None:
                nxt = self._item(row, ver, self._session(row, ver))
            return {"session_id": sid, "seq": seq, "item_id": item_id, "accepted": True, "repeated": True,
                    "finished": finished, "next": nxt, "progress": self._progress(ver, n)}
        what = (f"with item {stored['item_id']!r}" if stored is not None and stored["item_id"] != item_id
                else "with another answer")
        raise self._refuse(sid, f"session {sid!r}: seq {seq} was answered already {what}; it cannot be changed. "
                           f"The item awaiting an answer is seq {int(row['n_answered']) + 1}", item_id, seq)

    def _refuse(self, sid, message, item_id, seq) -> Conflict:
        with self.store.transaction() as tx:
            self._event(tx, sid, "refused", {"seq": seq, "item": item_id, "reason": message})
        return Conflict(message)

    @staticmethod
    def _event(tx, sid, kind, detail) -> None:
        tx.run("INSERT INTO events (session_id, at, kind, detail) VALUES (?, ?, ?, ?)",
               (sid, time.time(), kind, json.dumps(detail)))

    def _expire(self, row: dict, ver: Version, live: Session | None = None) -> dict:
        """End a running session whose time ran out: the item on screen is not scored; the design's run-out-of-time
        rule decides. Idempotent across processes (the row is locked and re-read)."""
        sid = row["id"]
        live = live or self._session(row, ver)
        if live.pending_item is None:
            live.next_item()
        if not live.finished:
            live.expire()
        result = self._result_dict(live, ver)
        now = self.clock()
        try:
            with self.store.transaction() as tx:
                cur = tx.one("SELECT status, n_answered FROM sessions WHERE id = ?" + tx.for_update, (sid,))
                if cur is not None and cur["status"] == "active" and int(cur["n_answered"]) == live.n_answered:
                    tx.run("UPDATE sessions SET status = 'finished', expired = 1, paused_at = NULL, finished_at = ?, "
                           "updated_at = ?, result_json = ? WHERE id = ?", (now, now, json.dumps(result), sid))
                    self._event(tx, sid, "expired", {"item_on_screen": row["pending_item"],
                                                     "seq": live.n_answered + 1, "decision": result["decision"],
                                                     "stopped_by": result["stopped_by"]})
        finally:
            self._evict(sid)
        return result

    @staticmethod
    def _result_dict(live: Session, ver: Version) -> dict:
        r = live.result()
        return {"decision": r.decision, "scaled_score": r.scaled_score, "p_pass": r.p_pass, "theta": r.theta,
                "se": r.se, "stopped_by": r.stopped_by, "n_scored": r.n_scored, "n_answered": len(r.items),
                "domains": [d.to_dict() for d in live.domain_report()]}
