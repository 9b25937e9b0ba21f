"""Item bank schema: one test per validation rule, file I/O, round-trips and compilation."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptive import BankValidationError, ItemBank
from adaptive.irt import dichotomous, graded, partial_credit


def _bank(*items, **kw):
    return ItemBank(items=list(items), **kw)


def _problem(excinfo, item_id, field):
    """The one problem line that names ``item_id`` and ``field``."""
    lines = [p for p in excinfo.value.problems if f"item {item_id!r}" in p and f"field '{field}'" in p]
    assert lines, f"no problem names item {item_id!r} and field {field!r}: {excinfo.value.problems}"
    return lines[0]


BASE = {"id": "OK1", "model": "2pl", "a": 1.0, "b": 0.0}


@pytest.mark.parametrize(
    "item, field, words",
    [
        ({"id": "A0", "model": "2pl", "a": 0.0, "b": 0.0}, "a", "> 0"),
        ({"id": "A-", "model": "3pl", "a": -1.2, "b": 0.0, "c": 0.2}, "a", "> 0"),
        ({"id": "Anan", "model": "2pl", "a": float("nan"), "b": 0.0}, "a", "finite"),
        ({"id": "Crange", "model": "3pl", "a": 1.0, "b": 0.0, "c": -0.1}, "c", "[0, 1]"),
        ({"id": "Drange", "model": "4pl", "a": 1.0, "b": 0.0, "d": 1.2}, "d", "[0, 1]"),
        ({"id": "CgeD", "model": "4pl", "a": 1.0, "b": 0.0, "c": 0.5, "d": 0.4}, "c", "below the upper asymptote"),
        ({"id": "Bmiss", "model": "2pl", "a": 1.0}, "b", "needs a finite difficulty"),
        ({"id": "C2pl", "model": "2pl", "a": 1.0, "b": 0.0, "c": 0.2}, "c", "use model '3pl'"),
        ({"id": "Rasch", "model": "rasch", "a": 1.3, "b": 0.0}, "a", "fixes a = 1"),
        ({"id": "Gord", "model": "graded", "a": 1.0, "thresholds": [0.5, -0.5]}, "thresholds", "strictly increasing"),
        ({"id": "Gnone", "model": "graded", "a": 1.0}, "thresholds", "at least one threshold"),
        ({"id": "Gb", "model": "gpcm", "a": 1.0, "thresholds": [0.0], "b": 0.3}, "b", "not 'b'"),
        ({"id": "Ncat", "model": "graded", "a": 1.0, "thresholds": [-1, 0, 1], "n_categories": 3},
         "n_categories", "give 4"),
        ({"id": "Ncat2", "model": "3pl", "a": 1.0, "b": 0.0, "n_categories": 3}, "n_categories", "2 categories"),
        ({"id": "Self", "model": "2pl", "a": 1.0, "b": 0.0, "enemies": ["Self"]}, "enemies", "own enemy"),
        ({"id": "Stat", "model": "2pl", "a": 1.0, "b": 0.0, "status": "archived"}, "status", "operational"),
        ({"id": "Exp", "model": "2pl", "a": 1.0, "b": 0.0, "exposure": 1.5}, "exposure", "1"),
        ({"id": "Key", "model": "2pl", "a": 1.0, "b": 0.0,
          "content": {"stem": "Which?", "options": ["x", "y"], "key": "C"}}, "content.key", "not among"),
        ({"id": "Opt", "model": "2pl", "a": 1.0, "b": 0.0,
          "content": {"stem": "Which?", "options": ["x", "X"], "key": "A"}}, "content.options", "distinct"),
    ],
)
def test_each_item_rule_names_item_and_field(item, field, words):
    with pytest.raises(BankValidationError) as ei:
        _bank(BASE, item)
    line = _problem(ei, item["id"], field)
    assert words in line


def test_duplicate_ids_name_item_and_positions():
    with pytest.raises(BankValidationError) as ei:
        _bank(BASE, {"id": "X", "a": 1.0, "b": 0.0}, {"id": "X", "a": 2.0, "b": 1.0})
    line = _problem(ei, "X", "id")
    assert "duplicate" in line and "[1, 2]" in line


def test_unknown_enemy_names_item_field_and_enemy():
    with pytest.raises(BankValidationError) as ei:
        _bank(BASE, {"id": "E1", "a": 1.0, "b": 0.0, "enemies": ["OK1", "GHOST"]})
    line = _problem(ei, "E1", "enemies")
    assert "GHOST" in line and "OK1" not in line.split("unknown")[1]


BLUEPRINT = {"domains": [{"name": "ICD-10-CM", "proportion": 0.6}, {"name": "CPT", "proportion": 0.4}]}


def test_domain_outside_blueprint():
    with pytest.raises(BankValidationError) as ei:
        _bank({**BASE, "domain": "CPT"}, {"id": "D1", "a": 1.0, "b": 0.0, "domain": "HCPCS"}, blueprint=BLUEPRINT)
    assert "'HCPCS' is not a blueprint domain" in _problem(ei, "D1", "domain")


def test_domain_missing_when_blueprint_declared():
    with pytest.raises(BankValidationError) as ei:
        _bank({**BASE, "domain": "CPT"}, {"id": "D2", "a": 1.0, "b": 0.0}, blueprint=BLUEPRINT)
    assert "missing" in _problem(ei, "D2", "domain")


def test_blueprint_problems_are_reported():
    bad = {"domains": [{"name": "CPT", "proportion": 0.7}, {"name": "CPT", "proportion": 0.7}]}
    with pytest.raises(BankValidationError) as ei:
        _bank({**BASE, "domain": "CPT"}, blueprint=bad)
    assert any("blueprint" in p and "more than once" in p for p in ei.value.problems)


def test_all_problems_of_a_bank_are_reported_together():
    items = [
        BASE,
        {"id": "P1", "a": -1.0, "b": 0.0},
        {"id": "P2", "model": "graded", "a": 1.0, "thresholds": [1.0, 0.0]},
        {"id": "P1", "a": 1.0, "b": 0.0},
        {"id": "P3", "a": 1.0, "b": 0.0, "enemies": ["NOPE"]},
    ]
    with pytest.raises(BankValidationError) as ei:
        _bank(*items)
    msg = str(ei.value)
    assert msg.startswith("4 problems found")
    for item_id, field in [("P1", "a"), ("P2", "thresholds"), ("P1", "id"), ("P3", "enemies")]:
        _problem(ei, item_id, field)


def test_file_errors_name_the_file_and_every_row(tmp_path):
    path = tmp_path / "params.csv"
    path.write_text("id,a,b,c\nQ1,1.0,0.0,0.2\nQ2,abc,0.0,0.1\nQ3,1.0,0.0,1.5\n")
    with pytest.raises(BankValidationError) as ei:
        ItemBank.from_csv(path)
    assert str(path) in str(ei.value)
    assert any("line 3" in p and "'Q2'" in p and "field 'a'" in p for p in ei.value.problems)  # the file's line
    bad_json = tmp_path / "bank.json"
    bad_json.write_text('{"items": [{"id": "A", "a": 1.0, "b": 0.0}, {"id": "B", "a": 0, "b": 1}]}')
    with pytest.raises(BankValidationError) as ei:
        ItemBank.from_json(bad_json)
    assert str(bad_json) in str(ei.value) and "item 'B' (position 1), field 'a'" in str(ei.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"items": [}')
    with pytest.raises(BankValidationError, match="line 1, column"):
        ItemBank.from_json(broken)


def test_public_api_len_ids_and_schema():
    bank = _bank(BASE, {"id": "Z", "model": "3pl", "a": 1.5, "b": 1.0, "c": 0.2})
    assert len(bank) == 2 and bank.ids == ("OK1", "Z")
    schema = ItemBank.json_schema()
    assert "items" in schema["properties"]
    assert set(json.loads(json.dumps(schema))) >= {"properties", "$defs"}


# ------------------------------------------------------------------ CSV forms


def test_catr_style_csv(tmp_path):
    p = tmp_path / "catr.csv"
    p.write_text("a,b,c,d\n1.2,-0.5,0.2,1\n0.8,1.0,0.0,1\n")
    bank = ItemBank.from_csv(p)
    assert bank.ids == ("I0001", "I0002")
    assert [it.model for it in bank.items] == ["3pl", "3pl"]
    assert bank.items[0].c == 0.2 and bank.items[1].b == 1.0


def test_mirt_slope_intercept_csv(tmp_path):
    """mirt coef(simplify=TRUE): a1, d, g, u with b = -d / a1 (mirt manual, 'coef')."""
    p = tmp_path / "mirt.csv"
    p.write_text("item,a1,d,g,u\nV1,1.5,-0.75,0.2,1\nV2,0.5,1.0,0.0,0.95\n")
    bank = ItemBank.from_csv(p)
    it1, it2 = bank.items
    assert it1.b == pytest.approx(0.5) and it1.c == 0.2 and it1.model == "4pl"
    assert it2.b == pytest.approx(-2.0) and it2.d == 0.95


def test_mirt_graded_and_gpcm_intercepts(tmp_path):
    """GRM: b_k = -d_k / a; GPCM (mirt 'gpcm' d0..dk): b_v = -(d_v - d_{v-1}) / a."""
    p = tmp_path / "poly.csv"
    p.write_text("item,model,a1,d0,d1,d2\nG,graded,2.0,,2.0,-1.0\nP,gpcm,0.5,0,0.25,-0.5\n")
    bank = ItemBank.from_csv(p)
    np.testing.assert_allclose(bank.item("G").thresholds, [-1.0, 0.5])
    np.testing.assert_allclose(bank.item("P").thresholds, [-0.5, 1.5])


def test_csv_metadata_and_unknown_column_warning(tmp_path):
    p = tmp_path / "meta.csv"
    p.write_text("id,a,b,domain,code_set,code_set_year,enemies,status,colour\n"
                 "A,1,0,CPT,CPT,2025,B,pretest,red\nB,1,1,CPT,CPT,2025,,,blue\n")
    with pytest.warns(UserWarning, match="colour"):
        bank = ItemBank.from_csv(p)
    a = bank.item("A")
    assert (a.domain, a.code_set, a.code_set_year, a.enemies, a.status) == ("CPT", "CPT", 2025, ["B"], "pretest")


# ------------------------------------------------------------------ round-trips

finite = st.floats(-4, 4, allow_nan=False)
slopes = st.floats(0.2, 5.0, allow_nan=False)


@st.composite
def items(draw, idx):
    model = draw(st.sampled_from(["rasch", "2pl", "3pl", "4pl", "graded", "gpcm", "pcm"]))
    rec = {"id": f"it{idx}", "model": model}
    if model in ("rasch", "pcm"):
        rec["a"] = 1.0
    else:
        rec["a"] = draw(slopes)
    if model in ("graded", "gpcm", "pcm"):
        k = draw(st.integers(1, 5))
        thr = draw(st.lists(finite, min_size=k, max_size=k, unique=True))
        rec["thresholds"] = sorted(thr) if model == "graded" else thr
    else:
        rec["b"] = draw(finite)
        if model in ("3pl", "4pl"):
            rec["c"] = draw(st.floats(0.0, 0.4))
        if model == "4pl":
            rec["d"] = draw(st.floats(0.6, 1.0))
    rec["domain"] = draw(st.sampled_from(["ICD-10-CM", "CPT"]))
    rec["status"] = draw(st.sampled_from(["operational", "pretest", "retired"]))
    if draw(st.booleans()):
        rec["exposure"] = draw(st.floats(0.01, 1.0))
    return rec


@st.composite
def banks(draw):
    n = draw(st.integers(1, 8))
    recs = [draw(items(i)) for i in range(n)]
    if n > 1 and draw(st.booleans()):
        recs[0]["enemies"] = [recs[1]["id"]]
    return ItemBank(items=recs, scaling=draw(st.sampled_from([1.0, 1.702])), blueprint=BLUEPRINT)


@given(banks())
def test_json_round_trip_is_exact(tmp_path_factory, bank):
    path = tmp_path_factory.mktemp("json") / "bank.json"
    bank.to_json(path)
    assert ItemBank.from_json(path) == bank


@given(banks())
def test_csv_round_trip_keeps_parameters_exactly(tmp_path_factory, bank):
    path = tmp_path_factory.mktemp("csv") / "bank.csv"
    bank.to_csv(path)
    back = ItemBank.from_csv(path, blueprint=bank.blueprint, name=bank.name)
    assert back == bank


# ------------------------------------------------------------------ compile


def test_compile_struct_of_arrays_and_scaling():
    bank = _bank(
        {"id": "D", "model": "3pl", "a": 1.0, "b": 0.5, "c": 0.2},
        {"id": "G", "model": "graded", "a": 1.5, "thresholds": [-1.0, 0.0, 1.0]},
        {"id": "P", "model": "pcm", "thresholds": [0.3]},
        scaling=1.702,
    )
    arr = bank.compile()
    assert arr.n_items == 3 and arr.max_categories == 4
    np.testing.assert_allclose(arr.a, [1.702, 1.5 * 1.702, 1.702])
    theta = np.array([-1.0, 0.4])
    p = arr.prob(theta)
    np.testing.assert_allclose(p[:, 0, :2], dichotomous.prob(theta, [1.702], [0.5], [0.2])[:, 0])
    np.testing.assert_allclose(p[:, 1], graded.prob(theta, [1.5 * 1.702], [[-1.0, 0.0, 1.0]])[:, 0])
    np.testing.assert_allclose(p[:, 2, :2], partial_credit.prob(theta, [1.702], [[0.3]])[:, 0])
    tables = bank.tables((-4, 4, 9))
    assert tables.log_prob.shape == (3, 9, 4) and tables.information.shape == (3, 9)
    np.testing.assert_allclose(tables.information[:, 4], arr.information(0.0))
    assert bank.tables((-4, 4, 9)) is tables  # cached per grid
    assert re.search(r"3 items", repr(arr))


def test_cross_item_checks_run_once_per_bank(monkeypatch):
    from adaptive.bank import schema

    calls = []
    real = schema._cross_item_problems
    monkeypatch.setattr(schema, "_cross_item_problems", lambda *a: calls.append(1) or real(*a))
    ItemBank(items=[{"id": "A", "a": 1.0, "b": 0.0}, {"id": "B", "a": 1.1, "b": 0.5}])
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(ValueError, match="duplicate"):  # the model_validate path still checks
        ItemBank.model_validate({"items": [{"id": "A", "a": 1.0, "b": 0.0}, {"id": "A", "a": 1.1, "b": 0.5}]})
    assert len(calls) == 1
