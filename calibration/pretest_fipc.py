"""Fixed-parameter calibration (FIPC) of pretest items against an operational bank.

The operational items keep their bank parameters; the pretest items are estimated on the same scale, and the
new population's latent mean and SD are estimated with them (multiple EM cycles update the prior).

    python calibration/pretest_fipc.py
"""

from __future__ import annotations

import numpy as np

import adaptive
from adaptive import ItemBank
from adaptive.synthetic import simulate_responses, synthetic_bank


def main(seed=7):
    bank = synthetic_bank(60, model="2pl", rng=seed)  # 45 operational + 15 pretest items
    operational = ItemBank(items=bank.items[:45], blueprint=None)
    theta = 0.4 + 1.1 * np.random.default_rng(seed + 1).standard_normal(4000)  # a stronger, wider cohort
    x = simulate_responses(bank.compile(), theta, rng=seed + 2, missing=0.3)
    res = adaptive.calibrate(x, model="2pl", fixed=operational, item_ids=bank.ids, name="pretest")
    print(res.summary(fit=False))
    est, true = res.thresholds[45:, 0], bank.compile().thresholds[45:, 0]
    print(f"\nlatent mean {res.latent[0, 0]:.3f} (true 0.4), SD {res.latent[0, 1]:.3f} (true 1.1)")
    print(f"pretest items: RMSE b {np.sqrt(np.mean((est - true) ** 2)):.3f} on the operational scale")


if __name__ == "__main__":
    main()
