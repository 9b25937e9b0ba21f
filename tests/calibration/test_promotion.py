"""Promotion of pretest items: the Q1 fit on adaptive data (its null by simulation, power on a planted misfit),
the promotion rules, parameter history and retirement."""

import datetime as dt

import numpy as np
import pytest

from adaptive import ExamDesign, ItemBank
from adaptive.answers import Records
from adaptive.calibration.online import online_calibrate
from adaptive.calibration.promotion import pretest_fit, promote, retire
from adaptive.cat.posthoc import simulate_cat
from adaptive.exceptions import CalibrationError
from adaptive.resources import pool_path
from adaptive.synthetic import synthetic_bank

TODAY = dt.date(2026, 12, 2)


@pytest.fixture(scope="module")
def cat_data():
    """A 1,040-item 2PL bank (40 pretest), 8,000 CMCS tests; pretest item 0 answers from no logistic curve at all
    (U-shaped: right 85% of the time below θ = -1 and above θ = 1, 25% between), a misfit no 2PL can absorb."""
    blueprint = ItemBank.from_json(pool_path("cmcs") / "bank.json").blueprint
    true = synthetic_bank(1040, model="2pl", blueprint=blueprint, pretest=40 / 1040, rng=4)
    pre = [it.id for it in true.items if it.status == "pretest"]
    design = ExamDesign.load(pool_path("cmcs") / "design.json")
    rng = np.random.default_rng(5)
    theta = rng.normal(size=8000)
    rec = Records.from_cat(simulate_cat(design, true, thetas=theta, seed=6), scored_only=False)
    sel = rec.item == true.index[pre[0]]  # unscored answers: changing them changes no path
    p = np.where(np.abs(theta[rec.person[sel]]) > 1.0, 0.85, 0.25)
    category = rec.category.copy()
    category[sel] = (rng.random(sel.sum()) < p).astype(np.int64)
    return true, pre, rec.__class__(**{**rec.__dict__, "category": category})


@pytest.mark.property
def test_q1_null_and_power(cat_data):
    true, pre, rec = cat_data
    fit = pretest_fit(true, rec, pre)
    # at the true parameters (nothing estimated) Q1 has about `groups` degrees of freedom: mean near 10
    assert 8.5 < float(np.mean(fit.q1[1:])) < 12.5
    assert fit.p_value[0] < 1e-6 and fit.n[0] > 500


def test_promotion_rules_history_and_retirement(cat_data):
    true, pre, rec = cat_data
    start = ItemBank(name=true.name, blueprint=true.blueprint,
                     items=[it.model_copy(update={"a": 1.0, "b": 0.0}) if it.id in pre else it for it in true.items])
    cal = online_calibrate(start, rec, pre)
    res = promote(start, cal, rec, min_n=500, today=TODAY)
    verdict = dict(zip(res.item_id, res.promoted))
    assert not verdict[pre[0]]  # calibrated to a flat item: its fit may pass, but its SE or fit must not
    promoted = [i for i in pre if verdict[i]]
    assert len(promoted) >= 30
    new = res.bank
    it = new.items[new.index[promoted[0]]]
    assert it.status == "operational" and it.history[-1].status == "pretest" and it.history[-1].until == TODAY
    assert it.history[-1].a == 1.0 and it.history[-1].reason == "promoted from pretest"
    assert "online calibration" in it.provenance.method
    kept = new.items[new.index[pre[0]]]
    assert kept.status == "pretest" and kept.history == [] and res.reasons[0]
    strict = promote(start, cal, rec, min_n=10**6, today=TODAY)
    assert not strict.promoted.any() and all("answers <" in r for r in strict.reasons)
    # retirement keeps the item (old sessions are scored with it) and records why
    gone = retire(new, [promoted[0]], "exposed in a leak", today=TODAY)
    old = gone.items[gone.index[promoted[0]]]
    assert old.status == "retired" and old.history[-1].reason == "retired: exposed in a leak"
    assert len(old.history) == 2 and ItemBank.from_dict(__import__("json").loads(gone.to_json())) == gone
    with pytest.raises(CalibrationError, match="give a reason"):
        retire(new, [promoted[0]], " ")
    with pytest.raises(CalibrationError, match="not in the bank"):
        retire(new, ["NOPE"], "x")


def test_promote_and_retire_commands(cat_data, tmp_path, capsys):
    from adaptive.cli import main

    true, pre, rec = cat_data
    start = ItemBank(name=true.name, blueprint=true.blueprint,
                     items=[it.model_copy(update={"a": 1.0, "b": 0.0}) if it.id in pre else it for it in true.items])
    start.to_json(tmp_path / "bank.json")
    rec.to_csv(tmp_path / "export.csv", true.ids)
    assert main(["bank", "promote", str(tmp_path / "bank.json"), str(tmp_path / "export.csv"), "--out",
                 str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "pretest item(s) promoted to operational" in out and "review its key" in out
    new = ItemBank.from_json(tmp_path / "new.json")
    assert sum(1 for it in new.items if it.status == "operational" and it.history) >= 30
    assert main(["bank", "retire", str(tmp_path / "new.json"), pre[1], "--reason", "content outdated", "--out",
                 str(tmp_path / "r.json")]) == 0
    assert ItemBank.from_json(tmp_path / "r.json").items[true.index[pre[1]]].status == "retired"
    assert main(["bank", "retire", str(tmp_path / "new.json"), "NOPE", "--reason", "x", "--out",
                 str(tmp_path / "r2.json")]) != 0
    assert "not in the bank" in capsys.readouterr().err
