"""Start rules (cat/start.py) and exam designs (cat/design.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptive import DesignError
from adaptive.cat import ExamDesign, simulate_cat
from tests.cat.helpers import cmcs_bank as _cmcs_bank


def test_start_rules():
    bank = _cmcs_bank(120, seed=4)
    theta = np.zeros(30)
    named = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                       start={"kind": "items", "n_items": 2, "item_ids": [bank.ids[7], bank.ids[3]]})
    r = simulate_cat(named, bank, thetas=theta, seed=1)
    assert np.all(r.sequence[:, 0] == 7) and np.all(r.sequence[:, 1] == 3)
    near = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                      start={"kind": "items", "n_items": 1, "theta": 1.0, "window": 6})
    r = simulate_cat(near, bank, thetas=theta, seed=1)
    b = bank.compile().thresholds[:, 0]
    nearest = set(np.argsort(np.abs(b - 1.0), kind="stable")[:6])
    assert set(r.sequence[:, 0]) <= nearest and len(set(r.sequence[:, 0])) > 1
    rnd = ExamDesign(min_length=5, max_length=5, content={"method": "none"},
                     start={"kind": "random_theta", "low": -2.0, "high": 2.0})
    r = simulate_cat(rnd, bank, thetas=theta, seed=1)
    assert len(set(r.sequence[:, 0])) > 1  # first items differ with the drawn start θ


def test_design_loads_from_toml_and_reports_field_errors(tmp_path):
    p = tmp_path / "d.toml"
    p.write_text('name = "cmcs"\nmin_length = 10\nmax_length = 40\n[scale]\ntheta_cut = 0.25\n'
                 '[selection]\nrule = "mpwi"\n[stopping]\nse_target = 0.3\n')
    d = ExamDesign.load(p)
    assert d.selection.rule == "mpwi" and d.scale.theta_cut == 0.25
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"min_length": 50, "max_length": 40, "selection": {"rule": "best"}}))
    with pytest.raises(DesignError) as ei:
        ExamDesign.load(bad)
    assert "field 'selection.rule'" in str(ei.value) and str(bad) in str(ei.value)
