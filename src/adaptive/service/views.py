"""What a candidate sees: exam facts, the item on screen (options in the session's order), the state of a
session without an item (finished, voided, paused), and the score report as far as the design allows it."""

from __future__ import annotations

from ..cat.design import ExamDesign
from ..cat.session import Session
from .parts import DeliveryParts
from .versions import Invalid, Version, _content

__all__ = ["CANDIDATE_RESULT_FIELDS", "CandidateViews", "candidate_result"]

CANDIDATE_RESULT_FIELDS = ("decision", "scaled_score", "n_answered", "stopped_by")


class CandidateViews(DeliveryParts):
    """The candidate-facing payloads (a mixin of :class:`~adaptive.service.delivery.Delivery`)."""

    practice: bool = False

    def _state_view(self, row: dict, ver: Version) -> dict:
        """A session with no item to show: finished (maybe by time or voided) or paused."""
        out = {"session_id": row["id"], "finished": row["status"] != "active", "paused": row["paused_at"] is not None,
               "item": None, "progress": self._progress(ver, int(row["n_answered"]))}
        if row["status"] == "voided":
            out.update(voided=True, void_reason=row["void_reason"])
        elif row["status"] == "finished":
            out["time_expired"] = bool(row["expired"])
        else:
            out["time_remaining_seconds"] = self.remaining(row)
        return out

    @staticmethod
    def _choice_index(ver: Version, item_id: str, choice, where: str) -> int:
        n_opt = len(_content(ver.bank.items[ver.bank.index[item_id]]).options)
        labels = [chr(ord("A") + k) for k in range(n_opt)]
        if isinstance(choice, str) and choice.strip().upper() in labels:
            return labels.index(choice.strip().upper())
        if isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice < n_opt:
            return choice
        raise Invalid(f"{where}, item {item_id!r}: field 'choice': {choice!r} is not an option; send one of "
                      f"{', '.join(labels)} (or its index 0..{n_opt - 1})")

    @staticmethod
    def _scale(ver: Version) -> dict | None:
        s = ver.design.scale
        if s is None or s.scaled_cut is None:
            return None
        return {"minimum": s.minimum, "maximum": s.maximum, "passing_score": s.scaled_cut}

    def _exam_info(self, ver: Version, row: dict | None = None) -> dict:
        """The exam facts a candidate sees before and during the exam (with ``row``: this session's time limit)."""
        d = ver.design
        limit = d.stopping.time_limit if row is None else row["time_limit"]
        return {"name": d.name, "min_items": d.min_length + d.pretest_items,
                "max_items": d.max_length + d.pretest_items, "time_limit_seconds": limit,
                "scale": self._scale(ver), "practice": self.practice}

    def _progress(self, ver: Version, answered: int) -> dict:
        d = ver.design
        return {"answered": answered, "min_items": d.min_length + d.pretest_items,
                "max_items": d.max_length + d.pretest_items}

    def _item(self, row: dict, ver: Version, live: Session) -> dict:
        """The item on screen as the candidate sees it (options in the session's order) with the time left."""
        pending = live.pending_item
        assert pending is not None  # called for a session that presents an item
        out = ver.item_payload(pending, ver.option_order(int(row["seed"]), pending))
        out["seq"] = live.n_answered + 1
        left = self.remaining(row)
        if left is not None:
            out["time_remaining_seconds"] = max(0.0, left)
        return out



def candidate_result(full: dict, design: ExamDesign) -> dict:
    """What a candidate may see of a stored result: P(pass) and θ̂ (overall and per domain) only when the design's
    ``report`` allows them; per domain the level and the number of scored items, and with a subscore model the
    domain's scaled subscore, its SE and reliability (θ-scale subscores only when ``report.show_theta``)."""
    rep = design.report
    out = {k: full[k] for k in CANDIDATE_RESULT_FIELDS}
    if design.scale is None:  # no reporting scale: no scaled score (and θ̂ only if the report allows it)
        out.pop("scaled_score")
    if rep.show_probability:
        out["p_pass"] = full["p_pass"]
    if rep.show_theta:
        out.update(theta=full["theta"], se=full["se"])
    keep = ("domain", "n_items", "level") + (("theta", "se") if rep.show_theta else ())
    sub = (("scaled_subscore", "scaled_subscore_se") if design.scale is not None else ()) + (
        ("subscore", "subscore_se") if rep.show_theta else ())
    sub = sub + ("reliability",) if sub else ()  # no subscore a candidate may see: no reliability either
    out["domains"] = [{k: d[k] for k in keep + (sub if "subscore" in d else ())} for d in full.get("domains", [])]
    return out
