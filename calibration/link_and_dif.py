"""Link two separate calibrations, then screen items for DIF.

    python calibration/link_and_dif.py
"""

from __future__ import annotations

import numpy as np

import adaptive
from adaptive.calibration import dif_logistic, dif_mantel_haenszel, link
from adaptive.synthetic import simulate_responses, synthetic_bank


def main(seed=11):
    bank = synthetic_bank(40, model="2pl", rng=seed)
    rng = np.random.default_rng(seed + 1)
    old = simulate_responses(bank.compile(), rng.standard_normal(3000), rng=seed + 2)
    new = simulate_responses(bank.compile(), 0.5 + 1.2 * rng.standard_normal(3000), rng=seed + 3)
    fit_old = adaptive.calibrate(old, model="2pl", item_ids=bank.ids, name="old form")
    fit_new = adaptive.calibrate(new, model="2pl", item_ids=bank.ids, name="new form")  # its own N(0, 1) scale
    print("putting the new calibration on the old scale (true A = 1.2, B = 0.5):")
    for method in ("mean-mean", "mean-sigma", "haebara", "stocking-lord"):
        r = link(fit_new, fit_old, method=method)
        print(f"  {method:14s} A = {r.A:.3f}  B = {r.B:.3f}")
    # DIF: the focal group finds item 3 harder at equal ability
    theta = rng.standard_normal(6000)
    group = np.where(np.arange(6000) < 3000, "reference", "focal")
    arr = bank.compile()
    p = 1 / (1 + np.exp(-arr.a * (theta[:, None] - arr.thresholds[:, 0] - 0.8 * (group == "focal")[:, None]
                                  * (np.arange(40) == 3))))
    x = (rng.random(p.shape) < p).astype(float)
    print("\nMantel-Haenszel DIF (items not in class A):")
    for row in dif_mantel_haenszel(x, group, focal="focal", reference="reference", item_ids=bank.ids):
        if row["ets"] != "A":
            print(f"  {row['item_id']}: MH D-DIF {row['delta_mh']:.2f} (SE {row['se_delta']:.2f}), class {row['ets']}")
    lr = dif_logistic(x, group, focal="focal", reference="reference", item_ids=bank.ids)
    print(f"logistic regression: {int((lr.p_total < 0.01).sum())} item(s) with p < .01 (2 df); item "
          f"{lr.item_id[3]} delta R2 {lr.delta_r2[3]:.3f} class {lr.dif_class[3]}")


if __name__ == "__main__":
    main()
