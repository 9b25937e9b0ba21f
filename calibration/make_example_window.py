"""Write calibration/examples/cmcs_window_export.csv: one CMCS testing window as the service exports it.

240 simulated candidates take the CMCS adaptive exam (the bundled pool and design) over 30 days at six test
sites; planted among them (``adaptive.security.planted``): pre-knowledge of a leaked 10% of the items among
candidates who start after day 15, copiers, rapid guessers and proxy-like speed changes. The columns are those
of ``GET /api/v1/admin/responses?format=json`` that ``adaptive security`` reads: person, item, response,
option, seconds, answered_at, site, window; ``cmcs_leaked_items.txt`` lists the leaked items. The README's
security tour reads both. ``cmcs_pretest_window.csv`` holds 600 honest CMCS tests with their unscored pretest
answers (person, item, response) for the item-lifecycle commands. Seeded: rerunning
writes the same bytes (``--check`` verifies).

    python calibration/make_example_window.py [--check]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from adaptive import ExamDesign, ItemBank
from adaptive.security.planted import plant_cheating

HERE = Path(__file__).resolve().parent
OUT = HERE / "examples" / "cmcs_window_export.csv"
N_CANDIDATES, SEED = 240, 20261115
LEAKED = HERE / "examples" / "cmcs_leaked_items.txt"
PRETEST = HERE / "examples" / "cmcs_pretest_window.csv"
N_PRETEST_WINDOW = 600


def build() -> str:
    pool = HERE.parent / "item_pools" / "cmcs"
    bank = ItemBank.from_json(pool / "bank.json")
    design = ExamDesign.load(pool / "design.json")
    study = plant_cheating(design, bank, N_CANDIDATES, rng=SEED, site_size=50, window="2026-11", leak_day=15.0,
                           preknowledge=0.05, copiers=0.03, rapid=0.03, proxy=0.02)
    with tempfile.TemporaryDirectory() as tmp:
        path = study.records.to_csv(Path(tmp) / "export.csv", bank.ids)
        export = path.read_text(encoding="utf-8")
    leaked = "".join(f"{bank.ids[i]}\n" for i in range(len(bank.ids)) if study.leaked[i])
    return export, "# the CMCS items found posted online on 2026-11-15 (seeded example)\n" + leaked, _pretest(bank,
                                                                                                          design)


def _pretest(bank, design) -> str:
    """600 honest CMCS tests with their unscored pretest answers, as person,item,response rows."""
    import numpy as np

    from adaptive.answers import Records
    from adaptive.cat.posthoc import simulate_cat

    res = simulate_cat(design, bank, thetas=np.random.default_rng(SEED).normal(size=N_PRETEST_WINDOW), seed=SEED)
    rec = Records.from_cat(res, scored_only=False)
    rows = [f"{rec.person_ids[p]},{bank.ids[i]},{c}" for p, i, c in zip(rec.person, rec.item, rec.category,
                                                                          strict=True)]
    return "person,item,response\n" + "\n".join(rows) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="verify the file instead of writing it")
    args = p.parse_args()
    text, leaked, pretest = build()
    if args.check:
        same = all(f.exists() and f.read_text(encoding="utf-8") == t
                   for f, t in ((OUT, text), (LEAKED, leaked), (PRETEST, pretest)))
        print(f"{OUT}, {LEAKED.name}: {'up to date' if same else 'DIFFER: rerun without --check'}")
        return 0 if same else 1
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    LEAKED.write_text(leaked, encoding="utf-8")
    PRETEST.write_text(pretest, encoding="utf-8")
    print(f"wrote {OUT} ({N_CANDIDATES} candidates, {text.count(chr(10)) - 1} answers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
