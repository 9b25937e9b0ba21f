"""Simulation studies of adaptive designs: metrics (and, to come, studies, sweeps and reports)."""

from .metrics import Classification, blueprint_conformance, classification, domain_counts, exposure_rates, overlap_rate

__all__ = ["Classification", "blueprint_conformance", "classification", "domain_counts", "exposure_rates",
           "overlap_rate"]
