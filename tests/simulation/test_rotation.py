"""Pool rotation: the split meets its constraints (checked item by item here), and rotation lowers exposure and
overlap while every test still meets the blueprint."""

import numpy as np
import pytest

from adaptive import ExamDesign, ItemBank
from adaptive.exceptions import DesignError
from adaptive.pools.rotation import split_pool
from adaptive.resources import pool_path
from adaptive.simulation.rotation import rotation_study
from adaptive.synthetic import synthetic_bank


@pytest.fixture(scope="module")
def master():
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    bank = synthetic_bank(630, model="3pl", blueprint=blueprint, pretest=0.05, rng=9)
    # three enemy pairs among operational items
    ops = [it.id for it in bank.items if it.status == "operational"]
    enemies = {ops[0]: [ops[1]], ops[2]: [ops[3]], ops[4]: [ops[5]]}
    return ItemBank(name="master", blueprint=bank.blueprint,
                    items=[it.model_copy(update={"enemies": enemies.get(it.id, [])}) for it in bank.items])


def test_split_meets_sizes_domains_enemies_and_information(master):
    res = split_pool(master, 3, theta_cut=0.3, tolerance=0.02)
    arr = master.compile()
    op = arr.status == 0
    assign = res.assignment
    assert set(assign[op].tolist()) == {0, 1, 2} and (assign[~op] == -1).all()
    sizes = np.bincount(assign[op], minlength=3)
    assert sizes.max() - sizes.min() <= 1
    for d in np.unique(arr.domain[op]):
        counts = np.bincount(assign[op & (arr.domain == d)], minlength=3)
        assert counts.max() - counts.min() <= 1
    for a, b in arr.enemy_pairs:
        assert assign[a] != assign[b]
    info = np.stack([arr.subset(np.flatnonzero(assign == p)).information(res.points).sum(axis=1) for p in range(3)])
    assert np.allclose(info, res.information)
    assert np.max(np.abs(info / res.target - 1)) <= 0.02 + 1e-9 and res.deviation <= 0.02 + 1e-9
    # every pool bank holds its operational items plus every pretest item
    n_pre = int((~op).sum())
    assert [len(b) for b in res.banks] == [int(s) + n_pre for s in sizes]
    with pytest.raises(DesignError, match="2 or more pools"):
        split_pool(master, 1, theta_cut=0.3)


@pytest.mark.slow
def test_rotation_lowers_exposure_and_overlap(master):
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    res = split_pool(master, 3, theta_cut=design.theta_cut, tolerance=0.02)
    study = rotation_study(design, master, res.banks, n=1500, seed=2)
    assert study.rotated["max_exposure"] < study.single["max_exposure"]
    assert study.rotated["overlap"] < study.single["overlap"]
    assert study.rotated["repeat_overlap"] == 0.0 < study.single["repeat_overlap"]
    assert study.single["conformance"] == study.rotated["conformance"] == 1.0
