"""`adaptive calibrate DATA.csv --model M --out OUT` end to end (wide and long files, JSON and CSV outputs)."""

from __future__ import annotations

import csv
import warnings

import numpy as np

from adaptive import ItemBank
from adaptive.cli import main
from adaptive.synthetic import simulate_responses, synthetic_bank


def _write_wide(path, x, ids):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["person"] + list(ids))
        for n, row in enumerate(x):
            w.writerow([f"P{n}"] + ["" if np.isnan(v) else str(int(v)) for v in row])


def _data(n=1500, missing=0.2):
    bank = synthetic_bank(12, model="2pl", rng=5)
    x = simulate_responses(bank.compile(), np.random.default_rng(6).standard_normal(n), rng=7, missing=missing)
    return bank, x


def test_cli_writes_a_bank_with_provenance(tmp_path, capsys):
    bank, x = _data()
    data = tmp_path / "resp.csv"
    _write_wide(data, x, bank.ids)
    out = tmp_path / "new.json"
    assert main(["calibrate", str(data), "--model", "2pl", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "EM cycle" in captured.err and "log-likelihood" in captured.out and "flags" in captured.out
    assert bank.ids[0] in captured.out
    new = ItemBank.from_json(out)
    assert new.ids == bank.ids
    prov = new.items[0].provenance
    assert prov.method.startswith("MML-EM 2pl") and prov.sample_size == int((~np.isnan(x[:, 0])).sum())
    assert np.corrcoef([it.a for it in new.items], bank.compile().a)[0, 1] > 0.9


def test_cli_long_file_and_parameter_table(tmp_path, capsys):
    bank, x = _data(missing=0.0)
    data = tmp_path / "long.csv"
    with open(data, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["person", "item", "response"])
        for n, row in enumerate(x):
            for iid, v in zip(bank.ids, row):
                w.writerow([f"P{n}", iid, int(v)])
    out = tmp_path / "params.csv"
    assert main(["calibrate", str(data), "--model", "3pl", "--prior", "c=beta(5, 17)", "--out", str(out),
                 "--quiet"]) == 0
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == list(bank.ids)
    assert list(rows[0])[:5] == ["id", "a", "b", "c", "d"] and float(rows[0]["c"]) > 0
    assert float(rows[0]["se_a"]) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the se_* columns are extra to the bank CSV format
        back = ItemBank.from_csv(out)
    assert back.items[0].model == "3pl"
    assert "priors: c ~ beta(5, 17)" in capsys.readouterr().out


def test_cli_reports_bad_data_clearly(tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text("Q1,Q2\n1,2\n0,1\n1,0\n")
    assert main(["calibrate", str(data), "--model", "2pl"]) == 2
    err = capsys.readouterr().err
    assert "item 'Q2' (2pl): response 2" in err and "graded" in err
    out = tmp_path / "x.txt"
    good = tmp_path / "good.csv"
    good.write_text("Q1,Q2\n1,0\n0,1\n1,1\n0,0\n")
    assert main(["calibrate", str(good), "--out", str(out), "--quiet", "--no-se", "--no-fit"]) == 2
    assert ".json" in capsys.readouterr().err


def _data_2d(tmp_path):
    rng = np.random.default_rng(8)
    theta = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], size=1200)
    a = np.zeros((10, 2))
    a[:5, 0], a[5:, 1] = rng.uniform(1, 2, 5), rng.uniform(1, 2, 5)
    x = (rng.random((1200, 10)) < 1 / (1 + np.exp(-(theta @ a.T + rng.normal(size=10))))).astype(float)
    ids = [f"Q{j}" for j in range(10)]
    _write_wide(tmp_path / "x.csv", x, ids)
    (tmp_path / "f.json").write_text('{"coding": ["Q0", "Q1", "Q2", "Q3", "Q4"], '
                                     '"billing": ["Q5", "Q6", "Q7", "Q8", "Q9"]}')
    return ids


def test_cli_confirmatory_and_exploratory_fits(tmp_path, capsys):
    _data_2d(tmp_path)
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", str(tmp_path / "f.json"), "--quiet",
                 "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "2-dimensional 2pl calibration" in out and "latent correlations" in out and "(SE" not in out.split(
        "slopes")[0]
    from adaptive.bank.multidim import MultidimBank

    bank = MultidimBank.read_json(tmp_path / "b.json")
    assert bank.factor_names == ("coding", "billing") and 0.2 < bank.latent_cov[0, 1] < 0.6
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", "2", "--rotate", "geomin", "--no-se",
                 "--quiet"]) == 0
    assert "geomin loadings" in capsys.readouterr().out


def test_cli_multidimensional_priors_and_fixed_items(tmp_path, capsys):
    """--prior and --fixed reach a --factors fit: a MAP fit, then the same data with half the items fixed at it."""
    ids = _data_2d(tmp_path)
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", str(tmp_path / "f.json"), "--prior",
                 "a=lognormal(0, 0.5)", "--no-se", "--quiet", "--out", str(tmp_path / "b.csv")]) == 0
    capsys.readouterr()
    from adaptive.bank.multidim import MultidimBank

    first = MultidimBank.read_csv(tmp_path / "b.csv", factor_names=("coding", "billing"))
    rows = [r for r in first.rows() if r["item_id"] in ids[:3] + ids[5:8]]
    MultidimBank.from_rows(rows, ("coding", "billing")).to_csv(tmp_path / "anchors.csv")
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", str(tmp_path / "f.json"), "--fixed",
                 str(tmp_path / "anchors.csv"), "--no-se", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "6 fixed items set the scale" in out and "latent means and SDs" in out
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", str(tmp_path / "f.json"), "--fixed",
                 str(tmp_path / "nope.json"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "nope.json" in err and "Traceback" not in err


def test_cli_two_tier_fit(tmp_path, capsys):
    """--factors FILE.json names the general tier, --bifactor FILE.json the specific factors."""
    _data_2d(tmp_path)
    (tmp_path / "s.json").write_text('{"Q0": "case1", "Q1": "case1", "Q5": "case1", "Q6": "case1", '
                                     '"Q2": "case2", "Q3": "case2", "Q7": "case2", "Q8": "case2"}')
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", str(tmp_path / "f.json"), "--bifactor",
                 str(tmp_path / "s.json"), "--no-se", "--quiet", "--out", str(tmp_path / "b.json")]) == 0
    assert "two-tier (2 general factors) EM" in capsys.readouterr().out
    from adaptive.bank.multidim import MultidimBank

    bank = MultidimBank.read_json(tmp_path / "b.json")
    assert bank.factor_names == ("coding", "billing", "case1", "case2") and 0.2 < bank.latent_cov[0, 1] < 0.6
    assert main(["calibrate", str(tmp_path / "x.csv"), "--factors", "2", "--bifactor", str(tmp_path / "s.json"),
                 "--quiet"]) != 0
    assert "general factors of a two-tier model" in capsys.readouterr().err


def test_cli_multidimensional_mistakes_get_one_line(tmp_path, capsys):
    _data_2d(tmp_path)
    data = str(tmp_path / "x.csv")
    for argv, message in [
        (["--factors", "nope"], "neither a number of factors nor a JSON file"),
        (["--factors", "2", "--out", str(tmp_path / "b.txt")], "end the name in .json"),
        (["--bifactor", str(tmp_path / "missing.json")], "--bifactor"),
        (["--factors", "11"], "use 1 to 10 factors"),
    ]:
        try:
            code = main(["calibrate", data, "--quiet", *argv])
        except SystemExit as stop:  # argparse's own usage errors
            code = stop.code
        err = capsys.readouterr().err
        assert code != 0 and message in err and "Traceback" not in err, (argv, err)
