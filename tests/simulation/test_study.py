"""Simulation studies: checks against theory, catR's figures, reproducibility across chunks and workers,
Sympson-Hetter derivation, calibration recovery studies and the report."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from adaptive import ItemBank
from adaptive.cat import CatEngine, ExamDesign, simulate_cat
from adaptive.cli import main
from adaptive.simulation.exposure import derive_sympson_hetter
from adaptive.simulation.metrics import precision
from adaptive.simulation.recovery import recovery_study
from adaptive.simulation.study import SimuleeSpec, StudyConfig, run_cell, run_study
from adaptive.synthetic import synthetic_bank
from tests.conftest import DATA

pytestmark = pytest.mark.slow


def _rasch_bank(n, b=0.0):
    return ItemBank(items=[{"id": f"R{k:03d}", "model": "rasch", "b": b} for k in range(n)])


@pytest.mark.parametrize("length", [24, 100])
def test_rasch_items_at_theta_give_se_two_over_root_length(length):
    """Closed form: a Rasch item at b = θ has information p(1-p) = 1/4, so L of them give SE = 2/sqrt(L)."""
    bank = _rasch_bank(length + 5)
    design = ExamDesign(min_length=length, max_length=length, content={"method": "none"},
                        estimator={"interim": "ml", "final": "ml"})
    cell = run_cell(design, bank, SimuleeSpec(n=800, distribution="grid", grid=[0.0]), seed=1)
    # a score of exactly L/2 puts the ML estimate at θ = 0 = b, where the SE is exactly 2/sqrt(L)
    half = np.abs(cell.theta) < 1e-6
    assert half.sum() > 30
    np.testing.assert_allclose(cell.se[half], 2 / np.sqrt(length), rtol=1e-6)
    # everyone else is estimated near θ = 0 too: the SE evaluated at θ̂ stays within a few percent
    assert np.mean(cell.se) == pytest.approx(2 / np.sqrt(length), rel=0.03 if length == 100 else 0.08)
    assert precision(cell.true_theta, cell.theta, cell.se)["rmse"] == pytest.approx(2 / np.sqrt(length), rel=0.1)


def test_long_tests_mean_squared_se_matches_squared_rmse():
    """For long tests the reported SEs are calibrated: mean(SE²) within 10% of RMSE²."""
    bank = synthetic_bank(400, model="3pl", rng=5)
    design = ExamDesign(min_length=60, max_length=60, content={"method": "none"}, exposure={"randomesque": 2})
    cell = run_cell(design, bank, SimuleeSpec(n=5000), seed=3)
    p = precision(cell.true_theta, cell.theta, cell.se)
    assert p["rms_se"] ** 2 == pytest.approx(p["rmse"] ** 2, rel=0.10)


def test_fixed_length_classification_accuracy_matches_rudner():
    """Rudner (2001): with θ̂ | θ ~ N(θ, 1/I(θ)), the expected accuracy of a fixed form is
    ∫ φ(θ) Φ(|θ - θc| sqrt(I(θ))) dθ. Simulated: 20,000 simulees, ML scores, the whole 60-item form."""
    rng = np.random.default_rng(8)
    a = np.exp(rng.normal(0.1, 0.25, 60))
    b = rng.normal(0.0, 1.0, 60)
    bank = ItemBank(items=[{"id": f"F{k:02d}", "model": "2pl", "a": float(a[k]), "b": float(b[k])} for k in range(60)])
    cut = 0.4
    design = ExamDesign(min_length=60, max_length=60, content={"method": "none"}, scale={"theta_cut": cut},
                        estimator={"interim": "eap", "final": "ml", "bounds": (-6.0, 6.0)})
    cell = run_cell(design, bank, SimuleeSpec(n=20000), seed=11)

    def info(t):  # 2PL test information written out (Lord 1980, eq. 5.9)
        p = 1 / (1 + np.exp(-a * (t - b)))
        return float(np.sum(a**2 * p * (1 - p)))

    analytic = integrate.quad(lambda t: norm.pdf(t) * norm.cdf(abs(t - cut) * np.sqrt(info(t))), -8, 8,
                              points=[cut], limit=200)[0]
    simulated = np.mean((cell.decision == 1) == (cell.true_theta >= cut))
    assert simulated == pytest.approx(analytic, abs=0.01)


def test_post_hoc_study_metrics_agree_with_catr():
    """catR 3.17 (../shared/reference/cat/r_runs.jsonl): 500-item 3PL pool, 1,000 simulees, 30 items, MFI,
    EAP on 33 points in [-4, 4]: RMSE 0.2714, bias -0.0013, mean SE 0.2757."""
    bank = ItemBank.from_csv(DATA / "cat" / "pool_500_3pl.csv")
    with gzip.open(DATA / "cat" / "responses_1000x500.csv.gz", "rt") as fh:
        x = np.array(list(csv.reader(fh))[1:], dtype=float)
    with open(DATA / "cat" / "catR_EAP_1000.csv") as fh:
        true = np.array([float(r["theta"]) for r in csv.DictReader(fh)])
    design = ExamDesign(min_length=30, max_length=30, estimator={"grid": (-4, 4, 33)}, content={"method": "none"})
    res = simulate_cat(design, bank, responses=x, seed=0)
    p = precision(true, res.theta, res.se)
    assert p["rmse"] == pytest.approx(0.271386035957359, abs=0.01)
    assert p["bias"] == pytest.approx(-0.00134308412219618, abs=0.01)
    assert p["mean_se"] == pytest.approx(0.275668415208521, abs=0.01)


def _small_study(tmp_path, **over):
    bank = synthetic_bank(150, pretest=0.1, rng=2)
    bank.to_json(tmp_path / "bank.json")
    data = {"name": "small", "seed": 5, "bank": {"path": "bank.json"},
            "design": {"min_length": 10, "max_length": 20, "pretest_items": 2, "scale": {"theta_cut": 0.3},
                       "stopping": {"classification": {"z": 1.96}}, "exposure": {"randomesque": 3}},
            "simulees": {"n": 300, "replications": 2, "chunk_size": 128},
            "sweep": {"max_length": [15, 20], "selection.rule": ["mfi", "kl"]}, "base_dir": str(tmp_path)}
    data.update(over)
    return StudyConfig.model_validate(data)


def test_results_do_not_depend_on_chunking_or_order(tmp_path):
    a = run_study(_small_study(tmp_path))
    calls = []
    b = run_study(_small_study(tmp_path, simulees={"n": 300, "replications": 2, "chunk_size": 7}),
                  progress=lambda done, total: calls.append((done, total)))
    assert len(a.cells) == 8
    # progress counts simulees chunk by chunk: 8 cells of 300 in chunks of 7 (42 full + one of 6)
    assert len(calls) == 8 * 43 and calls[-1] == (2400, 2400) and calls[0] == (7, 2400)
    for x, y in zip(a.cells, b.cells):
        # the same simulees, items, lengths and decisions; θ̂ and SE equal up to the rounding of BLAS
        # products over batches of a different size (1e-15)
        for name in ("true_theta", "n_items", "decision", "blueprint_ok", "exposure_counts", "pretest_counts"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
        np.testing.assert_allclose(x.theta, y.theta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(x.se, y.se, rtol=0, atol=1e-12)
    # one cell alone gives the same numbers as inside the sweep
    c = a.conditions[3]
    alone = run_cell(c.design, a.bank, a.config.simulees, a.config.seed, condition=3, replication=1)
    assert alone.same_as(a.cells[7])
    # replications differ from each other
    assert not np.array_equal(a.cells[0].true_theta, a.cells[1].true_theta)


def test_the_same_sweep_on_one_and_two_dask_workers_is_identical(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    cfg = _small_study(tmp_path)
    local = run_study(cfg)
    results = []
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == workers
            results.append(run_study(cfg, client=client))
    for res in results:
        assert all(x.same_as(y) for x, y in zip(local.cells, res.cells))
        def timeless(rows):
            return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

        assert timeless(res.metrics) == timeless(local.metrics) and res.conditional == local.conditional


def test_answers_from_a_different_true_bank_show_parameter_error(tmp_path):
    bank = synthetic_bank(200, model="2pl", rng=4)
    harder = ItemBank(items=[it.model_copy(update={"b": it.b + 0.5}) for it in bank.items], blueprint=bank.blueprint)
    design = ExamDesign(min_length=40, max_length=40)
    spec = SimuleeSpec(n=2000)
    same = run_cell(design, bank, spec, seed=1)
    off = run_cell(design, bank, spec, seed=1, true_bank=harder)
    # items truly 0.5 harder than the scoring bank says: every simulee looks 0.5 weaker (shrunk a little by EAP)
    bias = np.mean(off.theta - off.true_theta) - np.mean(same.theta - same.true_theta)
    assert -0.5 < bias < -0.35
    np.testing.assert_array_equal(same.true_theta, off.true_theta)


def test_sympson_hetter_parameters_hold_the_target_rate():
    bank = synthetic_bank(300, rng=6)
    design = ExamDesign(min_length=25, max_length=25)
    res = derive_sympson_hetter(design, bank, target=0.2, simulees=2000, seed=3)
    assert res.converged and res.max_rate_trace[0] > 0.5 and res.max_rate_trace[-1] <= 0.21
    ks = np.array([it.exposure if it.exposure is not None else 1.0 for it in res.bank.items])
    np.testing.assert_allclose(ks, np.round(res.k, 6))
    assert res.design.exposure.sympson_hetter and (ks < 1).sum() > 20
    # fresh simulees with the derived parameters stay near the target (Monte Carlo error ~0.01)
    check = run_cell(res.design, res.bank, SimuleeSpec(n=4000), seed=99)
    assert (check.exposure_counts / 4000).max() < 0.24
    with pytest.raises(ValueError, match="cannot hold every rate"):
        derive_sympson_hetter(ExamDesign(min_length=25, max_length=25), synthetic_bank(60, rng=1), target=0.2)


def test_conditional_sympson_hetter_holds_the_rate_in_every_theta_stratum():
    """Stocking & Lewis (1998): marginal SH leaves candidates of similar ability sharing items
    (here rates near 1 at θ = ±2); conditional SH holds the target at every ability level."""
    bank = synthetic_bank(300, rng=6)
    design = ExamDesign(min_length=25, max_length=25)

    def max_rate_at(res, theta):
        cell = run_cell(res.design, res.bank, SimuleeSpec(distribution="grid", grid=[theta], n=1000), seed=5)
        return (cell.exposure_counts / 1000).max()

    plain = derive_sympson_hetter(design, bank, target=0.2, simulees=2000, seed=3)
    assert max_rate_at(plain, -2.0) > 0.8 and max_rate_at(plain, 2.0) > 0.8
    cond = derive_sympson_hetter(design, bank, target=0.2, simulees=1500, seed=3, strata=[-1.0, 0.0, 1.0])
    assert cond.converged and cond.max_rate_trace[-1] <= 0.21
    assert cond.k.shape == (300, 4) and cond.exposure_rates.shape == (4, 300)
    assert cond.design.exposure.strata == [-1.0, 0.0, 1.0] and cond.design.exposure.sympson_hetter
    # fresh simulees at four ability levels: every item near the target (max over 300 items, n = 1000)
    for theta in (-2.0, -0.5, 0.5, 2.0):
        assert max_rate_at(cond, theta) < 0.28, theta
    # the parameters live in the bank and survive JSON
    again = ItemBank.model_validate_json(cond.bank.to_json())
    np.testing.assert_array_equal(again.compile().exposure_conditional, cond.bank.compile().exposure_conditional)
    assert sum(it.exposure_conditional is not None for it in again.items) > 20


def test_conditional_sympson_hetter_settings_are_checked():
    with pytest.raises(ValueError, match="must increase"):
        ExamDesign(exposure={"sympson_hetter": True, "strata": [0.0, -1.0]})
    with pytest.raises(ValueError, match="set sympson_hetter"):
        ExamDesign(exposure={"strata": [0.0]})
    bank = synthetic_bank(40, rng=2)
    items = [it.model_copy(update={"exposure_conditional": [0.5, 0.5, 0.5]}) if k == 3 else it
             for k, it in enumerate(bank.items)]
    odd = ItemBank(items=items)
    with pytest.raises(Exception, match="one parameter per stratum"):
        CatEngine(ExamDesign(max_length=10, exposure={"sympson_hetter": True, "strata": [0.0]}), odd)


def test_recovery_study_error_shrinks_with_sample_size():
    """Bias near 0; the RMSE of ML estimates falls as 1/sqrt(N): four times the persons, half the RMSE."""
    bank = synthetic_bank(20, model="2pl", rng=3)
    small = recovery_study(bank, 1000, "complete", replications=4, seed=2)
    large = recovery_study(bank, 4000, "complete", replications=4, seed=2)
    assert small.converged.all() and large.converged.all()
    for s, lg in zip(small.rows(), large.rows()):
        assert abs(lg["mean_bias"]) < 0.03
        assert s["rmse"] / lg["rmse"] == pytest.approx(2.0, rel=0.25)
    forms = recovery_study(bank, 3000, "forms", replications=2, seed=2, forms=2, anchors=6)
    # each non-anchor item is answered by half the persons
    assert set(np.unique(forms.answered)) <= {1500, 3000}


def test_recovery_study_on_cat_data_is_sparse_and_item_dependent():
    bank = synthetic_bank(60, model="2pl", rng=7)
    design = ExamDesign(min_length=15, max_length=15, content={"method": "none"}, selection={"rule": "random"})
    res = recovery_study(bank, 3000, "cat", replications=1, seed=4, cat_design=design)
    # random selection: every item is given to about 15/60 of the simulees
    assert res.answered.sum() == 3000 * 15 and res.answered.min() > 600
    assert res.rows()[1]["rmse"] < 0.2


def test_simulate_command_writes_tables_figures_and_html(tmp_path, capsys):
    synthetic_bank(150, pretest=0.1, rng=2).to_json(tmp_path / "bank.json")
    (tmp_path / "study.toml").write_text(
        'name = "cli study"\nseed = 4\n[bank]\npath = "bank.json"\n'
        '[design]\nmin_length = 10\nmax_length = 20\npretest_items = 2\nscale = {theta_cut = 0.3}\n'
        'stopping = {classification = {z = 1.96}}\n'
        '[simulees]\nn = 400\n[sweep]\nmax_length = [15, 20]\n')
    out = tmp_path / "out"
    assert main(["simulate", str(tmp_path / "study.toml"), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "rmse" in text and "report.html" in text
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["max_length"] for r in rows] == ["15", "20"]
    for col in ("bias", "rmse", "corr", "mean_se", "empirical_reliability", "max_exposure", "overlap",
                "exposure_chi2", "pass_rate", "accuracy", "false_pass", "false_fail", "blueprint_conformance"):
        assert col in rows[0]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "Classification" in html
    for name in ("conditional", "oc_curve", "exposure", "test_length", "test_information"):
        assert (out / f"{name}.png").stat().st_size > 5000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics[0]["n"] == 400
    # a bad study file names the field
    (tmp_path / "bad.toml").write_text('[bank]\npath = "bank.json"\n[design]\n[simulees]\nn = -1\n')
    assert main(["simulate", str(tmp_path / "bad.toml"), "--out", str(out)]) == 2
    assert "simulees.n" in capsys.readouterr().err
