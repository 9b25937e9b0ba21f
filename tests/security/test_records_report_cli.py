"""Records from the service export, the window report, and ``adaptive security`` end to end (service on SQLite)."""

import csv
import json

import numpy as np
import pytest

from adaptive.cli import main
from adaptive.exceptions import ResponseValidationError
from adaptive.security import Records, read_records
from adaptive.security.report import analyse, write_html
from adaptive.synthetic import synthetic_bank
from tests.service.conftest import ADMIN_KEY
from tests.service.helpers import API, answer, keyed_choice

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def small_bank():
    return synthetic_bank(6, model="2pl", rng=1)


def test_rows_are_read_with_every_field(small_bank):
    ids = [it.id for it in small_bank.items]
    rows = [{"person": "s1", "item": ids[0], "response": 1, "option": "C", "seconds": "31.5",
             "answered_at": "2026-11-20T10:00:00Z", "site": "Denver", "window": "2026-11"},
            {"person": "s1", "item": ids[1], "response": "0", "option": 2, "seconds": None, "answered_at": 1.8e9},
            {"person": "s2", "item": ids[0], "response": 0, "pretest": True},
            {"person": "s2", "item": ids[2], "response": 0, "option": "", "site": "Austin"}]
    rec = Records.from_rows(small_bank, rows)
    assert rec.person_ids == ("s1", "s2") and rec.n_records == 3  # the pretest answer is left out
    assert rec.option.tolist() == [2, 2, -1] and rec.category.tolist() == [1, 0, 0]
    assert rec.seconds[0] == 31.5 and np.isnan(rec.seconds[1])
    assert rec.answered_at[0] == 1795168800.0 and rec.answered_at[1] == 1.8e9
    assert rec.site == ("Denver", "Austin") and rec.window == ("2026-11", "")
    assert Records.from_rows(small_bank, rows, include_pretest=True).n_records == 4


@pytest.mark.parametrize("row,message", [
    ({"person": "p", "item": "NOPE", "response": 1}, "row 1, field 'item': 'NOPE' is not in bank"),
    ({"person": "p", "response": 1}, "row 1: field(s) item missing"),
    ({"person": "p", "item": "ITEM", "response": 1.5}, "row 1, field 'response': 1.5 is not a category"),
    ({"person": "p", "item": "ITEM", "response": 1, "seconds": "-3"}, "field 'seconds': '-3' is negative"),
    ({"person": "p", "item": "ITEM", "response": 1, "option": "AB"}, "field 'option': 'AB' is not an option"),
    ({"person": "p", "item": "ITEM", "response": 1, "answered_at": "yesterday"}, "'answered_at': 'yesterday' is "),
    ({"person": "p", "item": "ITEM", "response": 3}, "category 3 but the item has 2"),
])
def test_bad_rows_are_named(small_bank, row, message):
    row = {k: (small_bank.items[0].id if v == "ITEM" else v) for k, v in row.items()}
    with pytest.raises(ResponseValidationError) as err:
        Records.from_rows(small_bank, [row], source="export.json")
    assert message in str(err.value) and "export.json" in str(err.value)


def test_files_json_and_csv(small_bank, tmp_path):
    ids = [it.id for it in small_bank.items]
    (tmp_path / "a.json").write_text(json.dumps([{"person": "p", "item": ids[0], "response": 1}]))
    assert read_records(tmp_path / "a.json", small_bank).n_records == 1
    (tmp_path / "b.csv").write_text(f"person,item,response,seconds\np,{ids[0]},1,12\np,{ids[1]},0,\n")
    rec = read_records(tmp_path / "b.csv", small_bank)
    assert rec.n_records == 2 and rec.seconds[0] == 12
    (tmp_path / "c.csv").write_text("who,item,response\n")
    with pytest.raises(ResponseValidationError, match="lacks column"):
        read_records(tmp_path / "c.csv", small_bank)
    (tmp_path / "d.json").write_text("[{")
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        read_records(tmp_path / "d.json", small_bank)
    (tmp_path / "e.json").write_text("[]")
    with pytest.raises(ResponseValidationError, match="no scored answers"):
        read_records(tmp_path / "e.json", small_bank)


@pytest.mark.slow
def test_window_report_flags_what_was_planted(planted, cat_bank, cmcs_design, tmp_path):
    rep = analyse(cat_bank, planted.records, compromised=np.flatnonzero(planted.leaked), design=cmcs_design,
                  null_simulees=1000)
    c = rep.candidates
    flagged = c.flagged()
    label = planted.label
    assert np.mean(flagged[label == "rapid"]) == 1.0
    assert np.mean(flagged[label == "preknowledge"]) > 0.6
    assert np.mean(flagged[label == "proxy"]) > 0.3
    assert np.mean(flagged[label == "honest"]) < 0.08  # four statistics at 1% each, plus similarity
    assert rep.person_fit.reference.startswith("adaptive simulation")
    assert "rapid guessing" in rep.summary()
    path = write_html(rep, tmp_path / "r.html", title="CMCS window 2026-11")
    text = path.read_text()
    assert "CMCS window 2026-11" in text and "Flagged candidates" in text and "data:image/png;base64," in text
    assert text.count("<img") >= 4


def _take(client, bank, code, pattern):
    s = client.post(f"{API}/launch", json={"code": code})
    assert s.status_code == 200, s.text
    s = s.json()
    headers = {"Authorization": f"Bearer {s['token']}"}
    item, step = s["item"], 0
    while item is not None:
        r = answer(client, s["session_id"], headers, item, keyed_choice(bank, item, pattern(step)))
        assert r.status_code == 200, r.text
        ack = r.json()
        item = None if ack["finished"] else ack["next"]
        step += 1
    return s["session_id"]


@pytest.mark.slow
def test_service_export_to_security_report(make_client, cmcs_bank, cmcs_pool, tmp_path, capsys):
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", practice=False)
    for k in range(6):
        e = client.post(f"{API}/admin/eligibilities", headers=ADMIN,
                        json={"candidate_id": f"C-{k}", "site": "Denver" if k < 3 else "Austin"}).json()
        _take(client, cmcs_bank, e["launch_code"], lambda step, k=k: (step + k) % 3 != 0)
    r = client.post(f"{API}/admin/eligibilities", headers=ADMIN, json={"candidate_id": "C-x", "site": "\x00"})
    assert r.status_code == 422 and "site" in r.text
    rows = client.get(f"{API}/admin/responses", headers=ADMIN, params={"format": "json"}).json()
    assert {"candidate", "site", "window", "answered_at", "option", "seconds"} <= set(rows[0])
    assert {r["site"] for r in rows} == {"Denver", "Austin"} and rows[0]["window"].count("/") == 1
    export = tmp_path / "responses.json"
    export.write_text(json.dumps(rows))
    out = tmp_path / "report.html"
    code = main(["security", str(export), "--bank", str(cmcs_pool), "--out", str(out), "--csv", str(tmp_path / "t"),
                 "--null-simulees", "200"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "6 candidates" in printed.out and f"wrote {out}" in printed.out
    table = list(csv.DictReader((tmp_path / "t" / "candidates.csv").open()))
    assert len(table) == 6 and {r["site"] for r in table} == {"Denver", "Austin"}
    assert {r["candidate"] for r in table} == {f"C-{k}" for k in range(6)}  # the eligibility's id, per session
    assert "Security report" in out.read_text()
    # the same export through the classical item analysis (raw choices -> distractors)
    assert main(["analyze", str(export), "--bank", str(cmcs_pool), "--out", str(tmp_path / "items.html")]) == 0
    assert "6 candidates" in capsys.readouterr().out and (tmp_path / "items.html").stat().st_size > 0


def test_cli_mistakes_get_one_line(tmp_path, capsys, cmcs_pool):
    export = tmp_path / "x.json"
    export.write_text(json.dumps([{"person": "p", "item": "NOPE", "response": 1}]))
    assert main(["security", str(export), "--bank", str(cmcs_pool)]) != 0
    err = capsys.readouterr().err
    assert "'NOPE' is not in bank" in err and "Traceback" not in err
    assert main(["security", str(tmp_path / "missing.json"), "--bank", str(cmcs_pool)]) != 0
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["security", str(export), "--bank", str(cmcs_pool), "--alpha", "2"])
    assert "not a false-positive rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["security", str(export), "--bank", str(cmcs_pool), "--after", "last week"])
    assert "is not a date" in capsys.readouterr().err
