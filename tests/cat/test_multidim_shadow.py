"""The MCAT shadow test (content="shadow"): against brute-force enumeration of every feasible test, the blueprint
and enemies kept on every path, and batch = live."""

from itertools import combinations

import numpy as np
import pytest

from adaptive.bank.multidim import MultidimBank
from adaptive.cat.multidim import MultidimDesign, _Compiled, criterion_values, new_batch, run_mcat
from adaptive.cat.multidim_session import MultidimSession
from adaptive.exceptions import DesignError

from .multidim_data import SIGMA, assert_live_equals_batch_of_one


def _small(mcat_bank):
    """Twelve items (C001-C006 on F1, C151-C156 on F2) as their own bank."""
    idx = list(range(6)) + list(range(150, 156))
    rows = [r for j, r in enumerate(MultidimBank.rows(mcat_bank)) if j in idx]
    return MultidimBank.from_rows(rows, mcat_bank.factor_names, SIGMA)


@pytest.mark.parametrize("rule", ["t_rule", "w_rule", "d_rule"])
def test_the_first_item_is_the_best_free_item_of_the_best_feasible_test(mcat_bank, rule):
    """Brute force: every 6-item test of the 12 that meets F1 in [2, 3], F2 in [3, 4] and at most one of each
    enemy pair, ranked by the sum of the items' criterion values (include_prior, so the values differ)."""
    small = _small(mcat_bank)
    domains = {i: ("F1" if i < "C100" else "F2") for i in small.item_ids}
    enemies = (("C001", "C002"), ("C151", "C003"))
    design = MultidimDesign(rule=rule, include_prior=True, min_items=6, max_items=6, domains=domains,
                            domain_min={"F1": 2, "F2": 3}, domain_max={"F1": 3, "F2": 4}, enemies=enemies,
                            content="shadow")
    comp = _Compiled(small, design)
    state = new_batch(comp, 1)
    values = criterion_values(comp, state, np.array([0]))[0]
    f1 = np.array([d == "F1" for d in domains.values()])
    pos = {i: j for j, i in enumerate(small.item_ids)}
    bad = [(pos[a], pos[b]) for a, b in enemies]
    best, best_set = -np.inf, None
    for test in combinations(range(12), 6):
        n1 = f1[list(test)].sum()
        if not (2 <= n1 <= 3 and 3 <= 6 - n1 <= 4) or any(a in test and b in test for a, b in bad):
            continue
        v = values[list(test)].sum()
        if v > best + 1e-12:
            best, best_set = v, test
    expected = small.item_ids[max(best_set, key=lambda j: values[j])]
    live = MultidimSession(small, design, rng=1)
    assert live.next_item() == expected


def test_every_path_meets_the_blueprint_and_the_enemies(mcat_bank, mcat_answers):
    domains = {i: ("F1" if k < 150 else "F2") for k, i in enumerate(mcat_bank.item_ids)}
    enemies = (("C001", "C151", "C002"), ("C152", "C153"))
    design = MultidimDesign(rule="d_rule", min_items=10, max_items=10, domains=domains,
                            domain_min={"F1": 4, "F2": 5}, domain_max={"F1": 5, "F2": 6}, enemies=enemies,
                            exposure={"C003": 0.5}, content="shadow")
    st = run_mcat(mcat_bank, design, mcat_answers[:20], rng=5)
    f1 = (st.given < 150).sum(axis=1)
    assert ((4 <= f1) & (f1 <= 5)).all() and (st.n_given == 10).all()
    for grp in enemies:
        idx = [mcat_bank.item_ids.index(i) for i in grp]
        assert (np.isin(st.given, idx).sum(axis=1) <= 1).all()
    assert (st.shadow_fallbacks == 0).all()
    # the heuristic takes other paths (the shadow test plans the whole test at every step)
    heur = run_mcat(mcat_bank, MultidimDesign(rule="d_rule", min_items=10, max_items=10, domains=domains,
                                         domain_min={"F1": 4, "F2": 5}, domain_max={"F1": 5, "F2": 6},
                                         enemies=enemies, exposure={"C003": 0.5}), mcat_answers[:20], rng=5)
    assert not (heur.given == st.given).all()


def test_shadow_batch_equals_live(mcat_bank, mcat_answers):
    domains = {i: ("F1" if k < 150 else "F2") for k, i in enumerate(mcat_bank.item_ids)}
    design = MultidimDesign(rule="a_rule", min_items=4, max_items=9, se_target=0.5, domains=domains,
                            domain_min={"F1": 4, "F2": 4}, randomesque=2, content="shadow")
    for n in range(3):
        assert_live_equals_batch_of_one(mcat_bank, design, mcat_answers[n])


def test_shadow_settings_are_checked(mcat_bank):
    with pytest.raises(DesignError, match="field 'content'"):
        MultidimSession(mcat_bank, MultidimDesign(content="milp"))
    with pytest.raises(DesignError, match="field 'shadow_time_limit'"):
        MultidimSession(mcat_bank, MultidimDesign(content="shadow", shadow_time_limit=0))
