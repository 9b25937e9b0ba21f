"""The model registry: one spec per name, used by the bank, calibration and the CLI alike."""

from __future__ import annotations

import numpy as np
import pytest

import adaptive
from adaptive import BankValidationError, ItemBank
from adaptive.bank.constants import ModelName
from adaptive.irt.registry import MODEL_NAMES, MODELS, Family, canonical_model, model_spec
from adaptive.synthetic import simulate_responses, synthetic_bank


@pytest.mark.parametrize("written, name", [("GRM", "graded"), ("grm", "graded"), ("Graded", "graded"), ("2PL", "2pl"),
                                           ("GPCM", "gpcm"), ("Rasch", "rasch"), (" 3pl ", "3pl"),
                                           ("partial credit", "pcm")])
def test_names_in_any_case_and_aliases_are_canonical(written, name):
    assert canonical_model(written) == name
    assert ItemBank(items=[{"id": "Q", "model": written, "a": 1.0,
                            **({"b": 0.0} if model_spec(name).dichotomous else {"thresholds": [-0.5, 0.5]})}
                           ]).items[0].model == name


def test_unknown_names_are_refused_with_the_nearest_one():
    with pytest.raises(ValueError, match="did you mean '3pl'"):
        canonical_model("3pk")
    with pytest.raises(BankValidationError, match="field 'model': unknown model 'gradd'; did you mean 'graded'"):
        ItemBank(items=[{"id": "Q", "model": "gradd", "a": 1.0, "thresholds": [0.0]}])


def test_the_bank_schema_lists_exactly_the_registered_models():
    assert set(ModelName.__args__) == set(MODEL_NAMES)


@pytest.mark.recovery
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_calibrates_with_the_free_parameters_its_spec_names(name):
    """A synthetic bank of each model, simulated and calibrated: the number of free parameters is what the spec
    says (per item; plus one common slope for the 1PL; plus the latent SD where slopes are fixed at 1, as in
    mirt's Rasch and PCM), and a calibrated bank keeps the model's constraints."""
    spec = MODELS[name]
    bank = synthetic_bank(12, model=name, rng=3)
    x = simulate_responses(bank.compile(), np.random.default_rng(4).normal(size=3000), rng=5)
    priors = "3pl" if spec.lower_asymptote else None
    fit = adaptive.calibrate(x, model=name, priors=priors, item_ids=bank.ids)
    k = bank.items[0].n_cat
    per_item = int(spec.free_internal(k, spec.n_internal(k)).sum())
    assert fit.n_parameters == 12 * per_item + int(spec.slope != "free")
    out = fit.bank
    assert {it.model for it in out.items} == {name}
    if spec.slope == "fixed":
        assert all(it.a == 1.0 for it in out.items)
    if spec.slope == "common":
        assert len({round(it.a, 12) for it in out.items}) == 1
    if spec.dichotomous and not spec.lower_asymptote:
        assert all(it.c == 0.0 for it in out.items)


def test_families_are_one_enum():
    assert {s.family for s in MODELS.values()} == set(Family)
    arr = synthetic_bank(5, model="gpcm", rng=1).compile()
    assert np.all(arr.family == Family.PARTIAL_CREDIT)
