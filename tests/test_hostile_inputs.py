"""Hostile inputs to the library's entry points (issue 17): whatever arrives, only the project's typed errors
come out (never a TypeError, an AttributeError, a RecursionError, an OverflowError or a MemoryError), with
the bounds that keep resources finite. Hypothesis strategies plus hand-written cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import adaptive
from adaptive import AdaptiveError, BankValidationError, DesignError, ItemBank, SessionStateError
from adaptive.cat import ExamDesign, Session
from adaptive.data_io import read_responses
from adaptive.simulation.study import StudyConfig
from adaptive.synthetic import synthetic_bank

# JSON-like values of every shape, including numbers no float holds and deep nesting
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400), st.floats(allow_nan=True),
                    st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=20)
item_like = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(max_size=6), st.integers()), "model": st.sampled_from(["2pl", "GRM", "3pl", "x", 5]),
    "a": st.one_of(st.floats(allow_nan=True), st.integers(-10**400, 10**400), st.text(max_size=3)),
    "b": st.one_of(st.floats(allow_nan=True), st.none()), "thresholds": st.lists(st.floats(allow_nan=True), max_size=3),
    "c": st.floats(allow_nan=True), "domain": st.one_of(st.text(max_size=5), st.integers()),
    "enemies": json_values})


@given(st.one_of(json_values, st.fixed_dictionaries({"items": st.lists(st.one_of(item_like, json_values),
                                                                                  max_size=4)},
                                                     optional={"blueprint": json_values, "scaling": scalars})))
@example({"items": [{"enemies": [[]]}]})  # found by this test: a list where an enemy id belongs was a TypeError
@example({"items": [{"id": "a", "a": 1, "b": 0, "domain": [1]}], "blueprint": {"domains": [{"name": "x"}]}})
def test_any_bank_input_gives_a_bank_or_a_bank_error(data):
    try:
        ItemBank.from_dict(data)
    except BankValidationError as err:
        assert str(err)


@given(json_values)
def test_any_design_input_gives_a_design_or_a_design_error(data):
    try:
        ExamDesign.from_dict(data)
    except DesignError as err:
        assert str(err)


@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps)))
@settings(max_examples=40)
def test_any_stored_session_text_resumes_or_is_refused(text):
    bank = synthetic_bank(30, model="2pl", rng=1)
    design = ExamDesign(min_length=3, max_length=5, content={"method": "none"})
    try:
        Session.from_json(text, design, bank)
    except SessionStateError as err:
        assert str(err)


@given(st.binary(max_size=300))
@settings(max_examples=40)
def test_any_response_file_is_read_or_refused(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("resp") / "r.csv"
    path.write_bytes(raw)
    try:
        read_responses(path)
    except AdaptiveError as err:
        assert str(path) in str(err) or "responses" in str(err) or "line" in str(err)


def test_deep_nesting_is_refused_with_the_file(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    p = tmp_path / "bank.json"
    p.write_text('{"items": ' + deep + "}")
    with pytest.raises(BankValidationError, match="bank.json"):
        ItemBank.from_json(p)
    d = tmp_path / "design.json"
    d.write_text(deep)
    with pytest.raises(DesignError, match="nested too deeply|design"):
        ExamDesign.load(d)
    with pytest.raises(SessionStateError):
        Session.from_json(deep, ExamDesign(), synthetic_bank(40, model="2pl", rng=1))
    with pytest.raises(DesignError, match="a design must be a JSON/TOML object"):
        ExamDesign.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize("call, error", [
    (lambda b: adaptive.estimate_ability(b, [[1, 0]], "eap", grid=(-6, 6, 10**8)), AdaptiveError),
    (lambda b: adaptive.calibrate(np.ones((5, 2)), quadrature=10**8), AdaptiveError),
    (lambda b: StudyConfig.model_validate({"name": "x", "simulees": {"n": 10**12}}), ValueError),
    (lambda b: ExamDesign(estimator={"grid": (-6, 6, 10**8)}), DesignError),
    (lambda b: ExamDesign(start={"theta": 1e308}), DesignError),
    (lambda b: ExamDesign(estimator={"prior_mean": 1e308}), DesignError),
    (lambda b: ExamDesign(scale={"theta_cut": 50.0}), DesignError),
    (lambda b: ExamDesign(scale={"theta_cut": 4.5}), DesignError),  # outside the estimator's bounds (±4)
    (lambda b: ItemBank(items=[{"id": "Q", "a": 1e308, "b": 0.0}]), BankValidationError),
    (lambda b: ItemBank(items=[{"id": "Q", "a": 1.0, "b": 0.0}], scaling=float("inf")), BankValidationError),
])
def test_sizes_and_values_beyond_the_bounds_are_refused_before_any_work(call, error):
    bank = ItemBank(items=[{"id": "Q1", "a": 1.0, "b": 0.0}, {"id": "Q2", "a": 1.2, "b": 0.5}])
    with pytest.raises(error):
        call(bank)


def test_a_semicolon_file_is_read_and_a_duplicated_column_refused(tmp_path):
    bank = ItemBank(items=[{"id": "Q1", "a": 1.0, "b": 0.0}, {"id": "Q2", "a": 1.2, "b": 0.5}])
    semi = tmp_path / "semi.csv"
    semi.write_text("person;Q1;Q2\nA;1;0\nB;0;1\n", encoding="utf-8")
    table = read_responses(semi, bank)
    np.testing.assert_array_equal(table.for_bank(bank), [[1, 0], [0, 1]])
    dup = tmp_path / "dup.csv"
    dup.write_text("person,Q1,Q1\nA,1,0\n", encoding="utf-8")
    with pytest.raises(adaptive.ResponseValidationError, match="more than once"):
        read_responses(dup, bank)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("person,Q1,Q2\nA,1\n", encoding="utf-8")
    with pytest.raises(adaptive.ResponseValidationError, match="line 2: 2 cells"):
        read_responses(ragged, bank)


def test_empty_or_nan_parameter_cells_are_errors_not_defaults(tmp_path):
    for text, needle in [("id,a,b\nQ1,,0.5\n", "field 'a': no value"),
                         ("id,a,b\nQ1,NaN,0.5\n", "field 'a': 'NaN' is not a finite number"),
                         ("id,model,a,b,c\nQ1,3pl,1.0,0.5,\n", "field 'c': no value"),
                         ("id,a,b,a\nQ1,1,0,2\n", "appear more than once"),
                         ("id,a,b\nQ1,1,0,7\n", "4 cells but the header has 3")]:
        p = tmp_path / "params.csv"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(BankValidationError, match=needle):
            ItemBank.from_csv(p)


def test_files_over_the_size_bound_are_refused_unread(tmp_path, monkeypatch):
    """Issue 17 (resources without bounds): a file over the bound (a wrong path: a disk image, a log) is refused
    before it is read, naming the file, its size, the bound and how to raise it."""
    import subprocess
    import sys

    from adaptive.bank import ItemBank
    from adaptive.cat import ExamDesign
    from adaptive.exceptions import BankValidationError, DesignError

    design = tmp_path / "design.json"
    design.write_text("{" + " " * 17_000_000 + "}", encoding="utf-8")
    with pytest.raises(DesignError, match=r"design '.*design.json' is 17 MB, over the 16 MB a design may have"):
        ExamDesign.load(design)
    bank = tmp_path / "bank.csv"
    bank.write_text("id,a,b\n" + "I1,1,0\n" * 200_000, encoding="utf-8")
    monkeypatch.setenv("ADAPTIVE_MAX_FILE_MB", "1")
    with pytest.raises(BankValidationError, match="over the 1 MB.*ADAPTIVE_MAX_FILE_MB"):
        ItemBank.from_csv(bank)
    run = subprocess.run([sys.executable, "-m", "adaptive", "bank", "check", str(bank)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr and "over the 1 MB" in run.stdout + run.stderr
