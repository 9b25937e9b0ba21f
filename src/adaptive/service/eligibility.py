"""Eligibility and launch codes: who may take which exam, when, how often, with what accommodation.

An administrator registers an eligibility (candidate id, bank version, testing window, attempts
allowed, time multiplier) and gets a one-time launch code for the first attempt. The code is 80
random bits shown as ``XXXX-XXXX-XXXX-XXXX`` (letters and digits without 0/O/1/I); only its
SHA-256 is stored. Entering it starts the attempt; entering it again while the attempt runs
resumes the same attempt on a new token (the old token stops working), so a closed tab or a
lost token loses nothing. Once the attempt has ended the code is used up: a retake needs a new
code (:meth:`LaunchCodes.issue_code`), which is refused while attempts are used up or the
design's waiting period (``retakes.wait_days`` from the end of the last attempt) has not passed.
A retake never shows an item the candidate saw in an earlier attempt. Voided attempts count.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import UTC, datetime

from .parts import DeliveryParts
from .versions import Conflict, Forbidden, Invalid, NotFound

__all__ = ["LaunchCodes", "format_time", "normalize_code"]

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DAY = 86400.0


def new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalize_code(code: str) -> str:
    """The code as stored: upper case, without spaces and dashes."""
    return re.sub(r"[\s-]+", "", str(code)).upper()


def _hash_code(code: str) -> str:
    return hashlib.sha256(("launch:" + normalize_code(code)).encode()).hexdigest()


def format_time(t: float | None) -> str | None:
    """Seconds since the epoch as an ISO 8601 UTC time (None stays None)."""
    return None if t is None else datetime.fromtimestamp(float(t), UTC).isoformat(timespec="seconds")


class LaunchCodes(DeliveryParts):
    """Eligibilities and launch codes (a mixin of :class:`~adaptive.service.delivery.Delivery`)."""

    # ------------------------------------------------------------------ administrators
    def register(self, candidate_id: str, *, bank_version: int | None = None, window_start: float | None = None,
                 window_end: float | None = None, window_days: float = 90.0, attempts: int | None = None,
                 time_multiplier: float = 1.0, note: str | None = None, site: str | None = None) -> dict:
        """Register an eligibility; returns it with the launch code of the first attempt (shown once)."""
        if not isinstance(candidate_id, str) or not candidate_id.strip() or len(candidate_id) > 200 \
                or _CONTROL.search(candidate_id):
            raise Invalid("field 'candidate_id': give the candidate's id (1 to 200 characters, no control characters)")
        ver = self.version(bank_version) if bank_version is not None else self.active_version()
        now = self.clock()
        start = now if window_start is None else float(window_start)
        end = start + float(window_days) * DAY if window_end is None else float(window_end)
        if not (math.isfinite(start) and math.isfinite(end) and end > start and end > now):
            raise Invalid(f"fields 'window_start'/'window_end': the testing window must end after it starts and in the "
                          f"future (got {format_time(start)} to {format_time(end) if math.isfinite(end) else end})")
        max_attempts = ver.design.retakes.max_attempts
        n = max_attempts if attempts is None else attempts
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_attempts:
            raise Invalid(f"field 'attempts': {n!r} is not allowed; the design {ver.design.name!r} allows 1 to "
                          f"{max_attempts} attempts")
        mult = float(time_multiplier)
        if not (math.isfinite(mult) and 1.0 <= mult <= 4.0):
            raise Invalid(f"field 'time_multiplier': {time_multiplier!r} is not a multiplier from 1 to 4 (1.5 gives "
                          "50% more time)")
        if site is not None and (not isinstance(site, str) or not site.strip() or len(site) > 200
                                 or _CONTROL.search(site)):
            raise Invalid("field 'site': give the test centre's name or code (1 to 200 characters, no control "
                          "characters), or leave it out")
        code = new_code()
        with self.store.transaction() as tx:
            eid = tx.insert_id("INSERT INTO eligibilities (candidate_id, bank_version, window_start, window_end, "
                               "attempts_allowed, time_multiplier, created_at, note, site) VALUES (?, ?, ?, ?, ?, ?, "
                               "?, ?, ?)", (candidate_id, ver.id, start, end, n, mult, now, note, site))
            tx.run("INSERT INTO launch_codes (code_hash, eligibility_id, attempt, session_id, status, issued_at) "
                   "VALUES (?, ?, 1, NULL, 'issued', ?)", (_hash_code(code), eid, now))
        return {**self.eligibility(eid), "launch_code": code, "code_attempt": 1}

    def issue_code(self, eligibility_id: int) -> dict:
        """A new launch code: for the running or not yet started attempt (the old code stops working), or for the
        next attempt once the last one has ended, attempts are left and the waiting period has passed."""
        elig = self.eligibility(eligibility_id)
        now = self.clock()
        code = new_code()
        with self.store.transaction() as tx:
            last = tx.one("SELECT c.attempt, c.session_id, s.status FROM launch_codes c LEFT JOIN sessions s ON "
                          "s.id = c.session_id WHERE c.eligibility_id = ? ORDER BY c.attempt DESC, c.issued_at DESC",
                          (eligibility_id,))
        if last is not None and (last["session_id"] is None or last["status"] == "active"):
            attempt, sid = int(last["attempt"]), last["session_id"]  # replace the code of this attempt
        else:
            attempt, sid = (0 if last is None else int(last["attempt"])) + 1, None
            self._check_may_start(elig, attempt, now)
        with self.store.transaction() as tx:
            tx.run("UPDATE launch_codes SET status = 'revoked' WHERE eligibility_id = ? AND attempt = ? AND "
                   "status <> 'revoked'", (eligibility_id, attempt))
            tx.run("INSERT INTO launch_codes (code_hash, eligibility_id, attempt, session_id, status, issued_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (_hash_code(code), eligibility_id, attempt, sid,
                                                 "used" if sid else "issued", now))
        return {**self.eligibility(eligibility_id), "launch_code": code, "code_attempt": attempt,
                "resumes_session": sid}

    def eligibility(self, eligibility_id: int) -> dict:
        with self.store.transaction() as tx:
            row = tx.one("SELECT * FROM eligibilities WHERE id = ?", (eligibility_id,))
            if row is None:
                raise NotFound(f"eligibility {eligibility_id} does not exist; 'adaptive candidates list' (or GET "
                               "/api/v1/admin/eligibilities) lists them")
            attempts = tx.rows("SELECT id AS session_id, attempt, status, finished_at FROM sessions WHERE "
                               "eligibility_id = ? ORDER BY attempt", (eligibility_id,))
        return self._eligibility_view(row, attempts)

    def eligibilities(self, candidate_id: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
        cond, params = ("WHERE candidate_id = ? ", [candidate_id]) if candidate_id is not None else ("", [])
        with self.store.transaction() as tx:
            rows = tx.rows(f"SELECT * FROM eligibilities {cond}ORDER BY id LIMIT ? OFFSET ?", params + [limit, offset])
            out = []
            for r in rows:
                attempts = tx.rows("SELECT id AS session_id, attempt, status, finished_at FROM sessions WHERE "
                                   "eligibility_id = ? ORDER BY attempt", (r["id"],))
                out.append(self._eligibility_view(r, attempts))
        return out

    @staticmethod
    def _eligibility_view(row: dict, attempts: list[dict]) -> dict:
        for a in attempts:
            a["finished_at"] = format_time(a["finished_at"])
        return {"eligibility_id": int(row["id"]), "candidate_id": row["candidate_id"],
                "bank_version": int(row["bank_version"]), "window_start": format_time(row["window_start"]),
                "window_end": format_time(row["window_end"]), "attempts_allowed": int(row["attempts_allowed"]),
                "attempts_used": len(attempts), "time_multiplier": float(row["time_multiplier"]),
                "note": row["note"], "site": row.get("site"), "attempts": attempts}

    # ------------------------------------------------------------------ candidates
    def launch(self, code: str) -> dict:
        """Start the attempt a launch code is for, or resume it when it is running (on a new token)."""
        h = _hash_code(code)
        with self.store.transaction() as tx:
            c = tx.one("SELECT * FROM launch_codes WHERE code_hash = ?", (h,))
            elig = None if c is None else tx.one("SELECT * FROM eligibilities WHERE id = ?", (c["eligibility_id"],))
        if c is None or elig is None:
            raise NotFound("launch code not recognized: check it (16 letters and digits, XXXX-XXXX-XXXX-XXXX) or ask "
                           "the exam administrator for a new one")
        if c["status"] == "revoked":
            raise Forbidden("this launch code was replaced by a newer one; use the newest code you were given")
        now = self.clock()
        if now < float(elig["window_start"]):
            raise Forbidden(f"your testing window opens at {format_time(elig['window_start'])} (UTC); start then")
        view = self._eligibility_view(elig, [])
        if c["session_id"] is not None:
            return self._resume_by_code(c, view)
        if now > float(elig["window_end"]):
            raise Forbidden(f"your testing window closed at {format_time(elig['window_end'])} (UTC); ask the exam "
                            "administrator about a new eligibility")
        attempt = int(c["attempt"])
        self._check_may_start(view, attempt, now)
        ver = self.version(int(elig["bank_version"]))
        exclude = self._seen_items(elig["candidate_id"])
        limit = ver.design.stopping.time_limit
        return self._begin(ver, candidate=elig["candidate_id"], eligibility_id=int(elig["id"]), attempt=attempt,
                           time_limit=None if limit is None else limit * float(elig["time_multiplier"]),
                           exclude=exclude, code_hash=h)

    def _check_may_start(self, elig: dict, attempt: int, now: float) -> None:
        eid = elig["eligibility_id"]
        if attempt > elig["attempts_allowed"]:
            raise Forbidden(f"eligibility {eid}: all {elig['attempts_allowed']} attempts have been used")
        ver = self.version(elig["bank_version"])
        wait = ver.design.retakes.wait_days * DAY
        with self.store.transaction() as tx:
            running = tx.one("SELECT s.id FROM sessions s JOIN eligibilities e ON e.id = s.eligibility_id WHERE "
                             "e.candidate_id = ? AND s.status = 'active'", (elig["candidate_id"],))
            last = tx.one("SELECT MAX(s.finished_at) AS t FROM sessions s JOIN eligibilities e ON e.id = "
                          "s.eligibility_id WHERE e.candidate_id = ?", (elig["candidate_id"],))
        if running is not None:
            raise Conflict(f"candidate {elig['candidate_id']!r} has an attempt in progress; finish it (or have it "
                           "voided) before starting another")
        if wait and last is not None and last["t"] is not None and now < float(last["t"]) + wait:
            raise Forbidden(f"retake waiting period: the last attempt ended at {format_time(last['t'])}; the next "
                            f"may start from {format_time(float(last['t']) + wait)} (UTC)")

    def _seen_items(self, candidate_id: str) -> list[str]:
        """Items the candidate was shown in earlier attempts: answered or on screen when the attempt ended."""
        with self.store.transaction() as tx:
            answered = tx.rows("SELECT DISTINCT a.item_id FROM answers a JOIN sessions s ON s.id = a.session_id JOIN "
                               "eligibilities e ON e.id = s.eligibility_id WHERE e.candidate_id = ?", (candidate_id,))
            pending = tx.rows("SELECT s.pending_item FROM sessions s JOIN eligibilities e ON e.id = s.eligibility_id "
                              "WHERE e.candidate_id = ? AND s.pending_item IS NOT NULL", (candidate_id,))
        return sorted({r["item_id"] for r in answered} | {r["pending_item"] for r in pending})

    def _resume_by_code(self, code_row: dict, elig: dict) -> dict:
        sid = code_row["session_id"]
        row = self._row(sid)
        if row is None or row["status"] != "active":
            status = "been voided" if row is not None and row["status"] == "voided" else "ended"
            left = elig["attempts_allowed"] - int(code_row["attempt"])
            nxt = (f"{left} attempt{'s' if left != 1 else ''} left: ask the exam administrator for a new code"
                   if left > 0 else "no attempts are left")
            raise Conflict(f"this launch code was for attempt {code_row['attempt']}, which has {status}; a code is "
                           f"good for one attempt ({nxt})")
        token = secrets.token_urlsafe(32)
        with self._lock(sid):  # two devices of this process resuming at once: one after the other
            with self.store.transaction() as tx:
                tx.run("UPDATE sessions SET token_hash = ? WHERE id = ?",
                       (hashlib.sha256(token.encode()).hexdigest(), sid))
                self._event(tx, sid, "resumed_by_code", {"attempt": int(code_row["attempt"])})
            try:
                state = self.current(sid, token)
            except NotFound:  # another server process resumed it for another device in between
                raise Conflict("this attempt was opened on another device at the same moment; enter the code "
                               "again on the device you will use") from None
        ver = self.version(int(row["bank_version"]))
        return {"session_id": sid, "token": token, "resumed": True, "attempt": int(code_row["attempt"]),
                "exam": self._exam_info(ver, row), **{k: v for k, v in state.items() if k != "session_id"}}
