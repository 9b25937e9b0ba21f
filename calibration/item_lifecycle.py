"""The item lifecycle on a simulated CMCS program: seed, calibrate online, promote, watch drift, retire, export.

1. A testing window: 12,000 candidates take the CMCS adaptive exam (the bundled pool and design); every test
   seeds 5 of the pool's pretest items, unscored.
2. The pretest items are calibrated online from those records (MEM with prior updates, 3PL with the c prior)
   and promoted where they have enough answers, small SEs and good fit; their old parameters go into history.
3. A later window recalibrates the operational pool; the drift check compares the two calibrations
   (displacement z from the new calibration's SEs, on a purified link) after two items were planted to get
   easier (a leak).
4. The drifting items are retired with the reason, and the new bank is exported as a QTI 3.0 package.

    python calibration/item_lifecycle.py --out out/lifecycle
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from adaptive import ExamDesign, ItemBank
from adaptive.answers import Records
from adaptive.bank.qti import export_qti
from adaptive.calibration.drift import parameter_drift
from adaptive.calibration.online import online_calibrate
from adaptive.calibration.promotion import promote, retire
from adaptive.cat.posthoc import simulate_cat

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=int, default=12000, help="candidates per window (default 12000)")
    p.add_argument("--out", default="out/lifecycle", help="output directory (default out/lifecycle)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool = HERE.parent / "item_pools" / "cmcs"
    bank = ItemBank.load(pool)
    design = ExamDesign.load(pool / "design.json")
    rng = np.random.default_rng(20261202)

    print("1. window 1: the CMCS exam with pretest items seeded")
    res = simulate_cat(design, bank, thetas=rng.normal(0.2, 1.0, args.candidates), seed=1)
    window1 = Records.from_cat(res, scored_only=False)
    print(f"   {window1.n_persons} candidates, {window1.n_records} answers")

    print("2. online calibration of the pretest items, and promotion")
    cal = online_calibrate(bank, window1, model="3pl", priors="3pl", method="MEM", prior_update="MWU")
    print(f"   {cal!r}")
    decision = promote(bank, cal, window1, min_n=800, max_se_a=0.35, max_se_b=0.35)
    print("   " + decision.summary().replace("\n", "\n   "))
    assert decision.bank is not None
    bank2 = decision.bank

    print("3. window 2: two operational items leak (they answer as if 1 logit easier); drift check")
    leaked = [it.id for it in bank2.items if it.status == "operational"][:2]
    answered_as = ItemBank(name=bank2.name, blueprint=bank2.blueprint,
                           items=[it.model_copy(update={"b": it.b - 1.0}) if it.id in leaked else it
                                  for it in bank2.items])
    no_pretest = design.model_copy(update={"pretest_items": 0})  # two pretest items are left: none are seeded now
    res2 = simulate_cat(no_pretest, bank2, thetas=rng.normal(0.2, 1.0, args.candidates), seed=2,
                        true_bank=answered_as)
    window2 = Records.from_cat(res2)
    from adaptive.calibration import calibrate

    x = window2.dense()
    used = np.flatnonzero(np.isfinite(x).sum(axis=0) >= 100)
    ids = [bank2.ids[j] for j in used]
    recal = calibrate(x[:, used], model="3pl", priors="3pl", item_ids=ids)
    drift = parameter_drift(ItemBank(items=[it.model_copy(update={"enemies": []}) for it in bank2.items
                                            if it.id in set(ids)]), recal, rule="displacement", threshold=3.0)
    print("   " + drift.summary().replace("\n", "\n   "))
    flagged = [i for i, f in zip(drift.item_id, drift.flagged, strict=True) if f]
    print(f"   planted: {leaked}; flagged: {flagged}")

    print("4. retire the drifting items and export the bank as QTI 3.0")
    bank3 = retire(bank2, flagged, "drift after window 2 (suspected leak)") if flagged else bank2
    bank3.to_json(out / "bank.json")
    export_qti(bank3, out / "cmcs_qti.zip")
    print(f"   wrote {out / 'bank.json'} and {out / 'cmcs_qti.zip'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
