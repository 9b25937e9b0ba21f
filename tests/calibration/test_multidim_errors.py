"""Bad input to the multidimensional entry points gets one clear error naming what, where and what to do."""

import numpy as np
import pytest

import adaptive
from adaptive.bank.multidim import MultidimBank
from adaptive.exceptions import BankValidationError, CalibrationError, ScoringError

RNG = np.random.default_rng(0)
X = (RNG.random((200, 6)) < 0.5).astype(float)
IDS = [f"I{j}" for j in range(6)]


@pytest.mark.parametrize("kwargs,match", [
    ({"factors": "two"}, "give a number of factors"),
    ({"factors": 0}, "use 1 to 10 factors"),
    ({"factors": True}, "give a number of factors"),
    ({"factors": {"A": ["I0", "zz"], "B": IDS[1:]}}, r"items \['zz'\] are not columns"),
    ({"factors": {"A": [], "B": IDS}}, "factor 'A' has no items"),
    ({"factors": {"A": IDS[:2], "B": IDS[2:4]}}, r"items \['I4', 'I5'\] load on no factor"),
    ({"factors": {"A": IDS[:3], "B": IDS[3:]}, "quadrature": 2}, "use 3 to 201 points"),
    ({"factors": 2, "quadrature": [1, 2]}, "number of points per dimension"),
    ({"factors": 2, "model": "4pl"}, "item 'I0': model '4pl' has no multidimensional form"),
    ({"factors": 2, "priors": {"b": "normal(0, 1)"}}, "'b' has no multidimensional form"),
    ({"factors": 2, "model": "3pl"}, "need a prior on the lower asymptote"),
    ({"factors": 2, "groups": ["a", "b"] * 100}, "need a confirmatory model on a product grid"),
    ({"model": "nominal", "factors": 2}, "nominal model is unidimensional"),
    ({"bifactor": ["A"] * 3}, "bifactor lists 3 labels for 6 items"),
    ({"bifactor": [None] * 6}, "no item names a specific factor"),
    ({"bifactor": ["G"] * 6}, r"\['G'\] names a general factor"),
    ({"bifactor": ["A"] * 3 + ["B"] * 3, "factors": {f"G{q}": IDS for q in range(4)}}, "at most 3 are integrated"),
    ({"bifactor": ["A"] * 3 + ["B"] * 3, "factors": {"G1": IDS, "G2": IDS}, "quadrature": 60},
     "at most 200,000 nodes in the 3 dimensions"),
    ({"bifactor": ["A"] + [None] * 5}, "fewer than 2 items"),
    ({"bifactor": ["A"] * 6, "factors": 2}, "names the general factors of a two-tier model"),
])
def test_calibration_refuses_bad_settings(kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        adaptive.calibrate(X, item_ids=IDS, **kwargs)


def test_calibration_names_the_items_the_data_cannot_fit():
    bad = np.column_stack([X, np.ones(200), np.full(200, np.nan), np.where(X[:, 0] > 0, 2.0, 0.0)])
    ids = IDS + ["const", "empty", "poly"]
    with pytest.raises(CalibrationError) as err:
        adaptive.calibrate(bad, item_ids=ids, factors=2)
    text = str(err.value)
    assert "'const': every response is 1" in text and "'empty': no responses" in text
    assert "'poly': response 2 but 2pl items are 0/1" in text


def test_bank_and_scoring_errors_name_the_field_row_and_item(tmp_path):
    with pytest.raises(BankValidationError, match="cannot read"):
        MultidimBank.read_csv(tmp_path / "missing.csv")
    with pytest.raises(BankValidationError, match=r"row 2 \(item 'a'\), field 'a1': expected a number"):
        MultidimBank.from_rows([{"item_id": "a", "model": "2pl", "a1": "x", "d": "0"}])
    with pytest.raises(BankValidationError, match="item 'a', fields 'd1..d2': graded intercepts must decrease"):
        MultidimBank.from_rows([{"item_id": "a", "model": "graded", "a1": "1", "d1": "-1", "d2": "1"}])
    with pytest.raises(BankValidationError, match="symmetric positive definite"):
        MultidimBank.from_rows([{"item_id": "a", "model": "2pl", "a1": "1", "a2": "1", "d": "0"}],
                               latent_cov=[[1, 2], [2, 1]])
    with pytest.raises(BankValidationError, match="field 'model'"):
        MultidimBank.from_rows([{"item_id": "a", "model": "4pl", "a1": "1", "d": "0"}])
    with pytest.raises(BankValidationError, match="field 'g': the lower asymptote must be in"):
        MultidimBank.from_rows([{"item_id": "a", "model": "3pl", "a1": "1", "d": "0", "g": "1.2"}])
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(BankValidationError, match="not a multidimensional bank"):
        MultidimBank.read_json(tmp_path / "x.json")
    bank = MultidimBank.from_rows([{"item_id": "a", "model": "2pl", "a1": "1", "a2": "1", "d": "0"}])
    with pytest.raises(ScoringError, match="one column per item"):
        adaptive.estimate_ability(bank, [[1, 0]])
    with pytest.raises(ScoringError, match="row 1, item 'a': response 2 is not a category"):
        adaptive.estimate_ability(bank, [[2]])
    with pytest.raises(ScoringError, match="'eap' and 'map'"):
        adaptive.estimate_ability(bank, [[1]], method="wle")


def test_bank_round_trips_through_csv_and_json(tmp_path):
    rows = [{"item_id": "m", "model": "2pl", "a1": 1.2, "a2": 0.0, "d": -0.3},
            {"item_id": "g", "model": "graded", "a1": 0.0, "a2": 0.9, "d1": 1.0, "d2": -0.5}]
    bank = MultidimBank.from_rows(rows, factor_names=("coding", "billing"), latent_cov=[[1, 0.4], [0.4, 1]])
    bank.to_csv(tmp_path / "b.csv")
    again = MultidimBank.read_csv(tmp_path / "b.csv", factor_names=("coding", "billing"),
                                  latent_cov=[[1, 0.4], [0.4, 1]])
    np.testing.assert_array_equal(again.phi, bank.phi)
    bank.to_json(tmp_path / "b.json")
    back = MultidimBank.read_json(tmp_path / "b.json")
    assert back.factor_names == ("coding", "billing") and back.latent_cov[0, 1] == 0.4
    np.testing.assert_array_equal(back.phi, bank.phi)
    nominal = MultidimBank.from_rows([{"item_id": "n", "model": "nominal", "a1": 0.5, "ak0": 0, "ak1": 0.4,
                                       "ak2": 3.0, "d0": 0, "d1": 0.2, "d2": -0.1}])
    nominal.to_csv(tmp_path / "n.csv")
    np.testing.assert_allclose(MultidimBank.read_csv(tmp_path / "n.csv").phi, nominal.phi, atol=1e-15)
