"""Parameter drift: the robust z of Huynh & Meyer (2010) by hand, and power / false flags on planted shifts."""

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.calibration.drift import parameter_drift
from adaptive.exceptions import CalibrationError


def _bank(a, b, prefix="Q"):
    return ItemBank(items=[{"id": f"{prefix}{k}", "model": "2pl", "a": float(x), "b": float(y)}
                           for k, (x, y) in enumerate(zip(a, b))])


@pytest.mark.reference
def test_robust_z_by_hand():
    """Round 1 links robustly: A = IQR(b_old) / IQR(b_new), B = median(b_old) - A median(b_new); then
    z = (d - median d) / (0.7413 IQR d) (Huynh & Meyer 2010), every quantile by numpy's linear rule."""
    b_old = np.linspace(-1.5, 1.5, 12)
    d = np.array([0.0, 0.01, -0.01, 0.005, -0.005, 0.002, -0.002, 0.008, -0.008, 0.003, -0.003, 1.0])
    b_new = (b_old + d - 0.3) / 1.2  # the new calibration on another scale: θ_new = (θ_old - 0.3) / 1.2
    a = np.full(12, 1.1)
    res = parameter_drift(_bank(a, b_old), _bank(a * 1.2, b_new), max_rounds=1)
    q_o, q_n = np.percentile(b_old, [25, 50, 75]), np.percentile(b_new, [25, 50, 75])
    big_a = (q_o[2] - q_o[0]) / (q_n[2] - q_n[0])
    big_b = q_o[1] - big_a * q_n[1]
    shift = big_a * b_new + big_b - b_old
    q1, med, q3 = np.percentile(shift, [25, 50, 75])
    assert res.A == pytest.approx(big_a) and res.B == pytest.approx(big_b)
    assert np.allclose(res.shift, shift) and np.allclose(res.robust_z, (shift - med) / (0.7413 * (q3 - q1)))
    assert res.flagged[-1] and res.robust_z[-1] > 5
    purified = parameter_drift(_bank(a, b_old), _bank(a * 1.2, b_new), threshold=2.5)
    assert purified.flagged.tolist() == [False] * 11 + [True] and purified.anchor.sum() == 11
    assert purified.A == pytest.approx(1.2, abs=0.03) and purified.B == pytest.approx(0.3, abs=0.03)


@pytest.mark.recovery
def test_power_and_false_flags_on_planted_shifts():
    """200 seeded replications: 40 items recalibrated with estimation noise (SE 0.08) on a new scale, 4 of
    them shifted by 0.5. Purified robust z at 1.96 finds the shifts and flags few stable items."""
    rng = np.random.default_rng(1)
    hits = false = 0
    for _ in range(200):
        b = rng.normal(size=40)
        a = np.exp(rng.normal(0.1, 0.25, 40))
        b_new = b + rng.normal(0, 0.08, 40)
        b_new[:4] += 0.5
        scale_a, scale_b = rng.uniform(0.8, 1.25), rng.normal(0, 0.3)
        res = parameter_drift(_bank(a, b), _bank(a * scale_a * np.exp(rng.normal(0, 0.05, 40)),
                                                 (b_new - scale_b) / scale_a), threshold=1.96)
        hits += res.flagged[:4].sum()
        false += res.flagged[4:].sum()
    power, false_rate = hits / 800, false / (200 * 36)
    assert power > 0.95
    assert false_rate < 0.08  # 1.96 on a robust z: a few percent of stable items


def test_displacement_needs_standard_errors_and_bad_input_is_named():
    b = np.linspace(-1, 1, 6)
    bank = _bank(np.ones(6), b)
    with pytest.raises(CalibrationError, match="needs standard errors of b from the new calibration"):
        parameter_drift(bank, bank, rule="displacement")
    with pytest.raises(CalibrationError, match="rule='z'"):
        parameter_drift(bank, bank, rule="z")
    with pytest.raises(CalibrationError, match="2 dichotomous item"):
        parameter_drift(bank, _bank(np.ones(2), b[:2]))


@pytest.mark.slow
def test_calibration_results_bring_displacement():
    import adaptive
    from adaptive.synthetic import simulate_responses, synthetic_bank

    true = synthetic_bank(25, model="2pl", rng=3)
    rng = np.random.default_rng(4)
    x1 = simulate_responses(true.compile(), rng.normal(size=3000), rng=5)
    shifted = ItemBank(items=[it.model_copy(update={"b": it.b + (0.8 if k < 2 else 0.0)})
                              for k, it in enumerate(true.items)])
    x2 = simulate_responses(shifted.compile(), rng.normal(0.3, 1.0, size=3000), rng=6)
    ids = list(true.ids)
    res = parameter_drift(adaptive.calibrate(x1, model="2pl", item_ids=ids),
                          adaptive.calibrate(x2, model="2pl", item_ids=ids), rule="displacement", threshold=3.0)
    assert res.flagged[:2].all() and res.flagged[2:].sum() <= 1
    assert np.isfinite(res.z_displacement).all() and "drift in b" in res.summary()


def test_drift_command(tmp_path, capsys):
    from adaptive.cli import main

    b = np.linspace(-1.5, 1.5, 20)
    _bank(np.ones(20), b).to_json(tmp_path / "old.json")
    shifted = b.copy()
    shifted[3] += 1.0
    _bank(np.ones(20), shifted).to_json(tmp_path / "new.json")
    assert main(["bank", "drift", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "--threshold", "2.5",
                 "--csv", str(tmp_path / "d.csv")]) == 0
    out = capsys.readouterr().out
    assert "1 item(s) drift in b" in out and "Q3" in out
    assert (tmp_path / "d.csv").read_text().startswith("item_id,b_old,b_new,shift,")
