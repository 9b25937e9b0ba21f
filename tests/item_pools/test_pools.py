"""The CMCS and CMRS item pools: authored items, calibrated banks, standards, designs, checks."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from adaptive import ItemBank
from adaptive.cat import ExamDesign, simulate_cat
from adaptive.cli import main, pool_path
from adaptive.exceptions import BankValidationError
from adaptive.pools import (
    build_pool,
    check_pool,
    load_authored_items,
    load_pool_config,
    pool_info,
    write_pool,
)
from adaptive.simulation import blueprint_conformance, classification
from adaptive.synthetic import synthetic_bank

ROOT = Path(__file__).resolve().parents[2]
POOLS = ROOT / "item_pools"
MINIMUM_ITEMS = {"cmcs": 60, "cmrs": 40}


def _items(pool):
    return tomllib.loads((POOLS / pool / "items.toml").read_text())["item"]


@pytest.mark.parametrize("pool", ["cmcs", "cmrs"])
def test_every_authored_item_is_well_formed(pool):
    cfg = load_pool_config(POOLS / pool)
    items = _items(pool)
    assert len(items) >= MINIMUM_ITEMS[pool]
    domains = set(cfg.blueprint.names)
    for it in items:
        opts = it["options"]
        assert len(opts) == 4, it["id"]
        assert len({o.strip().casefold() for o in opts}) == 4, it["id"]
        assert it["key"] in "ABCD", it["id"]
        assert it["domain"] in domains, it["id"]
        assert isinstance(it["code_set_year"], int) and 1990 <= it["code_set_year"] <= 2026, it["id"]
        assert it["code_set"].strip(), it["id"]
        assert it["cognitive_level"] in ("recall", "application", "analysis"), it["id"]
        assert len(it["rationale"]) > 20 and len(it["stem"]) > 20, it["id"]
    # every blueprint domain is covered by operational items, and every cognitive level is used
    for d in domains:
        assert sum(it["domain"] == d and it.get("status", "operational") == "operational" for it in items) >= 4, d
    assert {it["cognitive_level"] for it in items} == {"recall", "application", "analysis"}
    # the loader agrees (it is what the calibration script uses)
    assert len(load_authored_items(POOLS / pool / "items.toml", cfg.blueprint, 4)) == len(items)


def test_cmcs_covers_the_issue_domains():
    names = set(load_pool_config(POOLS / "cmcs").blueprint.names)
    assert names == {"ICD-10-CM", "CPT", "HCPCS Level II", "Modifiers", "Documentation", "Compliance"}
    cmrs = " ".join(load_pool_config(POOLS / "cmrs").blueprint.names).lower()
    for word in ("insurance verification", "claim", "medicare", "medicaid", "remittance", "denials", "coding",
                 "hipaa"):
        assert word in cmrs


def test_the_bank_carries_the_authored_content_and_provenance():
    bank = ItemBank.from_json(POOLS / "cmcs" / "bank.json")
    for rec in _items("cmcs"):
        it = bank.item(rec["id"])
        assert it.content.stem == rec["stem"] and it.content.options == rec["options"]
        assert it.content.key == rec["key"] and it.domain == rec["domain"]
        assert it.code_set_year == rec["code_set_year"] and it.status == rec.get("status", "operational")
        assert it.provenance.method.startswith("MML-EM 3PL") and "seed 20261124" in it.provenance.note
        assert 500 <= it.provenance.sample_size <= 4500


@pytest.mark.parametrize("pool", ["cmcs", "cmrs"])
def test_rerunning_the_calibration_reproduces_the_files_exactly(pool, tmp_path):
    build = build_pool(POOLS / pool)
    for new in write_pool(build, tmp_path):
        assert new.read_bytes() == (POOLS / pool / new.name).read_bytes(), new.name
        # the copy bundled with the package is the same file
        assert new.read_bytes() == (pool_path(pool) / new.name).read_bytes(), new.name


def test_field_test_recovery_is_what_the_design_supports():
    # 4500 simulees on three forms (about 1500-4500 answers per item), 3PL with c ~ Beta(6, 16):
    # slopes and difficulties recovered to about 0.15-0.25, asymptotes to about 0.06.
    rec = build_pool(POOLS / "cmcs").recovery()
    assert rec["a"]["rmse"] < 0.2 and rec["b"]["rmse"] < 0.3 and rec["c"]["rmse"] < 0.08
    assert all(abs(r["bias"]) < 0.06 for r in rec.values())


def _tcc(bank, ids, theta):
    """Expected number correct on items ``ids`` at ``theta``: the 3PL written out, independently of the package."""
    a = np.array([bank.item(i).a for i in ids])
    b = np.array([bank.item(i).b for i in ids])
    c = np.array([bank.item(i).c for i in ids])
    return float(np.sum(c + (1 - c) / (1 + np.exp(-a * (theta - b)))))


def test_cmcs_cut_is_52_of_75_on_the_reference_form():
    std = json.loads((POOLS / "cmcs" / "standard.json").read_text())
    bank = ItemBank.from_json(POOLS / "cmcs" / "bank.json")
    form = std["reference_form"]
    assert len(form) == 75 == len(set(form))
    assert all(bank.item(i).status == "operational" for i in form)
    # blueprint proportions on the form (largest remainder of 0.30/0.25/0.10/0.10/0.15/0.10 x 75)
    by_domain = {d: sum(bank.item(i).domain == d for i in form) for d in bank.blueprint.names}
    assert list(by_domain.values()) == [23, 19, 8, 7, 11, 7]
    cut = std["theta_cut"]
    assert _tcc(bank, form, cut) == pytest.approx(52.0, abs=5e-3)  # the cut is rounded to 4 decimals
    assert _tcc(bank, form, cut - 0.01) < 52.0 < _tcc(bank, form, cut + 0.01)
    design = ExamDesign.load(POOLS / "cmcs" / "design.json")
    assert design.theta_cut == cut and design.scale.scaled_cut == 300
    assert design.scale.to_scaled(cut) == 300 and design.scale.minimum == 100 and design.scale.maximum == 400


def test_cmrs_cut_is_85_percent_of_the_reference_form():
    std = json.loads((POOLS / "cmrs" / "standard.json").read_text())
    bank = ItemBank.from_json(POOLS / "cmrs" / "bank.json")
    form = std["reference_form"]
    assert len(form) == 40 and std["percent_cut"] == 85.0
    assert _tcc(bank, form, std["theta_cut"]) / 40 == pytest.approx(0.85, abs=1e-4)


@pytest.mark.parametrize("pool", ["cmcs", "cmrs"])
def test_both_pools_pass_bank_check(pool, capsys):
    bank, problems = check_pool(POOLS / pool)
    assert problems == [] and len(bank) == len(_items(pool))
    assert main(["bank", "check", str(POOLS / pool)]) == 0
    assert "OK" in capsys.readouterr().out


def _broken_copy(tmp_path):
    pool = tmp_path / "cmcs"
    shutil.copytree(POOLS / "cmcs", pool)
    data = json.loads((pool / "bank.json").read_text())
    it = data["items"]
    it[5]["id"] = it[4]["id"]                   # duplicate id
    it[7]["a"] = -1.2                           # bad parameter
    it[8]["c"] = 1.4                            # another bad parameter
    it[9]["domain"] = "Anatomy"                 # not a blueprint domain
    it[10]["enemies"] = ["CMCS-XXX-999"]         # enemy that does not exist
    (pool / "bank.json").write_text(json.dumps(data))
    return pool, it


def test_a_broken_copy_reports_every_problem_by_item_and_field(tmp_path, capsys):
    pool, it = _broken_copy(tmp_path)
    assert main(["bank", "check", str(pool)]) == 1
    out = capsys.readouterr().out
    assert "6 problems" in out  # c = 1.4 breaks two rules: c in [0, 1] and c < d
    assert f"item {it[4]['id']!r} (positions [4, 5]), field 'id': duplicate id" in out
    assert f"item {it[7]['id']!r} (position 7), field 'a'" in out
    assert f"item {it[8]['id']!r} (position 8), field 'c': must be in [0, 1], got 1.4" in out
    assert f"item {it[9]['id']!r} (position 9), field 'domain': 'Anatomy' is not a blueprint domain" in out
    assert f"item {it[10]['id']!r} (position 10), field 'enemies': refers to unknown item(s) ['CMCS-XXX-999']" in out


def test_pool_level_problems_are_reported(tmp_path):
    pool = tmp_path / "cmcs"
    shutil.copytree(POOLS / "cmcs", pool)
    data = json.loads((pool / "bank.json").read_text())
    data["items"][0]["b"] += 0.5                  # parameters changed after the standard was set
    del data["items"][1]["content"]["rationale"]  # content without a rationale
    data["items"][2].pop("code_set_year")          # a code set without its year
    # every Compliance item retired: the blueprint domain has no operational item and the design fails
    for rec in data["items"]:
        if rec["domain"] == "Compliance":
            rec["status"] = "retired"
    (pool / "bank.json").write_text(json.dumps(data))
    _, problems = check_pool(pool)
    text = "\n".join(problems)
    _, second, third = (data["items"][k]["id"] for k in range(3))
    assert f"item {second!r} (position 1), field 'content.rationale'" in text
    assert f"item {third!r} (position 2), field 'code_set_year'" in text
    assert "blueprint, domain 'Compliance': no operational item" in text
    assert "design.json: blueprint domain 'Compliance' needs at least 6 items" in text
    # item 0 is on the reference form: its new b moves the TCC, so the recorded cut is stale
    recorded = json.loads((POOLS / "cmcs" / "standard.json").read_text())["theta_cut"]
    assert f"standard.json, field 'theta_cut': {recorded}" in text
    assert len(problems) == 5, text


def test_authored_items_are_validated_by_item_and_field(tmp_path):
    text = (POOLS / "cmrs" / "items.toml").read_text()
    bad = re.sub(r'key = "[A-D]"\nrationale = "270/271', 'key = "E"\nrationale = "270/271', text, count=1)
    bad = bad.replace('options = ["UB-04", "ADA dental claim form", "CMS-R-131", "CMS-1500"]',
                      'options = ["UB-04", "CMS-1500", "CMS-R-131", "CMS-1500"]', 1)
    bad = bad.replace('domain = "Denials and appeals"', 'domain = "Anatomy"', 1)
    path = tmp_path / "items.toml"
    path.write_text(bad)
    cfg = load_pool_config(POOLS / "cmrs")
    with pytest.raises(BankValidationError) as err:
        load_authored_items(path, cfg.blueprint, 4)
    msg = str(err.value)
    assert "item 'CMRS-ELG-001' (position 0), field 'key'" in msg
    assert "item 'CMRS-CLM-001' (position 6), field 'options': options must be distinct" in msg
    assert "item 'CMRS-DEN-001', field 'domain': 'Anatomy' is not a blueprint domain" in msg


def test_seeded_cmcs_simulation_meets_the_blueprint_in_every_test():
    bank = ItemBank.from_json(POOLS / "cmcs" / "bank.json")
    design = ExamDesign.load(POOLS / "cmcs" / "design.json")
    theta = np.random.default_rng(20261124).normal(0.0, 1.0, 2000)
    res = simulate_cat(design, bank, thetas=theta, seed=20261124)
    assert blueprint_conformance(res, bank).all()
    assert res.n_items.min() >= design.min_length and res.n_items.max() <= design.max_length
    # every test carries exactly the design's pretest items, all from the pretest pool
    pre = (res.sequence >= 0) & ~res.scored
    assert np.all(pre.sum(axis=1) == design.pretest_items)
    status = np.array([it.status for it in bank.items])
    assert np.all(status[res.sequence[pre]] == "pretest")
    # no test holds both items of an enemy pair (all 2,000 tests, every pair)
    given = np.zeros((len(res), len(bank)), dtype=bool)
    rows, steps = np.nonzero(res.sequence >= 0)
    given[rows, res.sequence[rows, steps]] = True
    pairs = bank.compile().enemy_pairs
    assert pairs.shape[0] == 7 and not np.any(given[:, pairs[:, 0]] & given[:, pairs[:, 1]])
    # pass rate as documented in item_pools/README.md (10,000 simulees there; 2,000 here)
    c = classification(res.decision, theta, design.theta_cut)
    assert abs(c.pass_rate - c.true_pass_rate) < 0.03 and c.accuracy > 0.88


def test_bank_info_counts_and_draws_the_information_curve(tmp_path, capsys):
    info = pool_info(POOLS / "cmcs")
    assert info.counts["ICD-10-CM"] == {"operational": 29, "pretest": 1}
    assert sum(sum(c.values()) for c in info.counts.values()) == len(info.bank)
    # the pool's information is the sum of the 3PL item informations (Lord 1980, eq. 5.9 with D = 1)
    bank = info.bank
    op = [it for it in bank.items if it.status == "operational"]
    t = 0.3
    p = np.array([it.c + (1 - it.c) / (1 + np.exp(-it.a * (t - it.b))) for it in op])
    a, c = np.array([it.a for it in op]), np.array([it.c for it in op])
    expected = np.sum(a**2 * (1 - p) / p * ((p - c) / (1 - c)) ** 2)
    k = int(np.argmin(np.abs(info.theta - t)))
    assert info.theta[k] == pytest.approx(t) and info.information[k] == pytest.approx(expected, rel=1e-10)
    png = tmp_path / "tic.png"
    assert main(["bank", "info", str(POOLS / "cmcs"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "ICD-10-CM" in out and "97" in out and "theta cut 0.3038" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_synthetic_large_bank_follows_a_pool_blueprint():
    bp = load_pool_config(POOLS / "cmcs").blueprint
    bank = synthetic_bank(2000, blueprint=bp, pretest=0.1, rng=20261124, prefix="SYN")
    assert len(bank) == 2000 and bank.blueprint == bp
    by_dom = {d.name: sum(it.domain == d.name for it in bank.items) for d in bp.domains}
    assert by_dom == {d.name: round(2000 * d.proportion) for d in bp.domains}
    assert sum(it.status == "pretest" for it in bank.items) == 200
    arr = bank.compile()
    # the generator's distributions: log a ~ N(log 1.1, 0.3), b ~ N(-0.2, 1), c ~ Beta(5, 17)
    assert np.mean(np.log(arr.a)) == pytest.approx(np.log(1.1), abs=0.03)
    assert np.mean(arr.thresholds[:, 0]) == pytest.approx(-0.2, abs=0.07)
    assert np.mean(arr.c) == pytest.approx(5 / 22, abs=0.01)
    # the same seed gives the same bank
    assert synthetic_bank(2000, blueprint=bp, pretest=0.1, rng=20261124, prefix="SYN") == bank
