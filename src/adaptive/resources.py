"""Files bundled with the package, found through :mod:`importlib.resources` in one place.

Examples
--------
>>> from adaptive.resources import pool_path
>>> sorted(p.name for p in pool_path("cmcs").iterdir())
['bank.json', 'design.json', 'standard.json', 'subscores.json']
"""

from __future__ import annotations

import importlib.metadata
from importlib import resources
from pathlib import Path

from .exceptions import AdaptiveError

__all__ = ["BUNDLED_POOLS", "pool_path", "demo_bank_path", "demo_design_path", "demo_responses_path",
           "package_version"]

#: item pools bundled with the package (copies of item_pools/<name>/ written by calibration/calibrate_item_pools.py)
BUNDLED_POOLS = ("cmcs", "cmrs")


def _data(*parts: str) -> Path:
    return Path(str(resources.files("adaptive").joinpath("data", *parts)))


def pool_path(name: str = "cmcs") -> Path:
    """Directory of a bundled item pool (``bank.json``, ``design.json``, ``standard.json``)."""
    if name not in BUNDLED_POOLS:
        raise AdaptiveError(f"no bundled pool {name!r}; choose from {list(BUNDLED_POOLS)}")
    return _data("pools", name)


def demo_bank_path() -> Path:
    """Path of the bundled CMCS bank (authored items with calibrated parameters)."""
    return pool_path("cmcs") / "bank.json"


def demo_design_path() -> Path:
    """Path of the bundled CMCS adaptive exam design."""
    return pool_path("cmcs") / "design.json"


def demo_responses_path() -> Path:
    """Path of the bundled demo response file (12 candidates on the CMCS 75-item reference form)."""
    return _data("cmcs_demo_responses.csv")


def package_version() -> str:
    """The installed distribution's version (``adaptive-cat``), or ``0+unknown`` when run from a bare source tree."""
    try:
        return importlib.metadata.version("adaptive-cat")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
