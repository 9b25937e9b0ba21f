"""Live sessions: one candidate, the batch engine with N = 1.

A session's state is a pure function of (design, bank, seed, answers), so
:meth:`Session.to_json` stores just those (with fingerprints of the design and
bank) and :meth:`Session.from_json` replays them through the engine, verifying
every item on the way: the continuation is the same as if the session had
never been stored.

Examples
--------
>>> from adaptive import ItemBank, Session
>>> from adaptive.cat import ExamDesign
>>> bank = ItemBank(items=[{"id": f"Q{k}", "a": 1.2, "b": (k - 10) / 5} for k in range(21)])
>>> design = ExamDesign(min_length=3, max_length=5, scale={"theta_cut": 0.0})
>>> s = Session.start(design, bank, seed=7)
>>> item = s.next_item(); item
'Q10'
>>> _ = s.answer(item, 1)
>>> s.finished, s.n_scored
(False, 1)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..bank import ItemBank
from ..exceptions import ResponseValidationError, SessionStateError
from ._streams import session_key
from .design import ExamDesign
from .engine import CatEngine
from .report import DomainPerformance, domain_performance
from .state import Decision, SelectionNote, StopRule

__all__ = ["Session", "AuditEntry", "SessionResult"]

_ENGINES: dict = {}
#: the longest time one answer may report (a week): anything longer is a clock or client error
MAX_ITEM_SECONDS = 7 * 24 * 3600.0


def _engine_for(design: ExamDesign, bank: ItemBank) -> CatEngine:
    key = (design.model_dump_json(), id(bank))
    eng = _ENGINES.get(key)
    if eng is None or eng.bank is not bank:
        if len(_ENGINES) > 16:
            _ENGINES.clear()
        eng = _ENGINES[key] = CatEngine(design, bank)
    return eng


@dataclass(frozen=True)
class AuditEntry:
    """One step of a session, enough to explain a decision to a candidate who appeals."""

    step: int
    item_id: str
    domain: str | None
    pretest: bool
    response: int
    seconds: float
    theta_before: float
    se_before: float
    theta_after: float
    se_after: float
    p_pass: float | None
    sprt_llr: float | None
    domain_counts: dict
    stopped_by: str | None
    selection_note: str | None = None


@dataclass(frozen=True)
class SessionResult:
    """The outcome of one session (interim while it runs)."""

    finished: bool
    theta: float
    se: float
    scaled_score: float | None
    p_pass: float | None
    decision: str
    stopped_by: str | None
    n_scored: int
    items: list = field(default_factory=list)
    responses: list = field(default_factory=list)
    pretest: list = field(default_factory=list)
    theta_path: list = field(default_factory=list)
    se_path: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Session:
    """A live adaptive test for one candidate.

    Use :meth:`start`, then alternate :meth:`next_item` and :meth:`answer` until
    :attr:`finished`; :meth:`result` gives the score report. Every call that does
    not fit the session's state raises :class:`~adaptive.exceptions.SessionStateError`
    (or :class:`~adaptive.exceptions.ResponseValidationError` for a bad answer)
    and leaves the session unchanged.
    """

    def __init__(self, engine: CatEngine, seed, session_id: str | None = None,
                 exposure_counts=None, n_sessions: int | None = None, exclude=(), time_limit: float | None = None):
        self.engine = engine
        self.seed = seed
        self.session_id = session_id
        self.exclude: tuple[str, ...] = tuple(sorted(exclude))
        self._key = session_key(seed)
        blocked = None
        if self.exclude:
            blocked = engine.ctx.exclusion_mask(list(self.exclude), 1)
            engine.ctx.check_deliverable(excluded=blocked[0])  # refuse a retake the remaining pool cannot serve
        if time_limit is not None:
            _check_seconds(time_limit, f"session {session_id!r}" if session_id else "session", "time_limit")
        self._state = engine.start(np.array([self._key], dtype=np.uint64), blocked=blocked,
                                   exposure_counts=exposure_counts, n_sessions=n_sessions, time_limit=time_limit)
        self._expired = False
        self._pending: int | None = None
        self._presented_at: float | None = None
        self._answers: list[tuple[str, int, float]] = []
        self.audit: list[AuditEntry] = []

    # ------------------------------------------------------------------ API
    @classmethod
    def start(cls, design: ExamDesign, bank: ItemBank, seed: int | None = None, *, session_id: str | None = None,
              engine: CatEngine | None = None, exposure_counts=None, n_sessions: int | None = None,
              exclude=(), time_limit: float | None = None) -> Session:
        """Start a session. ``seed=None`` draws fresh entropy (stored, so the session stays replayable).

        ``exclude``: ids of items this candidate may not be given (those seen in earlier attempts of a retake);
        a :class:`~adaptive.exceptions.DesignError` says why when the items left cannot meet the design.
        ``time_limit``: this candidate's limit in seconds instead of the design's (an accommodation, e.g.
        1.5 × the design's); the design's run-out-of-time rule applies at it.
        """
        if seed is None:
            entropy = np.random.SeedSequence().entropy
            assert isinstance(entropy, int)
            seed = entropy % (2**63)
        return cls(engine or _engine_for(design, bank), int(seed), session_id, exposure_counts, n_sessions, exclude,
                   time_limit)

    @property
    def where(self) -> str:
        return f"session {self.session_id!r}" if self.session_id else "session"

    @property
    def finished(self) -> bool:
        return not bool(self._state.active[0])

    @property
    def n_scored(self) -> int:
        return int(self._state.n_scored[0])

    @property
    def n_answered(self) -> int:
        """Answers recorded so far, scored and pretest."""
        return len(self._answers)

    @property
    def elapsed(self) -> float:
        """Seconds used by the recorded answers (what the time limit is checked against)."""
        return float(self._state.elapsed[0])

    @property
    def time_limit(self) -> float | None:
        """This session's time limit in seconds (None without one)."""
        v = float(self._state.time_limit[0])
        return None if np.isinf(v) else v

    @property
    def expired(self) -> bool:
        """True when the session was stopped by :meth:`expire` (its time ran out with an item on screen)."""
        return self._expired

    def extend(self, seconds: float) -> float:
        """Give the candidate ``seconds`` more (a proctor's extension); returns the new time limit."""
        if self.finished:
            raise SessionStateError(f"{self.where}: the test has ended; its time cannot be extended")
        if self.time_limit is None:
            raise SessionStateError(f"{self.where}: the exam has no time limit to extend")
        _check_seconds(seconds, self.where, "seconds")
        self._state.time_limit[0] += float(seconds)
        return float(self._state.time_limit[0])

    def expire(self) -> SessionResult:
        """End the test because its time ran out while an item was on screen: that item is not scored and
        the design's run-out-of-time rule (``stopping.on_timeout``) decides. Returns the result."""
        if self.finished:
            raise SessionStateError(f"{self.where}: the test has ended ({self.result().stopped_by}); it cannot "
                                    "expire")
        if self.time_limit is None:
            raise SessionStateError(f"{self.where}: the exam has no time limit; it cannot run out of time")
        self.engine.expire(self._state, np.array([0]))
        self._pending = None
        self._presented_at = None
        self._expired = True
        return self.result()

    @property
    def pending_item(self) -> str | None:
        return None if self._pending is None else self.engine.arrays.ids[self._pending]

    def next_item(self) -> str | None:
        """The id of the item to present now (the same until it is answered); None once finished."""
        if self._pending is not None:
            return self.engine.arrays.ids[self._pending]
        if self.finished:
            return None
        item = int(self.engine.select(self._state)[0])
        if item < 0:  # the pool ran out: the engine stopped the session
            return None
        self._pending = item
        self._presented_at = time.monotonic()
        return self.engine.arrays.ids[item]

    def answer(self, item_id: str, response, seconds: float | None = None) -> AuditEntry:
        """Record the answer to the presented item; returns the audit entry of the step."""
        eng = self.engine
        if self.finished:
            raise SessionStateError(f"{self.where}: the test has ended ({self.result().stopped_by}); "
                                    f"no more answers are taken")
        if self._pending is None:
            raise SessionStateError(f"{self.where}: item {item_id!r} was not presented; call next_item() first")
        if item_id != eng.arrays.ids[self._pending]:
            idx = eng.bank.index.get(item_id)
            already = idx is not None and bool(self._state.administered[0, idx])
            why = "was answered already" if already else "was not presented"
            raise SessionStateError(f"{self.where}: item {item_id!r} {why}; the item awaiting an answer is "
                                    f"{eng.arrays.ids[self._pending]!r}")
        n_cat = int(eng.arrays.n_cat[self._pending])
        try:
            r = float(response)
        except (TypeError, ValueError, OverflowError):  # 10**400 is an int too large for a float
            r = float("nan")
        if not (np.isfinite(r) and r == int(r) and 0 <= r < n_cat):
            raise ResponseValidationError(f"{self.where}, item {item_id!r}: response {_short(response)} is not a "
                                          f"category 0..{n_cat - 1}")
        if seconds is None:
            seconds = time.monotonic() - (self._presented_at or time.monotonic())
        try:
            secs = float(seconds)
        except (TypeError, ValueError, OverflowError):
            secs = float("nan")
        if not (np.isfinite(secs) and 0 <= secs <= MAX_ITEM_SECONDS):
            raise ResponseValidationError(f"{self.where}, item {item_id!r}: seconds must be a number from 0 to "
                                          f"{MAX_ITEM_SECONDS:g}, got {_short(seconds)}")
        seconds = secs
        st = self._state
        before = (float(st.theta[0]), float(st.se[0]))
        eng.record(st, np.array([0]), np.array([self._pending]), np.array([r]), np.array([seconds]))
        pos = int(st.n_given[0]) - 1
        entry = self._audit_entry(pos, item_id, int(r), seconds, before)
        self.audit.append(entry)
        self._answers.append((item_id, int(r), seconds))
        self._pending = None
        self._presented_at = None
        return entry

    def _audit_entry(self, pos, item_id, r, seconds, before):
        eng, st = self.engine, self._state
        item = eng.bank.items[eng.bank.index[item_id]]
        counts = {}
        bp = eng.ctx.blueprint
        if bp is not None:
            counts = {name: int(c) for name, c in zip(bp.names, st.counts[0], strict=True)}
        p = eng.p_pass(st, np.array([0]))
        return AuditEntry(
            step=pos + 1, item_id=item_id, domain=item.domain, pretest=bool(st.seq_pretest[0, pos]), response=r,
            seconds=seconds, theta_before=before[0], se_before=before[1], theta_after=float(st.theta[0]),
            se_after=float(st.se[0]), p_pass=None if p is None else float(p[0]),
            sprt_llr=float(st.llr[0]) if eng.sprt is not None else None, domain_counts=counts,
            stopped_by=StopRule(int(st.rule[0])).label or None,
            selection_note=SelectionNote(int(st.seq_note[0, pos])).label,
        )

    def result(self) -> SessionResult:
        """θ̂, SE, scaled score, P(pass), decision, the rule that fired, items, responses, trajectory."""
        eng, st = self.engine, self._state
        res = eng.result(st)
        seq = st.sequence[0]
        given = seq >= 0
        return SessionResult(
            finished=self.finished,
            theta=float(res.theta[0]),
            se=float(res.se[0]),
            scaled_score=None if res.scaled is None or np.isnan(res.scaled[0]) else float(res.scaled[0]),
            p_pass=None if res.p_pass is None else float(res.p_pass[0]),
            decision=Decision(int(st.decision[0])).label if self.finished else Decision.NO_DECISION.label,
            stopped_by=StopRule(int(st.rule[0])).label or None,
            n_scored=self.n_scored,
            items=[eng.arrays.ids[i] for i in seq[given]],
            responses=[int(v) for v in st.seq_response[0, given]],
            pretest=[bool(v) for v in st.seq_pretest[0, given]],
            theta_path=[float(v) for v in st.theta_path[0, given]],
            se_path=[float(v) for v in st.se_path[0, given]],
        )

    def domain_report(self) -> list[DomainPerformance]:
        """Performance by content domain from this candidate's scored answers (see :mod:`adaptive.cat.report`)."""
        return domain_performance(self.engine, self._state)[0]

    # ------------------------------------------------------------------ persistence
    def to_json(self, key: str | bytes | None = None) -> str:
        """The session as JSON: seed, answers (with times), the pending item and fingerprints.

        With ``key`` the state is signed (HMAC-SHA256 over its canonical JSON, field ``signature``), and
        :meth:`from_json` with the same key refuses a copy that was changed or cut short.
        """
        state = {
            "format": "adaptive-session/1",
            "session_id": self.session_id,
            "seed": self.seed,
            "design": self.engine.design.fingerprint(),
            "bank": {"name": self.engine.bank.name, "version": self.engine.bank.version,
                     "fingerprint": self.engine.bank.fingerprint()},
            "answers": [list(a) for a in self._answers],
            "pending": self.pending_item,
        }
        if self.exclude:
            state["exclude"] = list(self.exclude)
        if self.time_limit != self.engine.design.stopping.time_limit:
            state["time_limit"] = self.time_limit
        if self._expired:
            state["expired"] = True
        if key is not None:
            state["signature"] = _signature(state, key)
        return json.dumps(state)

    @classmethod
    def from_json(cls, text: str, design: ExamDesign, bank: ItemBank, *, engine: CatEngine | None = None,
                  key: str | bytes | None = None) -> Session:
        """Resume a stored session by replaying its answers; refuses a different design or bank.

        With ``key`` the stored state must carry a valid signature (see :meth:`to_json`): a changed,
        truncated or unsigned state raises :class:`~adaptive.exceptions.SessionStateError`.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SessionStateError(f"stored session is not valid JSON (truncated?): {err}") from None
        except RecursionError:
            raise SessionStateError("stored session is nested too deeply to be a session") from None
        if not isinstance(data, dict) or data.get("format") != "adaptive-session/1":
            raise SessionStateError("stored session has an unknown format; expected 'adaptive-session/1'")
        if key is not None:
            signature = data.pop("signature", None)
            if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(data, key)):
                sid = data.get("session_id")
                raise SessionStateError(f"stored session {sid!r} failed its integrity check (changed, cut short or "
                                        "unsigned); it cannot be resumed -- restore it from the audit trail")
        sid = data.get("session_id")
        where = f"session {sid!r}" if sid else "stored session"
        if data.get("design") != design.fingerprint():
            raise SessionStateError(f"{where} was started with another exam design; resume it with the same design")
        if data.get("bank", {}).get("fingerprint") != bank.fingerprint():
            stored = data.get("bank", {})
            raise SessionStateError(f"{where} was started with bank {stored.get('name')!r} v{stored.get('version')}, "
                                    "not this one; resume it with the same bank")
        exclude = data.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(i, str) for i in exclude):
            raise SessionStateError(f"{where}: field 'exclude' must be a list of item ids")
        time_limit = data.get("time_limit")
        if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, (int, float))):
            raise SessionStateError(f"{where}: field 'time_limit' must be a number of seconds")
        return cls.replay(design, bank, data["seed"], data.get("answers", []), session_id=sid,
                          pending=data.get("pending"), engine=engine, exclude=exclude, time_limit=time_limit,
                          expired=data.get("expired") is True)

    @classmethod
    def replay(cls, design: ExamDesign, bank: ItemBank, seed: int, answers, *, session_id: str | None = None,
               pending: str | None = None, engine: CatEngine | None = None, exclude=(),
               time_limit: float | None = None, expired: bool = False) -> Session:
        """Rebuild a session from its seed and its ``(item_id, response, seconds)`` answers.

        Every stored item is checked against the item the engine presents at that step, and
        ``pending`` (if given) against the item it presents next; a mismatch raises
        :class:`~adaptive.exceptions.SessionStateError` naming the step. ``expired``: the session
        ran out of time after these answers (:meth:`expire` is applied again).
        """
        s = cls.start(design, bank, seed=seed, session_id=session_id, engine=engine, exclude=exclude,
                      time_limit=time_limit)
        for step, (item_id, response, seconds) in enumerate(answers, start=1):
            presented = s.next_item()
            if presented != item_id:
                raise SessionStateError(f"{s.where}: replay diverged at step {step}: stored item {item_id!r}, "
                                        f"engine gives {presented!r}")
            s.answer(item_id, response, seconds)
        if pending is not None and s.next_item() != pending:
            raise SessionStateError(f"{s.where}: replay diverged at the pending item {pending!r}")
        if expired and not s.finished:
            s.next_item()  # the item that was on screen when the time ran out
            if not s.finished:
                s.expire()
        return s


def _check_seconds(value, where: str, field: str) -> None:
    try:
        ok = np.isfinite(float(value)) and 0 < float(value) <= 1e7 and not isinstance(value, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ResponseValidationError(f"{where}: {field} must be a number of seconds above 0 and at most 1e7, "
                                      f"got {_short(value)}")


def _signature(state: dict, key: str | bytes) -> str:
    """HMAC-SHA256 of a session state's canonical JSON (sorted keys, no spaces), hex."""
    raw = key.encode() if isinstance(key, str) else bytes(key)
    body = json.dumps({k: v for k, v in state.items() if k != "signature"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(raw, body.encode(), hashlib.sha256).hexdigest()


def _short(value, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about values a client sent."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
