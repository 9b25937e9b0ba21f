"""Simulation studies of adaptive designs: studies and sweeps (:mod:`.study`), metrics (:mod:`.metrics`),
reports (:mod:`.report`), Sympson-Hetter derivation (:mod:`.exposure`) and calibration recovery
studies (:mod:`.recovery`)."""

from .exposure import SympsonHetterResult, derive_sympson_hetter
from .metrics import (
                      Classification,
                      blueprint_conformance,
                      classification,
                      domain_counts,
                      exposure_rates,
                      overlap_rate,
                      precision,
)
from .recovery import RecoveryResult, recovery_study
from .report import write_report, write_tables
from .study import CellResult, StudyConfig, StudyResult, load_study, run_cell, run_study

__all__ = [
                      "CellResult",
                      "Classification",
                      "RecoveryResult",
                      "StudyConfig",
                      "StudyResult",
                      "SympsonHetterResult",
                      "blueprint_conformance",
                      "classification",
                      "derive_sympson_hetter",
                      "domain_counts",
                      "exposure_rates",
                      "load_study",
                      "overlap_rate",
                      "precision",
                      "recovery_study",
                      "run_cell",
                      "run_study",
                      "write_report",
                      "write_tables",
]
