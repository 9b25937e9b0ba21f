"""The adaptive exam engine: design, selection, exposure, content, stopping, sessions.

See :class:`ExamDesign` (what an exam is), :class:`CatEngine` (a design compiled
against a bank; the batch loop), :class:`Session` (one live candidate) and
:func:`simulate_cat` (many simulees, or post-hoc runs on full response matrices).
"""

from ._streams import batch_keys, session_key
from .context import CatContext
from .design import (
    ClassificationSpec,
    ContentSpec,
    EstimatorSpec,
    ExamDesign,
    ExposureSpec,
    ReportSpec,
    RetakeSpec,
    SelectionSpec,
    SPRTSpec,
    StartRule,
    StoppingSpec,
)
from .engine import CatEngine
from .posthoc import simulate_cat
from .registry import SELECTION_RULES, START_RULES, TIMEOUT_RULES
from .selection import RULES
from .session import AuditEntry, Session, SessionResult
from .state import BatchState, CatResult, Decision, SelectionNote, StopRule
from .stopping import STOPPING_RULES

__all__ = [
    "ExamDesign", "StartRule", "EstimatorSpec", "SelectionSpec", "ExposureSpec", "ContentSpec", "StoppingSpec",
    "ClassificationSpec", "SPRTSpec", "RetakeSpec", "ReportSpec", "CatEngine", "BatchState", "CatResult",
    "simulate_cat", "Session",
    "SessionResult", "AuditEntry", "RULES", "batch_keys", "session_key", "CatContext", "Decision", "StopRule",
    "SelectionNote", "SELECTION_RULES", "START_RULES", "TIMEOUT_RULES", "STOPPING_RULES",
]
