"""The ``adaptive`` command: demo, score, bank check/schema; response-file reading."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from adaptive import ItemBank, estimate_ability
from adaptive.cat import ExamDesign
from adaptive.cli import demo_bank_path, demo_design_path, main
from adaptive.data_io import read_responses
from adaptive.synthetic import synthetic_bank


def test_demo_runs_the_adaptive_exam(capsys):
    design = ExamDesign.load(demo_design_path())
    assert main(["demo", "--seed", "5", "--theta", "1.5"]) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "CMCS-" in line]
    # scored items within the design's bounds, plus its unscored pretest items
    assert design.min_length + design.pretest_items <= len(steps) <= design.max_length + design.pretest_items
    assert "decision:       PASS" in out and "scaled score:" in out
    assert main(["demo", "--seed", "5", "--theta", "1.5"]) == 0
    assert capsys.readouterr().out == out  # seeded: the same transcript
    assert main(["demo", "--pool", "cmrs", "--seed", "5", "--theta", "-1.0"]) == 0
    out = capsys.readouterr().out
    assert "CMRS-" in out and "decision:       FAIL" in out


class _Candidate:
    """stdin of a candidate who reads the last question printed and answers it with its key."""

    def __init__(self, bank, lines=()):
        self.lines = list(lines)
        self.stems = {it.content.stem: it.content.key for it in bank.items if it.content}

    def readline(self):
        if self.lines:
            return self.lines.pop(0)
        shown = __import__("sys").stdout.getvalue()
        lines = shown[shown.rindex("Question "):].split("\n")[1:]  # the wrapped stem, then "  A. ..."
        stem = " ".join(line for line in lines[:next(k for k, x in enumerate(lines) if x.startswith("  A. "))])
        return self.stems[stem] + "\n"


def test_take_in_the_terminal(monkeypatch, capsys):
    bank = json.loads(demo_bank_path().read_text())
    from adaptive import ItemBank as _Bank

    cand = _Candidate(_Bank(**bank), lines=["maybe\n"])
    monkeypatch.setattr("sys.stdin", cand)
    assert main(["take", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "not an answer; try again" in out and "decision:       PASS" in out
    assert "your answer (A-D)" in out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("B\nq\n"))
    assert main(["take", "--seed", "3"]) == 1


def test_take_a_bank_without_item_text(tmp_path, monkeypatch, capsys):
    bank_path = tmp_path / "bank.json"
    synthetic_bank(200, pretest=0.1, rng=4).to_json(bank_path)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("maybe\n" + "1\n" * 80))
    assert main(["take", "--seed", "3", "--bank", str(bank_path)]) == 0
    out = capsys.readouterr().out
    assert "has no text in this bank" in out and "decision:       PASS" in out


def test_console_script_is_installed():
    exe = shutil.which("adaptive")
    cmd = [exe, "--version"] if exe else [sys.executable, "-m", "adaptive.cli", "--version"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert res.stdout.startswith("adaptive ")


def _write_wide(path, ids, x, persons):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["person", *ids])
        for pid, row in zip(persons, x):
            w.writerow([pid, *["" if np.isnan(v) else int(v) for v in row]])


def test_score_wide_and_long_files_agree_with_the_library(tmp_path, capsys):
    bank = ItemBank(items=[{"id": f"Q{k}", "model": "2pl", "a": 1.0 + 0.1 * k, "b": -1 + 0.5 * k} for k in range(5)])
    bank_path = tmp_path / "bank.json"
    bank.to_json(bank_path)
    x = np.array([[1, 0, 1, np.nan, 0], [1, 1, 1, 1, 0], [0, 0, np.nan, np.nan, 0]])
    wide = tmp_path / "wide.csv"
    _write_wide(wide, bank.ids, x, ["p1", "p2", "p3"])
    long = tmp_path / "long.csv"
    with long.open("w") as fh:
        fh.write("person,item,response\n")
        for pid, row in zip(["p1", "p2", "p3"], x):
            for iid, v in zip(bank.ids, row):
                if not np.isnan(v):
                    fh.write(f"{pid},{iid},{int(v)}\n")
    est = estimate_ability(bank, x, "wle")
    for src in (wide, long):
        out = tmp_path / f"est_{src.stem}.csv"
        assert main(["score", str(src), "--bank", str(bank_path), "--method", "wle", "--theta-cut", "0.0",
                     "--out", str(out)]) == 0
        with out.open() as fh:
            rows = list(csv.DictReader(fh))
        assert [r["person"] for r in rows] == ["p1", "p2", "p3"]
        np.testing.assert_allclose([float(r["theta"]) for r in rows], est.theta, rtol=1e-12)
    table = read_responses(long, bank)
    np.testing.assert_array_equal(np.isnan(table.for_bank(bank)), np.isnan(x))


def test_score_with_subscores_adds_each_domains_subscore(tmp_path, capsys):
    """--subscores on a pool directory: the library's vector EAP under the pool's subscore model, per domain."""
    from adaptive.resources import pool_path
    from adaptive.scoring.multidim import estimate_vector

    bank = ItemBank.load(pool_path("cmcs"))
    sub = bank.subscores.bank
    rng = np.random.default_rng(5)
    x = np.where(rng.random((4, len(bank))) < 0.5, (rng.random((4, len(bank))) < 0.6).astype(float), np.nan)
    src, out = tmp_path / "x.csv", tmp_path / "est.csv"
    _write_wide(src, bank.ids, x, ["a", "b", "c", "d"])
    assert main(["score", str(src), "--bank", str(pool_path("cmcs")), "--subscores", "--out", str(out)]) == 0
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    expected = estimate_vector(sub, x[:, [bank.index[i] for i in sub.item_ids]])
    for k, name in enumerate(sub.factor_names):
        np.testing.assert_allclose([float(r[name]) for r in rows], expected.theta[:, k], rtol=1e-12)
        np.testing.assert_allclose([float(r[f"{name} SE"]) for r in rows], expected.se[:, k], rtol=1e-12)
    assert main(["score", str(src), "--bank", str(pool_path("cmcs") / "bank.json"), "--subscores"]) == 2
    assert "no subscore model" in capsys.readouterr().err


def test_score_reports_bad_file_cleanly(tmp_path, capsys):
    bank = ItemBank(items=[{"id": "Q1", "a": 1.0, "b": 0.0}])
    bank_path = tmp_path / "bank.json"
    bank.to_json(bank_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("person,Q1,Q9\np1,1,0\n")
    assert main(["score", str(bad), "--bank", str(bank_path)]) == 2
    err = capsys.readouterr().err
    assert "Q9" in err


def test_bank_check_ok_and_broken(tmp_path, capsys):
    assert main(["bank", "check", str(demo_bank_path())]) == 0
    assert "OK" in capsys.readouterr().out
    data = json.loads(demo_bank_path().read_text())
    data["items"][1]["id"] = data["items"][0]["id"]
    data["items"][2]["a"] = -0.5
    data["items"][3]["domain"] = "Astrology"
    data["items"][4]["enemies"] = ["NO-SUCH-ITEM"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert main(["bank", "check", str(broken)]) == 1
    err = capsys.readouterr().out
    assert "4 problems" in err
    it = data["items"]
    assert f"item {it[0]['id']!r}" in err and "field 'id'" in err
    assert f"item {it[2]['id']!r} (position 2), field 'a'" in err
    assert f"item {it[3]['id']!r} (position 3), field 'domain'" in err
    assert f"item {it[4]['id']!r} (position 4), field 'enemies'" in err


def test_bank_schema(tmp_path):
    out = tmp_path / "schema.json"
    assert main(["bank", "schema", "--out", str(out)]) == 0
    schema = json.loads(out.read_text())
    assert schema["title"] == "ItemBank"


def test_missing_bank_file_message(capsys):
    assert main(["bank", "check", "/nonexistent/bank.json"]) == 1
    assert "bank file '/nonexistent/bank.json' does not exist" in capsys.readouterr().out
    assert main(["score", "x.csv", "--bank", "/nonexistent/bank.json"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_raw_cut_counts_on_the_pool_standards_reference_form(tmp_path, capsys):
    """Issue 21: `--raw-cut 52` on the CMCS pool is the pool's standard (52 of 75 on its reference form, θ cut
    0.3038 in standard.json), not 52 of the response file's 103 items; the derived cut is printed and --out
    carries every printed column."""
    import csv
    import json

    from adaptive.resources import pool_path

    pool = pool_path("cmcs")
    responses = Path(__file__).resolve().parents[1] / "calibration" / "examples" / "cmcs_responses.csv"
    out = tmp_path / "est.csv"
    assert main(["score", str(responses), "--bank", str(pool), "--raw-cut", "52", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    cut = json.loads((pool / "standard.json").read_text())["theta_cut"]
    assert f"raw cut 52 of 75 on the 75-item reference form of {pool / 'standard.json'} -> theta cut {cut:.4f}" in said
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["person", "raw", "n_answered", "theta", "se", "at_bound", "scaled", "p_pass", "decision"]
    for r in rows:  # the decision follows the standard's cut, and the scaled score agrees with it
        assert (r["decision"] == "pass") == (float(r["theta"]) >= cut - 5e-5)
        assert (int(r["scaled"]) >= 300) == (r["decision"] == "pass")
    # the file's own items, when that is what is meant, and said so
    assert main(["score", str(responses), "--bank", str(pool), "--raw-cut", "52", "--form", "responses"]) == 0
    assert "raw cut 52 of 97 on the response file's 97 items" in capsys.readouterr().out
    # a bank without a standard beside it needs --form
    bank = tmp_path / "bank.json"
    bank.write_text((pool / "bank.json").read_text())
    assert main(["score", str(responses), "--bank", str(bank), "--raw-cut", "52"]) == 2
    assert "--raw-cut needs the form it counts on" in capsys.readouterr().err
