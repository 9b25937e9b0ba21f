"""A misspelled field in a bank, design, pass standard or study is refused with the field's place and the
field that was probably meant (one wording for every file, adaptive.fielderrors)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adaptive.bank import ItemBank
from adaptive.cat.design import ExamDesign
from adaptive.exceptions import BankValidationError, DesignError, ScoringError
from adaptive.fielderrors import fields_at
from adaptive.resources import pool_path
from adaptive.scoring.standard import PassStandard
from adaptive.simulation.study import load_study

ITEM = {"id": "A1", "model": "2pl", "a": 1.0, "b": 0.0}


def test_design_fields_misspelled_at_the_top_and_nested_are_all_named_with_a_suggestion():
    with pytest.raises(DesignError) as err:
        ExamDesign.from_dict({"max_lenght": 40, "stopping": {"se_treshold": 0.3}}, source="exam.json")
    text = str(err.value)
    assert text.startswith("exam.json: 2 problem(s)")
    assert "field 'max_lenght': unknown field; did you mean 'max_length'?" in text
    assert "field 'stopping.se_treshold': unknown field; did you mean 'se_target'?" in text
    assert text.count("exam.json") == 1  # reported once, not wrapped in a second "design:" message


def test_a_field_far_from_every_name_lists_the_fields_valid_there():
    with pytest.raises(DesignError) as err:
        ExamDesign.from_dict({"stopping": {"zzz": 1}}, source="d.json")
    assert "field 'stopping.zzz': unknown field; the fields here are" in str(err.value)
    assert "max_length" not in str(err.value).split("fields here are")[1]  # stopping's fields, not the design's
    assert "se_target" in str(err.value)


def test_design_loaded_from_a_file_names_the_file(tmp_path):
    p = tmp_path / "design.json"
    p.write_text(json.dumps({"min_lenght": 5}), encoding="utf-8")
    with pytest.raises(DesignError, match=r"design\.json: field 'min_lenght': unknown field; did you mean "
                                          r"'min_length'\?"):
        ExamDesign.load(p)
    p.write_text("", encoding="utf-8")
    with pytest.raises(DesignError, match="is not valid JSON"):
        ExamDesign.load(p)


def test_bank_item_and_top_level_misspellings():
    with pytest.raises(BankValidationError) as err:
        ItemBank(items=[ITEM, {**ITEM, "id": "A2", "domian": "x"}])
    assert "item 'A2' (position 1), field 'domian': unknown field; did you mean 'domain'?" in str(err.value)
    with pytest.raises(BankValidationError) as err:
        ItemBank(items=[ITEM], blueprnt={"domains": []})
    assert "field 'blueprnt': unknown field; did you mean 'blueprint'?" in str(err.value)


def test_pass_standard_misspelling(tmp_path):
    data = json.loads((pool_path("cmcs") / "standard.json").read_text(encoding="utf-8"))
    data["thetacut"] = data.pop("theta_cut")
    p = tmp_path / "standard.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ScoringError) as err:
        PassStandard.load(p)
    assert "field 'thetacut': unknown field; did you mean 'theta_cut'?" in str(err.value)
    assert "field 'theta_cut': Field required" in str(err.value)


def test_study_misspelling(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(f'seed = 1\n[bank]\npath = "{pool_path("cmcs").as_posix()}"\n[design]\nmax_length = 10\n'
                 "[simulees]\nn = 10\n[simulee]\nn = 5\n", encoding="utf-8")
    with pytest.raises(DesignError, match="field 'simulee': unknown field; did you mean 'simulees'?"):
        load_study(p)


def test_fields_at_walks_optional_models_lists_and_unknown_keys():
    item_fields = fields_at(ItemBank, ["items", 3])
    assert "domain" in item_fields and "items" not in item_fields
    assert fields_at(ItemBank, []) == sorted(ItemBank.model_fields)
    assert "min_length" in fields_at(ExamDesign, ["no-such-field"])  # an unknown place falls back to the model


def test_the_cli_shows_the_suggestion_without_a_traceback(tmp_path):
    design = tmp_path / "design.json"
    design.write_text(json.dumps({"max_lenght": 40}), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "adaptive", "demo", "--design", str(design)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "did you mean 'max_length'?" in run.stderr and str(design) in run.stderr
