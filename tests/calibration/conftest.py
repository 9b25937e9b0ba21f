"""Shared helpers: the mirt reference sets (copied from the project's shared reference folder into tests/data)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

CAL = Path(__file__).parents[1] / "data" / "calibration"


def _fast_csv(path):
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        text = fh.read()
    # empty cells (not administered) -> nan, then numpy's C parser
    lines = []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith(","):
            line = "nan" + line
        if line.endswith(","):
            line = line + "nan"
        while ",," in line:
            line = line.replace(",,", ",nan,")
        lines.append(line)
    return header, np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2)


@cache
def reference_set(name):
    """``(ids, X, mirt_table, truth_table, run)`` for one of the five mirt calibration sets."""
    ids, x = _fast_csv(CAL / f"{name}.csv.gz")
    with gzip.open(CAL / f"{name}_mirt_estimates.csv.gz", "rt") as fh:
        mirt = list(csv.DictReader(fh))
    with gzip.open(CAL / f"{name}_truth.csv.gz", "rt") as fh:
        truth = list(csv.DictReader(fh))
    runs = [json.loads(line) for line in (CAL / "mirt_runs.jsonl").read_text().splitlines() if line.strip()]
    run = next(r for r in runs if r.get("tag") == f"calib_{name}" and "logLik" in r)
    return tuple(ids), x, mirt, truth, run


@pytest.fixture(scope="session")
def ref_sets():
    return reference_set
