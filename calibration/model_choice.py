"""Choose between Rasch, 2PL and 3PL by information criteria and by cross-validation (scikit-learn).

    python calibration/model_choice.py
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV

import adaptive
from adaptive.calibration import IRTModel
from adaptive.synthetic import simulate_responses, synthetic_bank


def main(seed=3):
    bank = synthetic_bank(25, model="2pl", rng=seed)
    x = simulate_responses(bank.compile(), np.random.default_rng(seed + 1).standard_normal(3000), rng=seed + 2)
    print(f"{'model':8s}{'logLik':>14s}{'AIC':>12s}{'BIC':>12s}")
    for model, priors in (("rasch", None), ("2pl", None), ("3pl", "3pl")):
        r = adaptive.calibrate(x, model=model, priors=priors)
        print(f"{model:8s}{r.loglik:14.2f}{r.aic:12.1f}{r.bic:12.1f}")
    search = GridSearchCV(IRTModel(), {"model": ["rasch", "2pl"]}, cv=5).fit(x)
    print(f"\n5-fold cross-validation picks {search.best_params_['model']} "
          f"(mean held-out log-likelihood per person {search.best_score_:.3f})")


if __name__ == "__main__":
    main()
