"""Classical item analysis against a hand-computed example, a planted miskey, and adaptive data."""

import math

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.answers import Records, read_records
from adaptive.calibration.classical import item_analysis
from adaptive.exceptions import ResponseValidationError
from adaptive.synthetic import simulate_responses, synthetic_bank

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def three_items():
    return synthetic_bank(3, model="2pl", rng=1)


@pytest.mark.reference
def test_hand_computed_fixed_form(three_items):
    """Six candidates, three items keyed A, B, C. By hand: p = 2/3, 1/2, 1/3; KR-20 = 3/2 (1 - (25/36)/(11/12))
    = 4/11; item 1's corrected point-biserial with the rest score = (1/9) / sqrt((2/9)(17/36)) = 2/sqrt(34);
    Kelley groups (27%/73% quantiles of the totals 3,2,2,1,1,0 are 1 and 2): upper = the three with 2 or 3,
    lower = the three with 0 or 1, so item 1 has p_upper 1, p_lower 1/3."""
    chosen = ["ABC", "ABD", "ACC", "BBD", "ADA", "CAD"]
    keys = "ABC"
    opt = np.array([[ord(c) - 65 for c in row] for row in chosen], dtype=float)
    x = np.array([[float(c == k) for c, k in zip(row, keys)] for row in chosen])
    res = item_analysis(three_items, Records.from_matrix(three_items, x, options=opt))
    assert res.criterion == "rest score"
    assert np.allclose(res.items.p_value, [2 / 3, 1 / 2, 1 / 3])
    assert res.alpha == pytest.approx(4 / 11, abs=1e-12)
    assert res.sem == pytest.approx(math.sqrt(11 / 12) * math.sqrt(1 - 4 / 11), abs=1e-12)
    assert res.items.r[0] == pytest.approx(2 / math.sqrt(34), abs=1e-12)
    assert res.items.r[2] == pytest.approx(2 / math.sqrt(34), abs=1e-12)
    assert res.items.p_upper[0] == 1.0 and res.items.p_lower[0] == pytest.approx(1 / 3)
    assert res.items.key_option == ("A", "B", "C")
    first = [r for r in res.options if r["item_id"] == three_items.items[0].id]
    assert [(r["option"], r["n"], r["is_key"]) for r in first] == [("A", 4, True), ("B", 1, False), ("C", 1, False)]
    # option B of item 1 (chosen by candidate 4, rest score 1): its point-biserial by hand
    rest = np.array([2, 1, 1, 1, 0, 0.0])
    ind = np.array([0, 0, 0, 1, 0, 0.0])
    want = ((ind * rest).mean() - ind.mean() * rest.mean()) / math.sqrt(ind.var() * rest.var())
    assert first[1]["r"] == pytest.approx(want, abs=1e-12)


def test_a_miskeyed_item_and_a_dead_distractor_are_flagged():
    bank = synthetic_bank(30, model="2pl", rng=4)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=3000)
    x = simulate_responses(bank.compile(), theta, rng=6)
    opt = np.where(x == 1, 0, rng.integers(1, 4, size=x.shape)).astype(float)  # key A; wrong: B, C, D
    opt[:, 5] = np.where(x[:, 5] == 1, 0, rng.choice([1, 2], size=3000))    # item 6: D never chosen
    # item 3 scored with the wrong key: B is scored right, the true key A wrong
    x[:, 2] = (opt[:, 2] == 1).astype(float)
    res = item_analysis(bank, Records.from_matrix(bank, x, options=opt))
    flags = dict(zip(res.items.item_id, res.items.flags))
    assert "miskey?" in flags[bank.items[2].id] and "negative discrimination" in flags[bank.items[2].id]
    # a bank without authored content: options are those chosen, so the never-chosen D is not listed
    assert "non-functioning distractor D" not in flags[bank.items[5].id]
    assert sum("miskey" in f for f in res.items.flags) == 1
    assert len(res.flagged()) >= 1 and "flagged" in res.summary()


def test_adaptive_export_uses_theta(tmp_path):
    bank = ItemBank.load(ROOT / "item_pools" / "cmcs")
    rec = read_records(ROOT / "calibration" / "examples" / "cmcs_window_export.csv", bank)
    res = item_analysis(bank, rec)
    assert res.criterion == "theta" and math.isnan(res.alpha)
    assert res.items.n.sum() == rec.n_records
    assert np.nanmedian(res.items.r) > 0.1  # items correlate with ability
    per_item = {}
    for r in res.options:
        per_item.setdefault(r["item_id"], []).append(r["option"])
    assert all(v == ["A", "B", "C", "D"] for v in per_item.values())  # the pool's items offer four options
    text = res.items.to_csv()
    assert text.startswith("item_id,n,p_value,r,")


def test_nothing_to_analyse(three_items):
    with pytest.raises(ResponseValidationError, match="no answers"):
        item_analysis(three_items, np.full((2, 3), np.nan))


def test_analyze_command_end_to_end(tmp_path, capsys):
    from adaptive.cli import main

    export = ROOT / "calibration" / "examples" / "cmcs_window_export.csv"
    out = tmp_path / "items.html"
    assert main(["analyze", str(export), "--bank", str(ROOT / "item_pools" / "cmcs"), "--out", str(out), "--csv",
                 str(tmp_path / "t"), "--show", "3"]) == 0
    printed = capsys.readouterr().out
    assert "240 candidates" in printed and f"wrote {out}" in printed
    page = out.read_text()
    assert "Option trace lines" in page and "data:image/png;base64," in page
    assert (tmp_path / "t" / "options.csv").read_text().startswith("item_id,option,is_key,")
    wide = ROOT / "calibration" / "examples" / "cmcs_responses.csv"
    assert main(["analyze", str(wide), "--bank", str(ROOT / "item_pools" / "cmcs"), "--no-plots"]) == 0
    assert "coefficient alpha 0.92" in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "nope.csv"), "--bank", str(ROOT / "item_pools" / "cmcs")]) != 0
    assert "Traceback" not in capsys.readouterr().err
