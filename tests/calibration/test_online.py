"""Online calibration of pretest items: each method against an independent computation of its definition
(Kim 2006; Stocking 1988), MEM-NWU against today's fixed-parameter calibration, and a seeded recovery check."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

import adaptive
from adaptive import ItemBank
from adaptive.calibration.online import online_calibrate
from adaptive.exceptions import CalibrationError, ResponseValidationError
from adaptive.synthetic import simulate_responses, synthetic_bank


@pytest.fixture(scope="module")
def setting():
    """25 operational 2PL items (fixed), 4 pretest items each answered by a random 60% of 1,500 candidates."""
    true = synthetic_bank(29, model="2pl", rng=11)
    pre = list(true.ids[-4:])
    rng = np.random.default_rng(12)
    theta = rng.normal(0.3, 1.1, 1500)
    x = simulate_responses(true.compile(), theta, rng=13)
    x[:, -4:][rng.random((1500, 4)) < 0.4] = np.nan
    bank = ItemBank(items=[it.model_copy(update={"a": 1.0, "b": 0.0, "status": "pretest"}) if it.id in pre else it
                           for it in true.items])
    return true, bank, pre, x


def _fit_item(post_counts_1, post_counts_n, grid):
    """ML of a 2PL item (a, b) on expected counts at the grid nodes, by scipy's BFGS."""
    def neg(v):
        z = v[0] * (grid - v[1])
        return -float(post_counts_1 @ log_expit(z) + (post_counts_n - post_counts_1) @ log_expit(-z))
    return minimize(neg, [1.0, 0.0], method="BFGS", options={"gtol": 1e-10}).x


@pytest.mark.reference
def test_oem_nwu_is_one_m_step_on_operational_posteriors(setting):
    true, bank, pre, x = setting
    res = online_calibrate(bank, x, pre, method="OEM", prior_update="NWU")
    grid = np.linspace(-6, 6, 61)
    arr = true.compile()
    a, b = arr.a[:25], arr.thresholds[:25, 0]
    p = expit(a[:, None] * (grid[None, :] - b[:, None]))  # (25, Q)
    xo = x[:, :25]
    loglik = np.where(np.isfinite(xo), xo, 0) @ np.log(p) + np.where(np.isfinite(xo), 1 - xo, 0) @ np.log(1 - p)
    log_post = loglik - 0.5 * grid ** 2
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    for k in range(4):
        col = x[:, 25 + k]
        seen = np.isfinite(col)
        est = _fit_item(post[seen].T @ col[seen], post[seen].sum(axis=0), grid)
        assert res.a[k] == pytest.approx(est[0], abs=1e-5) and res.b[k] == pytest.approx(est[1], abs=1e-5)


@pytest.mark.reference
def test_stocking_a_is_ml_at_the_operational_eap(setting):
    true, bank, pre, x = setting
    res = online_calibrate(bank, x, pre, method="stocking_a")
    grid = np.linspace(-6, 6, 61)
    arr = true.compile()
    a, b = arr.a[:25], arr.thresholds[:25, 0]
    p = expit(a[:, None] * (grid[None, :] - b[:, None]))
    xo = x[:, :25]
    loglik = np.where(np.isfinite(xo), xo, 0) @ np.log(p) + np.where(np.isfinite(xo), 1 - xo, 0) @ np.log(1 - p)
    log_post = loglik - 0.5 * grid ** 2
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    eap = (post @ grid) / post.sum(axis=1)
    for k in range(4):
        col = x[:, 25 + k]
        seen = np.isfinite(col)

        def neg(v):
            z = v[0] * (eap[seen] - v[1])
            return -float(col[seen] @ log_expit(z) + (1 - col[seen]) @ log_expit(-z))

        est = minimize(neg, [1.0, 0.0], method="BFGS").x
        assert res.a[k] == pytest.approx(est[0], abs=0.01) and res.b[k] == pytest.approx(est[1], abs=0.01)


@pytest.mark.reference
def test_mem_nwu_equals_fixed_parameter_calibration_with_a_fixed_prior(setting):
    """MEM with no prior update is MML with the operational items fixed and θ ~ N(0, 1): the same maximum as
    adaptive.calibrate(fixed=..., estimate_latent=False), reached by a different code path (SQUAREM EM)."""
    _, bank, pre, x = setting
    mem = online_calibrate(bank, x, pre, method="MEM", prior_update="NWU", tol=1e-7)
    operational = ItemBank(items=[it for it in bank.items if it.id not in pre])
    fipc = adaptive.calibrate(x, model="2pl", item_ids=list(bank.ids), fixed=operational, estimate_latent=False,
                              tol=1e-7)
    got = {it.id: it for it in fipc.bank.items}
    assert mem.converged
    for k, iid in enumerate(pre):
        assert mem.a[k] == pytest.approx(got[iid].a, abs=1e-4) and mem.b[k] == pytest.approx(got[iid].b, abs=1e-4)


@pytest.mark.recovery
def test_prior_update_keeps_a_shifted_population_on_the_bank_scale(setting):
    true, bank, pre, x = setting
    tb = np.array([true.items[true.index[i]].b for i in pre])
    mwu = online_calibrate(bank, x, pre, method="MEM", prior_update="MWU")
    assert float(mwu.weights @ mwu.theta) == pytest.approx(0.3, abs=0.1)  # the population mean found
    assert np.abs(mwu.b - tb).max() < 0.35
    assert np.all(np.abs(mwu.b - tb) < 4 * mwu.se_b)
    updated = mwu.bank(bank)
    it = updated.items[updated.index[pre[0]]]
    assert it.a == pytest.approx(mwu.a[0]) and "online calibration MEM-MWU" in it.provenance.method


def test_refusals(setting):
    _, bank, pre, x = setting
    with pytest.raises(CalibrationError, match="method='EM'"):
        online_calibrate(bank, x, pre, method="EM")
    with pytest.raises(CalibrationError, match="prior_update='ALL'"):
        online_calibrate(bank, x, pre, prior_update="ALL")
    with pytest.raises(CalibrationError, match="not in the bank"):
        online_calibrate(bank, x, ["NOPE"])
    none = x.copy()
    none[:, -4:] = np.nan
    with pytest.raises(CalibrationError, match="none of the pretest items was answered"):
        online_calibrate(bank, none, pre)
    with pytest.raises(CalibrationError, match="no operational item"):
        online_calibrate(bank, x, list(bank.ids))


@pytest.mark.slow
def test_online_command_on_cat_records(tmp_path, capsys):
    """Pretest answers of 3,000 simulated CMCS candidates (5 per exam) through `adaptive calibrate --online`."""
    from pathlib import Path

    from adaptive import ExamDesign
    from adaptive.answers import Records
    from adaptive.cat.posthoc import simulate_cat
    from adaptive.cli import main

    pool = Path(__file__).resolve().parents[2] / "item_pools" / "cmcs"
    bank = ItemBank.load(pool)
    res = simulate_cat(ExamDesign.load(pool / "design.json"), bank,
                       thetas=np.random.default_rng(5).normal(size=3000), seed=6)
    Records.from_cat(res, scored_only=False).to_csv(tmp_path / "export.csv", bank.ids)
    out = tmp_path / "new.json"
    assert main(["calibrate", str(tmp_path / "export.csv"), "--online", "MEM", "--fixed", str(pool), "--model", "3pl",
                 "--prior", "3pl", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    pretest = [it for it in bank.items if it.status == "pretest"]
    assert f"OnlineCalibration({len(pretest)} pretest items by MEM-MWU" in printed
    new = ItemBank.from_json(out)
    for it in pretest:  # the pool's pretest items (3PL) were simulated from their own parameters: recovered
        got = new.items[new.index[it.id]]
        assert abs(got.b - it.b) < 0.5 and "online calibration MEM-MWU (3pl)" in got.provenance.method
    assert main(["calibrate", str(tmp_path / "export.csv"), "--online", "OEM"]) != 0
    assert "--online needs --fixed" in capsys.readouterr().err


@pytest.mark.slow
def test_online_recovery_study_runs_every_variant():
    from adaptive import ExamDesign
    from adaptive.simulation.recovery import ONLINE_VARIANTS, online_recovery_study

    blueprint = ItemBank.from_json(_pool() / "bank.json").blueprint
    bank = synthetic_bank(210, model="2pl", blueprint=blueprint, pretest=10 / 210, rng=3)
    design = ExamDesign.load(_pool() / "design.json")
    rows = online_recovery_study(design, bank, 200, replications=1, seed=1)
    assert [r["method"] for r in rows] == ["OEM-NWU", "OEM-MWU", "MEM-NWU", "MEM-OWU", "MEM-MWU", "stocking_a", "FIPC"]
    assert len(rows) == len(ONLINE_VARIANTS) and rows[0]["n_persons"] == 400
    assert all(r["rmse_b"] < 0.5 and r["rmse_a"] < 0.6 for r in rows)


def _pool():
    from adaptive.resources import pool_path

    return pool_path("cmcs")


def test_online_calibration_refuses_a_fractional_response_by_row_and_item():
    bank = synthetic_bank(20)
    x = np.random.default_rng(0).integers(0, 2, (50, len(bank))).astype(float)
    x[3, 4] = 0.5
    with pytest.raises(ResponseValidationError, match=rf"row 3, item '{bank.ids[4]}': response 0.5"):
        online_calibrate(bank, x, pretest=[bank.ids[0]])


def test_online_calibration_refuses_a_category_the_item_does_not_have():
    # a 2 on a 0/1 item (operational or pretest) is named by row and item instead of being counted as something else
    bank = synthetic_bank(20)
    x = np.random.default_rng(0).integers(0, 2, (50, len(bank))).astype(float)
    for col in (0, 6):  # the pretest item, an operational item
        y = x.copy()
        y[7, col] = 2.0
        with pytest.raises(ResponseValidationError, match=rf"row 7, item '{bank.ids[col]}': response 2.0 is not a "
                                                          r"category 0\.\.1"):
            online_calibrate(bank, y, pretest=[bank.ids[0]])
