"""Signed session state: the service signs what it stores, so a changed row is noticed.

With a state key (``adaptive serve --state-key`` or ``ADAPTIVE_STATE_KEY``; every process serving one
database needs the same key) each session row carries an HMAC-SHA256 over what fixes its course
(id, seed, bank version, excluded items, time limit), and each answer row one over its own fields
chained to the previous answer's; the session row also seals its
answer count and last answer, so answers cut off the end are noticed too; the time the stored answers
used (the session's ``elapsed``) must equal the sum of their signed seconds. Rebuilding a session from the
database checks the chain: an answer flipped, removed, reordered or inserted outside the service,
or a session row changed, stops the session with 409 and an audit finding instead of resuming it
silently with another θ̂. Without a key nothing is signed and ``audit`` says "unsigned".
"""

from __future__ import annotations

import hashlib
import hmac
import json

from .versions import Conflict

__all__ = ["Tampered", "answer_mac", "chain_problem", "session_mac", "tip_mac"]


class Tampered(Conflict):
    """Stored session state that fails its integrity check."""


def _mac(key: bytes, parts: list) -> str:
    return hmac.new(key, json.dumps(parts, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


def session_mac(key: bytes, row: dict) -> str:
    return _mac(key, ["session", row["id"], int(row["seed"]), int(row["bank_version"]), row.get("exclude_json"),
                      None if row.get("time_limit") is None else float(row["time_limit"])])


def answer_mac(key: bytes, prev: str | None, session_id: str, seq: int, item_id: str, choice: int, response: int,
               seconds: float) -> str:
    return _mac(key, ["answer", prev, session_id, int(seq), item_id, int(choice), int(response), float(seconds)])


def tip_mac(key: bytes, session: str, n_answered: int, last: str | None) -> str:
    """The session row's seal over its answer count and last answer (so answers cut off the end are noticed)."""
    return _mac(key, ["tip", session, int(n_answered), last])


def chain_problem(key: bytes | None, row: dict, answers: list[dict]) -> str | None:
    """What fails the check of a session row and its answers in order (None: intact, or not signed)."""
    if key is None or row.get("mac") is None:
        return None
    if not hmac.compare_digest(row["mac"], session_mac(key, row)):
        return "the session row (seed, version, excluded items or time limit) was changed"
    prev = None  # the first answer's chain starts at the session id (it is in every answer's MAC)
    for k, a in enumerate(answers, start=1):
        if int(a["seq"]) != k:
            return f"answer {k} is missing or out of order"
        want = answer_mac(key, prev, row["id"], k, a["item_id"], a["choice"], a["response"], a["seconds"])
        if a.get("mac") is None or not hmac.compare_digest(a["mac"], want):
            return f"answer {k} was changed"
        prev = a["mac"]
    if abs(float(row.get("elapsed") or 0.0) - sum(float(a["seconds"]) for a in answers)) > 1e-6:
        return "the session's used time was changed"
    if answers and (row.get("tip") is None or not hmac.compare_digest(row["tip"], tip_mac(key, row["id"],
                                                                                          len(answers), prev))):
        return "answers were removed or added"
    return None
