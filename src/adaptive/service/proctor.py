"""Proctor controls and administrators' views (a mixin of :class:`~adaptive.service.delivery.Delivery`).

Pause and resume a session (the clock stops while paused; the candidate's page says a proctor
paused it), extend its time, void it with a reason. Each is an audit event. Listing sessions,
exporting responses and reading a session's audit trail live here too.
"""

from __future__ import annotations

import json
import math

from .eligibility import format_time
from .integrity import chain_problem, session_mac
from .parts import DeliveryParts
from .versions import Conflict, Invalid, NotFound

__all__ = ["Proctoring"]


class Proctoring(DeliveryParts):
    # ------------------------------------------------------------------ proctor controls
    def pause(self, session_id: str, reason: str | None = None) -> dict:
        """Stop the session's clock; the candidate cannot answer until :meth:`resume`."""
        with self._lock(session_id):
            row = self._proctored(session_id)
            if row["paused_at"] is not None:
                raise Conflict(f"session {session_id!r} is already paused")
            now = self.clock()
            left = self.remaining(row, now)
            if left is not None and left <= 0:
                self._expire(row, self.version(int(row["bank_version"])))
                raise Conflict(f"session {session_id!r}: its time had run out; it has ended and cannot be paused")
            with self.store.transaction() as tx:
                tx.run("UPDATE sessions SET paused_at = ?, updated_at = ? WHERE id = ? AND status = 'active'",
                       (now, now, session_id))
                self._event(tx, session_id, "paused", {"reason": reason, "time_remaining_seconds": left})
        return self.proctor_view(session_id)

    def resume(self, session_id: str, reason: str | None = None) -> dict:
        """Restart the clock of a paused session; the paused time is not charged."""
        with self._lock(session_id):
            row = self._proctored(session_id)
            if row["paused_at"] is None:
                raise Conflict(f"session {session_id!r} is not paused")
            now = self.clock()
            paused = max(0.0, now - float(row["paused_at"]))
            with self.store.transaction() as tx:
                tx.run("UPDATE sessions SET paused_at = NULL, presented_at = presented_at + ?, updated_at = ? "
                       "WHERE id = ?", (paused, now, session_id))
                self._event(tx, session_id, "resumed_by_proctor", {"reason": reason, "paused_seconds": paused})
        return self.proctor_view(session_id)

    def extend(self, session_id: str, seconds: float, reason: str | None = None) -> dict:
        """Give the candidate ``seconds`` more time."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or not 0 < seconds <= 86400:
            raise Invalid(f"field 'seconds': {seconds!r} is not a number of seconds from 1 to 86400")
        with self._lock(session_id):
            row = self._proctored(session_id)
            if row["time_limit"] is None:
                raise Conflict(f"session {session_id!r}: the exam has no time limit to extend")
            left = self.remaining(row)
            if left is not None and left <= 0:
                self._expire(row, self.version(int(row["bank_version"])))
                raise Conflict(f"session {session_id!r}: its time had run out; it has ended and cannot be extended")
            limit = float(row["time_limit"]) + float(seconds)
            mac = row.get("mac")
            if self.state_key is not None and mac is not None:  # the limit is part of what the row's MAC covers
                mac = session_mac(self.state_key, {**row, "time_limit": limit})
            with self.store.transaction() as tx:
                tx.run("UPDATE sessions SET time_limit = ?, mac = ?, updated_at = ? WHERE id = ?",
                       (limit, mac, self.clock(), session_id))
                self._event(tx, session_id, "extended", {"seconds": float(seconds), "reason": reason})
            self._evict(session_id)  # rebuilt with the new limit
        return self.proctor_view(session_id)

    def void(self, session_id: str, reason: str) -> dict:
        """End the session without a result (e.g. misconduct); the reason is kept and shown to the candidate."""
        if not isinstance(reason, str) or not reason.strip():
            raise Invalid("field 'reason': voiding a session needs a reason")
        with self._lock(session_id):
            row = self._row(session_id)
            if row is None:
                raise NotFound(f"session {session_id!r} does not exist")
            if row["status"] == "voided":
                raise Conflict(f"session {session_id!r} is already voided")
            now = self.clock()
            with self.store.transaction() as tx:
                tx.run("UPDATE sessions SET status = 'voided', void_reason = ?, paused_at = NULL, finished_at = ?, "
                       "updated_at = ? WHERE id = ?", (reason, now, now, session_id))
                self._event(tx, session_id, "voided", {"reason": reason, "was": row["status"]})
            self._evict(session_id)
        return self.proctor_view(session_id)

    def proctor_view(self, session_id: str) -> dict:
        row = self._row(session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} does not exist")
        return {"session_id": session_id, "status": row["status"], "paused": row["paused_at"] is not None,
                "candidate": row["candidate"], "attempt": row["attempt"], "n_answered": int(row["n_answered"]),
                "time_limit_seconds": row["time_limit"], "time_remaining_seconds": self.remaining(row)
                if row["status"] == "active" else None, "void_reason": row["void_reason"]}

    def _proctored(self, session_id: str) -> dict:
        row = self._row(session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} does not exist")
        if row["status"] != "active":
            raise Conflict(f"session {session_id!r} has {row['status']}; only a running session can be paused, "
                           "resumed or extended")
        return row

    # ------------------------------------------------------------------ administrators' views
    def sessions(self, status: str | None = None, bank_version: int | None = None, limit: int = 100,
                 offset: int = 0) -> list[dict]:
        sql = ("SELECT id, bank_version, candidate, eligibility_id, attempt, status, n_answered, paused_at, "
               "created_at, updated_at, finished_at, expired, void_reason, result_json FROM sessions")
        cond, params = self._filters(status, bank_version)
        with self.store.transaction() as tx:
            rows = tx.rows(sql + cond + " ORDER BY created_at, id LIMIT ? OFFSET ?", params + [limit, offset])
        for r in rows:
            res = r.pop("result_json")
            r["result"] = json.loads(res) if res else None
            r["expired"] = bool(r["expired"])
        return rows

    def export_responses(self, status: str | None = None, bank_version: int | None = None) -> list[dict]:
        """Scored responses in long format (person, item, response), for ``adaptive calibrate`` and ``adaptive
        security``. ``option`` is the authored (canonical) letter chosen, whatever order the candidate saw the
        options in; ``candidate``, ``site`` and ``window`` (the eligibility's testing window as ``start/end``
        dates) come from the eligibility (empty for practice sessions); ``answered_at`` is POSIX seconds."""
        cond, params = self._filters(status, bank_version, prefix="s.")
        with self.store.transaction() as tx:
            rows = tx.rows("SELECT a.session_id AS person, a.item_id AS item, a.response AS response, a.choice AS "
                           "choice, a.seq AS seq, a.pretest AS pretest, a.seconds AS seconds, a.answered_at AS "
                           "answered_at, s.bank_version AS bank_version, s.candidate AS candidate, e.site AS site, "
                           "e.window_start AS window_start, e.window_end AS window_end FROM answers a JOIN sessions s "
                           "ON s.id = a.session_id LEFT JOIN eligibilities e ON e.id = s.eligibility_id" + cond +
                           " ORDER BY s.created_at, a.session_id, a.seq", params)
        for r in rows:
            r["option"] = chr(ord("A") + int(r.pop("choice")))
            r["pretest"] = bool(r["pretest"])
            start, end = r.pop("window_start"), r.pop("window_end")
            r["window"] = "" if start is None else f"{(format_time(start) or '')[:10]}/{(format_time(end) or '')[:10]}"
            r["site"] = r["site"] or ""
            r["candidate"] = r["candidate"] or ""
        return rows

    def audit(self, session_id: str) -> dict:
        """Everything about one session: the row, every answer with θ̂/SE before and after and the option order the
        candidate saw, and events."""
        with self.store.transaction() as tx:
            row = tx.one("SELECT id, bank_version, seed, candidate, eligibility_id, attempt, status, n_answered, "
                         "pending_item, presented_at, time_limit, elapsed, paused_at, expired, void_reason, "
                         "created_at, updated_at, finished_at, result_json FROM sessions WHERE id = ?", (session_id,))
            if row is None:
                raise NotFound(f"session {session_id!r} does not exist")
            answers = tx.rows("SELECT seq, item_id, choice, response, pretest, seconds, answered_at, theta_before, "
                              "se_before, theta_after, se_after, p_pass, options_order, mac FROM answers WHERE "
                              "session_id = ? ORDER BY seq", (session_id,))
            full = tx.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
            events = tx.rows("SELECT at, kind, detail FROM events WHERE session_id = ? ORDER BY id", (session_id,))
        res = row.pop("result_json")
        row["result"] = json.loads(res) if res else None
        row["expired"] = bool(row["expired"])
        row["finished_at_utc"] = format_time(row["finished_at"])
        if self.state_key is None or full.get("mac") is None:
            row["integrity"] = "unsigned"
        else:
            problem = chain_problem(self.state_key, full, answers)
            row["integrity"] = "verified" if problem is None else f"FAILED: {problem}"
        for a in answers:
            a.pop("mac", None)
        for a in answers:
            a["pretest"] = bool(a["pretest"])
            a["options_order"] = json.loads(a["options_order"]) if a["options_order"] else None
        for e in events:
            e["detail"] = json.loads(e["detail"]) if e["detail"] else None
        return {"session": row, "answers": answers, "events": events}

    @staticmethod
    def _filters(status, bank_version, prefix=""):
        cond, params = [], []
        if status is not None:
            cond.append(f"{prefix}status = ?")
            params.append(status)
        if bank_version is not None:
            cond.append(f"{prefix}bank_version = ?")
            params.append(bank_version)
        return (" WHERE " + " AND ".join(cond) if cond else ""), params
