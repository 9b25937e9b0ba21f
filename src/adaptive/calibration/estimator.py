"""A scikit-learn-compatible IRT estimator, so model choice can use scikit-learn's own tools.

>>> import numpy as np
>>> from sklearn.model_selection import cross_val_score
>>> from adaptive.synthetic import synthetic_bank, simulate_responses
>>> bank = synthetic_bank(15, model="2pl", rng=4)
>>> x = simulate_responses(bank.compile(), np.random.default_rng(5).standard_normal(1200), rng=6)
>>> scores = cross_val_score(IRTModel(model="2pl"), x, cv=3)
>>> scores.shape, bool(np.all(scores < 0))
((3,), True)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..exceptions import CalibrationError
from ..irt.mixed import internal_log_prob
from .api import as_response_data, calibrate
from .em import Problem

__all__ = ["IRTModel"]


class IRTModel(TransformerMixin, BaseEstimator):
    """Unidimensional IRT model fitted by MML-EM.

    ``fit(X)`` calibrates (``X``: persons x items, NaN = not administered); ``transform(X)`` returns EAP θ
    as an ``(N, 1)`` array; ``score(X)`` is the mean marginal log-likelihood per person (higher is better),
    so ``cross_val_score`` and ``GridSearchCV`` compare models and settings directly.
    """

    def __init__(self, model="2pl", quadrature=61, priors=None, tol=1e-4, max_iter=2000):
        self.model = model
        self.quadrature = quadrature
        self.priors = priors
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y=None):
        self.result_ = calibrate(X, model=self.model, quadrature=self.quadrature, priors=self.priors, tol=self.tol,
                                 max_iter=self.max_iter)
        self.n_features_in_ = len(self.result_.item_ids)
        return self

    def _problem_for(self, X):
        check_is_fitted(self, "result_")
        values, _, _ = as_response_data(X)
        res = self.result_
        if values.shape[1] != self.n_features_in_:
            raise CalibrationError(f"X has {values.shape[1]} item columns; the model was fitted on "
                                   f"{self.n_features_in_}")
        top = np.nanmax(np.where(np.isnan(values), -1, values), axis=0)
        over = np.flatnonzero(top >= res.n_cat)
        if over.size:
            raise CalibrationError(f"items {[res.item_ids[i] for i in over[:10]]} have categories the fitted model "
                                   "does not have")
        fitted = res.fitted
        base, phi, latent = fitted.problem, fitted.phi, fitted.latent
        prob = Problem(values, base.family, base.n_cat, phi, np.zeros_like(base.params.free),
                       np.zeros_like(base.params.tied), base.theta, np.zeros(values.shape[0], dtype=int), latent[:1],
                       np.zeros((1, 2), bool), {})
        return prob, phi, latent[:1]

    def _posterior(self, X):
        prob, phi, latent = self._problem_for(X)
        return prob, prob.posterior(internal_log_prob(prob.family, prob.n_cat, phi, prob.theta), latent)

    def transform(self, X):
        prob, (post, _) = self._posterior(X)
        return (post @ prob.theta)[:, None]

    def score(self, X, y=None):
        prob, (_, ll) = self._posterior(X)
        return ll / prob.layout.n_persons
