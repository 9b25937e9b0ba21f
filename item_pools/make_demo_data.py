"""Regenerate the bundled demo data (seeded, exact): a synthetic 300-item CMCS bank and one
response file of 12 candidates on a 75-item reference form drawn from it.

    python item_pools/make_demo_data.py

Writes src/adaptive/data/cmcs_demo_bank.json, cmcs_demo_responses.csv and cmcs_demo_design.json
(the CMCS adaptive exam design: 40-75 items, MFI with randomesque 3, blueprint heuristic, 95%
classification rule, θ cut from 52 of 75 on the reference form).
The real CMCS bank (authored items with calibrated parameters) replaces this bank as the
default once it exists; this one is for demonstrating the scoring core.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from adaptive import Blueprint, ExamDesign, ItemBank
from adaptive.scoring import theta_for_raw_score
from adaptive.synthetic import CMCS_DOMAINS, allocate, simulate_responses, synthetic_bank

DATA = Path(__file__).resolve().parents[1] / "src" / "adaptive" / "data"
SEED = 20261124
FORM_LENGTH = 75


def main() -> None:
    rng = np.random.default_rng(SEED)
    bank = synthetic_bank(300, model="3pl", rng=rng, name="cmcs-demo")
    blueprint = Blueprint(domains=[{"name": d, "proportion": p, "source": "demo proportions"} for d, p in
                                   CMCS_DOMAINS.items()])
    bank = ItemBank(name="cmcs-demo", version="2026.1",
                    description="Synthetic 3PL bank tagged with the CMCS content domains (demo data, not real items).",
                    blueprint=blueprint, items=bank.items)
    DATA.mkdir(parents=True, exist_ok=True)
    bank.to_json(DATA / "cmcs_demo_bank.json")
    # reference form: items drawn per domain in blueprint proportion
    arrays = bank.compile()
    form = []
    for dom, count in zip(CMCS_DOMAINS, allocate(list(CMCS_DOMAINS.values()), FORM_LENGTH)):
        pool = np.flatnonzero(np.array([it.domain == dom for it in bank.items]))
        form += rng.choice(pool, size=int(count), replace=False).tolist()
    form = np.array(sorted(form))
    theta = rng.normal(0.3, 0.9, 12)
    x = simulate_responses(arrays.subset(form), theta, rng=rng)
    with (DATA / "cmcs_demo_responses.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["candidate"] + [bank.ids[i] for i in form])
        for n in range(theta.size):
            w.writerow([f"C{n + 1:03d}"] + [str(int(v)) for v in x[n]])
    # the adaptive exam: the pass standard "52 of 75 on the reference form" as a θ cut (inverse TCC)
    theta_cut = float(theta_for_raw_score(arrays.subset(form), 52))
    design = ExamDesign(
        name="CMCS adaptive exam (demo)",
        scale={"theta_cut": theta_cut, "scaled_cut": 300, "slope": 50, "minimum": 100, "maximum": 400},
        min_length=40, max_length=75,
        selection={"rule": "mfi"}, exposure={"randomesque": 3},
        content={"method": "heuristic"},
        stopping={"classification": {"z": 1.96}, "time_limit": 7200.0, "on_timeout": "score"},
    )
    design.to_json(DATA / "cmcs_demo_design.json")
    print(f"wrote {DATA / 'cmcs_demo_bank.json'} ({len(bank)} items), a {theta.size} x {form.size} response file "
          f"and the adaptive design (theta cut {theta_cut:.4f})")


if __name__ == "__main__":
    main()
