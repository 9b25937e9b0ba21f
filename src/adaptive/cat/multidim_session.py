"""One live multidimensional adaptive test: a batch of one through :mod:`adaptive.cat.multidim`'s steps.

Nothing is lost and every step can be checked afterwards:

* **audit**: each answer's step, item, whether it was an unscored pretest item, the category, the seconds it took,
  and θ̂ and its SEs before and after;
* **time limit**: ``time_limit`` seconds over the answers' ``seconds``; the test stops (``stop_reason ==
  "time_limit"``) at the first answer that reaches it, with that answer scored;
* **persistence**: :meth:`MultidimSession.to_json` stores the seed, the answers (with their seconds), the time limit
  and fingerprints of the bank and the design (optionally signed with HMAC-SHA256, as
  :meth:`adaptive.cat.Session.to_json`); :meth:`MultidimSession.from_json` replays the answers through a new
  session with the same seed and checks that every stored item is the one the design selects at that step, so a
  resumed test continues exactly where it stopped.

The seed fixes every random choice (randomesque picks, Sympson-Hetter draws, pretest positions): a session
started with ``seed=None`` draws one from fresh entropy and keeps it, so it stays replayable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import asdict

import numpy as np

from ..exceptions import SessionStateError
from .multidim import (
    STOP_LABELS,
    MultidimDesign,
    _Compiled,
    new_batch,
    pretest_due,
    record,
    record_pretest,
    select,
    stop,
)
from .session import _signature

__all__ = ["MultidimSession", "FORMAT"]

#: the stored session's format tag
FORMAT = "adaptive-mcat-session/1"
_TIME_LIMIT = STOP_LABELS.index("time_limit")


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def design_fingerprint(design: MultidimDesign) -> str:
    """Short SHA-256 of the design's fields (canonical JSON)."""
    return _fingerprint(json.dumps(asdict(design), sort_keys=True, default=str))


def bank_fingerprint(bank) -> str:
    """Short SHA-256 of the bank's JSON (items, factors, latent moments)."""
    return _fingerprint(bank.to_json())


class MultidimSession:
    """One live MCAT session (see the module docstring). ``seed``: an int (or ``rng=`` an int or a
    ``numpy.random.Generator``; a Generator's session cannot be stored)."""

    def __init__(self, bank, design: MultidimDesign, seed: int | None = None, *, rng=None,
                 time_limit: float | None = None, session_id: str | None = None):
        if seed is not None and rng is not None:
            raise SessionStateError("give seed= or rng=, not both")
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            seed, rng = int(rng), None
        if seed is None and rng is None:
            seed = int(np.random.SeedSequence().generate_state(2, np.uint64)[0] >> np.uint64(1))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise SessionStateError(f"seed {seed!r}: give an integer >= 0")
        if time_limit is not None and not (isinstance(time_limit, (int, float)) and math.isfinite(time_limit)
                                           and time_limit > 0):
            raise SessionStateError(f"time_limit {time_limit!r}: give a positive number of seconds")
        self.seed = None if seed is None else int(seed)
        self.session_id = session_id
        self.time_limit = None if time_limit is None else float(time_limit)
        self._comp = _Compiled(bank, design)
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(self.seed)
        self._state = new_batch(self._comp, 1, self._rng)
        self._pending: int | None = None
        self._pending_pretest = False
        self.elapsed = 0.0
        self.answers: list[tuple[str, int, float | None]] = []
        self.audit: list[dict] = []

    # ------------------------------------------------------------------ the test
    @property
    def finished(self) -> bool:
        return not bool(self._state.active[0])

    def next_item(self) -> str | None:
        """The id of the next item (the same one until it is answered), or None when the test is over."""
        if self.finished:
            return None
        if self._pending is None:
            due = int(pretest_due(self._comp, self._state)[0])
            if due >= 0:
                self._pending, self._pending_pretest = due, True
                return self._comp.bank.item_ids[due]
            j = int(select(self._comp, self._state, self._rng)[0])
            if j < 0:
                stop(self._comp, self._state, np.array([True]))
                return None
            self._pending = j
        return self._comp.bank.item_ids[self._pending]

    def answer(self, item_id: str, category: int, seconds: float | None = None) -> dict:
        """Record the answer to the item on screen; returns its audit entry. A refused answer changes nothing."""
        if self._pending is None or self._comp.bank.item_ids[self._pending] != item_id:
            raise SessionStateError(f"item {item_id!r} is not the item this session is waiting for "
                                    f"({self.next_item()!r}); the answer was not recorded")
        if isinstance(category, bool) or not isinstance(category, (int, np.integer, float)) or (
                isinstance(category, float) and not float(category).is_integer()):
            raise SessionStateError(f"item {item_id!r}: answer {category!r} is not a category number; the answer "
                                    "was not recorded")
        c = int(category)
        if not 0 <= c < self._comp.bank.n_cat[self._pending]:
            raise SessionStateError(f"item {item_id!r}: answer {category!r} is not a category 0.."
                                    f"{self._comp.bank.n_cat[self._pending] - 1}; the answer was not recorded")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.floating))
                                    or not math.isfinite(seconds) or not 0 < seconds <= 1e7):
            raise SessionStateError(f"item {item_id!r}: seconds {seconds!r} must be a number above 0 and at most "
                                    "1e7; the answer was not recorded")
        before = (self.theta.tolist(), self.se.tolist())
        items = np.array([self._pending])
        pretest = self._pending_pretest
        if pretest:
            record_pretest(self._state, items, np.array([float(c)]))
            self._pending_pretest = False
        else:
            record(self._comp, self._state, items, np.array([float(c)]))
        self._pending = None
        self.elapsed += float(seconds or 0.0)
        self.answers.append((item_id, c, None if seconds is None else float(seconds)))
        if not pretest:
            stop(self._comp, self._state)
        if self.time_limit is not None and self.elapsed >= self.time_limit and not self.finished:
            self._state.stop_reason[0] = _TIME_LIMIT
        entry = {"step": len(self.answers), "item": item_id, "pretest": pretest, "category": c,
                 "seconds": None if seconds is None else float(seconds), "theta_before": before[0],
                 "se_before": before[1], "theta_after": self.theta.tolist(), "se_after": self.se.tolist()}
        self.audit.append(entry)
        return entry

    @property
    def theta(self) -> np.ndarray:
        return self._state.theta[0].copy()

    @property
    def se(self) -> np.ndarray:
        return self._state.se[0].copy()

    @property
    def items(self) -> tuple:
        return tuple(self._comp.bank.item_ids[j] for j in self._state.given[0, :self._state.n_given[0]])

    @property
    def pretest_items(self) -> tuple:
        """The unscored items given so far, in order."""
        chosen = self._state.pretest_items
        if chosen is None:
            return ()
        return tuple(self._comp.bank.item_ids[j] for j in chosen[0, :int(self._state.n_pretest[0])])

    @property
    def stop_reason(self) -> str:
        return STOP_LABELS[int(self._state.stop_reason[0])]

    # ------------------------------------------------------------------ persistence
    def to_json(self, key: str | bytes | None = None) -> str:
        """The session as JSON (see the module docstring); with ``key`` signed (field ``signature``)."""
        if self.seed is None:
            raise SessionStateError("this session was started with a numpy Generator, not a seed, so it cannot be "
                                    "replayed; start sessions to be stored with seed= (or none: one is drawn)")
        state = {"format": FORMAT, "session_id": self.session_id, "seed": self.seed,
                 "design": design_fingerprint(self._comp.design), "bank": bank_fingerprint(self._comp.bank),
                 "time_limit": self.time_limit, "answers": [list(a) for a in self.answers]}
        if key is not None:
            state["signature"] = _signature(state, key)
        return json.dumps(state)

    @classmethod
    def from_json(cls, text: str, bank, design: MultidimDesign, key: str | bytes | None = None) -> MultidimSession:
        """Resume a stored session by replaying its answers; refuses another bank or design, a changed or unsigned
        state (with ``key``), and a stored item the design would not select at that step."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise SessionStateError(f"stored MCAT session is not valid JSON (truncated?): {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SessionStateError(f"stored session has an unknown format; expected {FORMAT!r}")
        where = f"session {data.get('session_id')!r}" if data.get("session_id") else "stored session"
        if key is not None:
            signature = data.pop("signature", None)
            if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(data, key)):
                raise SessionStateError(f"{where} failed its integrity check (changed, cut short or unsigned); it "
                                        "cannot be resumed -- restore it from the audit trail")
        if data.get("design") != design_fingerprint(design):
            raise SessionStateError(f"{where} was started with another MCAT design; resume it with the same design")
        if data.get("bank") != bank_fingerprint(bank):
            raise SessionStateError(f"{where} was started with another bank; resume it with the same bank")
        seed, answers = data.get("seed"), data.get("answers")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or not isinstance(answers, list):
            raise SessionStateError(f"{where}: fields 'seed' (an integer >= 0) and 'answers' (a list) are required")
        session = cls(bank, design, seed, time_limit=data.get("time_limit"), session_id=data.get("session_id"))
        for step, entry in enumerate(answers, start=1):
            if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str):
                raise SessionStateError(f"{where}, answer {step}: expected [item id, category, seconds]")
            expected = session.next_item()
            if expected != entry[0]:
                raise SessionStateError(f"{where}, answer {step}: stored item {entry[0]!r} but the design selects "
                                        f"{expected!r} at this step; the stored answers do not belong to this "
                                        "session's bank, design and seed")
            session.answer(entry[0], entry[1], entry[2])
        return session
