"""van der Linden's (2006) lognormal response-time model, fitted by marginal ML (EM) on sparse data.

``ln T_ij = β_i - τ_j + ε_ij``, ``ε_ij ~ N(0, α_i⁻²)``: item time intensity β_i, time discrimination α_i,
person speed τ_j with ``τ ~ N(0, σ_τ²)`` (the mean fixed at 0 identifies the scale, as in van der Linden
2006). Missing times are a mask: the model is fitted on the answers given.

Estimation is EM with closed-form steps (the model is linear-Gaussian, so the posterior of τ_j is normal):

* E: ``prec_j = 1/σ_τ² + Σ_i α_i²``, ``m_j = Σ_i α_i² (β_i - ln t_ij) / prec_j``, ``v_j = 1/prec_j``.
* M: ``β_i = mean_j (ln t_ij + m_j)``; ``α_i⁻² = mean_j [(ln t_ij - β_i + m_j)² + v_j]``;
  ``σ_τ² = mean_j (m_j² + v_j)``.

The marginal log-likelihood of person j is that of a normal vector with covariance
``diag(α⁻²) + σ_τ² 11ᵀ``; EM increases it at every step. Speeds are reported as the posterior mean
(``speed``) with posterior SD (``speed_se``), and as the ML estimate given the items
(``speed_ml = Σ α_i²(β_i - ln t_ij) / Σ α_i²``, SE ``1/sqrt(Σ α_i²)``), which the person-fit statistic
``l_t`` (van der Linden & Guo 2008) uses: ``l_t = Σ_i z_ij²`` with standardized residuals
``z_ij = α_i (ln t_ij - (β_i - τ̂_j))``, distributed χ² with ``n_j - 1`` df under the model. Large values
flag aberrant timing (a proxy who works at another speed, pre-knowledge answered fast).

Item standard errors are the large-sample ones of a normal mean and variance (τ treated as known):
``SE(β_i) = 1/(α_i sqrt(n_i))``, ``SE(α_i) = α_i / sqrt(2 n_i)``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> beta, alpha, tau = rng.normal(4, 0.3, 30), rng.uniform(1.5, 2.5, 30), rng.normal(0, 0.3, 500)
>>> log_t = beta - tau[:, None] + rng.normal(size=(500, 30)) / alpha
>>> fit = fit_response_times(np.exp(log_t))
>>> bool(np.abs(fit.intensity - beta).max() < 0.1), fit.converged
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from ..answers import Records
from ..exceptions import ResponseValidationError
from ._stats import below

__all__ = ["ResponseTimeFit", "fit_response_times", "SpeedFit", "speed_fit", "ability_speed_correlation"]

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class ResponseTimeFit:
    """A fitted lognormal response-time model.

    Attributes
    ----------
    intensity, intensity_se : ``(I,)`` -- β_i and its SE (NaN for an item with fewer than 2 times)
    discrimination, discrimination_se : ``(I,)`` -- α_i and its SE
    speed, speed_se : ``(N,)`` -- posterior mean and SD of τ_j (NaN for a person with no times)
    speed_ml, speed_ml_se : ``(N,)`` -- ML speed given the items, and its SE
    speed_sd : σ_τ
    n_item, n_person : times per item and per person
    loglik : marginal log-likelihood; loglik_trace : per EM cycle
    converged, n_iter : EM stopped by tolerance; cycles run
    """

    intensity: np.ndarray
    intensity_se: np.ndarray
    discrimination: np.ndarray
    discrimination_se: np.ndarray
    speed: np.ndarray
    speed_se: np.ndarray
    speed_ml: np.ndarray
    speed_ml_se: np.ndarray
    speed_sd: float
    n_item: np.ndarray
    n_person: np.ndarray
    loglik: float
    loglik_trace: np.ndarray
    converged: bool
    n_iter: int

    def __repr__(self) -> str:
        ok = "converged" if self.converged else "NOT converged"
        return (f"ResponseTimeFit({self.intensity.size} items, {self.speed.size} persons; σ_τ {self.speed_sd:.3f}; "
                f"logLik {self.loglik:.3f}; {ok} in {self.n_iter} cycles)")

    def residuals(self, person, item, log_seconds) -> np.ndarray:
        """Standardized log-time residuals ``α_i (ln t - (β_i - τ̂_j))`` at the ML speeds, per answer."""
        return self.discrimination[item] * (log_seconds - self.intensity[item] + self.speed_ml[person])


def _long_times(seconds, mask):
    """``(person, item, ln t, N, I)`` from a Records set or an ``(N, I)`` matrix of seconds."""
    if isinstance(seconds, Records):
        rec = seconds
        lt = rec.log_seconds
        ok = np.isfinite(lt)
        return rec.person[ok], rec.item[ok], lt[ok], rec.n_persons, rec.n_items
    t = np.asarray(seconds, dtype=float)
    if t.ndim != 2:
        raise ResponseValidationError(f"seconds must be a persons × items matrix; got shape {t.shape}")
    use = np.isfinite(t)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != t.shape:
            raise ResponseValidationError(f"mask has shape {m.shape}; it must match the times' {t.shape}")
        use &= m
    bad = use & (t <= 0)
    if bad.any():
        j, i = np.argwhere(bad)[0]
        raise ResponseValidationError(f"row {j + 1}, item {i + 1}: time {float(t[j, i])!r} is not positive; give "
                                      "seconds > 0 or NaN for not administered")
    person, item = np.nonzero(use)
    return person, item, np.log(t[person, item]), t.shape[0], t.shape[1]


def _loglik(person, item, y, beta, a2, s2, n):
    u = beta[item] - y
    prec = 1.0 / s2 + np.bincount(person, weights=a2[item], minlength=n)
    su = np.bincount(person, weights=a2[item] * u, minlength=n)
    suu = np.bincount(person, weights=a2[item] * u * u, minlength=n)
    has = np.bincount(person, minlength=n) > 0
    ll = (-0.5 * (y.size * LOG_2PI) + 0.5 * np.log(a2[item]).sum()
          - 0.5 * (np.log(s2 * prec[has]).sum() + suu[has].sum() - (su[has] ** 2 / prec[has]).sum()))
    return float(ll)


def fit_response_times(seconds, mask=None, *, tol: float = 1e-6, max_iter: int = 500) -> ResponseTimeFit:
    """Fit the lognormal model; see the module docstring.

    Parameters
    ----------
    seconds : ``(N, I)`` response times in seconds (NaN = not administered), or :class:`Records`
    mask : ``(N, I)`` bool, optional -- True where a time counts (default: every finite time)
    tol : stop when the marginal log-likelihood gains less than ``tol`` per time in a cycle
    """
    person, item, y, n, n_items = _long_times(seconds, mask)
    if y.size < 2:
        raise ResponseValidationError("fewer than 2 response times; the lognormal model needs times to fit")
    n_i = np.bincount(item, minlength=n_items).astype(float)
    n_p = np.bincount(person, minlength=n).astype(float)
    seen = n_i > 0
    beta = np.where(seen, np.bincount(item, weights=y, minlength=n_items) / np.maximum(n_i, 1), 0.0)
    resid = y - beta[item]
    var0 = np.bincount(item, weights=resid ** 2, minlength=n_items) / np.maximum(n_i, 1)
    a2 = np.where(seen & (var0 > 0), 1.0 / np.maximum(var0, 1e-6), 1.0)
    s2 = max(float(np.var(resid)) * 0.5, 1e-4)
    trace = []
    converged = False
    for _ in range(max_iter):
        prec = 1.0 / s2 + np.bincount(person, weights=a2[item], minlength=n)
        m = np.bincount(person, weights=a2[item] * (beta[item] - y), minlength=n) / prec
        v = 1.0 / prec
        beta = np.where(seen, np.bincount(item, weights=y + m[person], minlength=n_items) / np.maximum(n_i, 1), 0.0)
        e = y - beta[item] + m[person]
        ss = np.bincount(item, weights=e ** 2 + v[person], minlength=n_items) / np.maximum(n_i, 1)
        a2 = np.where(seen, 1.0 / np.maximum(ss, 1e-8), 1.0)
        has = n_p > 0
        s2 = max(float(np.mean(m[has] ** 2 + v[has])), 1e-10)
        trace.append(_loglik(person, item, y, beta, a2, s2, n))
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) < tol * y.size:
            converged = True
            break
    prec = 1.0 / s2 + np.bincount(person, weights=a2[item], minlength=n)
    speed = np.bincount(person, weights=a2[item] * (beta[item] - y), minlength=n) / prec
    sa2 = np.bincount(person, weights=a2[item], minlength=n)
    has = n_p > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        speed_ml = np.where(has, np.bincount(person, weights=a2[item] * (beta[item] - y), minlength=n) / sa2, np.nan)
        speed_ml_se = np.where(has, 1.0 / np.sqrt(sa2), np.nan)
    alpha = np.sqrt(a2)
    two = n_i >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return ResponseTimeFit(
            intensity=np.where(seen, beta, np.nan), intensity_se=np.where(two, 1.0 / (alpha * np.sqrt(n_i)), np.nan),
            discrimination=np.where(two, alpha, np.nan), discrimination_se=np.where(two, alpha / np.sqrt(2 * n_i),
                                                                                     np.nan),
            speed=np.where(has, speed, np.nan), speed_se=np.where(has, 1.0 / np.sqrt(prec), np.nan),
            speed_ml=speed_ml, speed_ml_se=speed_ml_se, speed_sd=float(np.sqrt(s2)), n_item=n_i.astype(int),
            n_person=n_p.astype(int), loglik=trace[-1], loglik_trace=np.asarray(trace), converged=converged,
            n_iter=len(trace))


@dataclass(frozen=True)
class SpeedFit:
    """The ``l_t`` person-fit statistic of response times.

    Attributes
    ----------
    values : ``(N,)`` -- ``l_t = Σ z²`` (NaN with fewer than 2 times)
    df : ``(N,)`` -- ``n_j - 1``
    p_values : upper-tail χ² p-values (small: aberrant timing)
    z : ``(N,)`` -- the Wilson-Hilferty normal equivalent of ``l_t`` (large: aberrant)
    """

    values: np.ndarray
    df: np.ndarray
    p_values: np.ndarray
    z: np.ndarray

    def flagged(self, alpha: float = 0.01) -> np.ndarray:
        return below(self.p_values, alpha)


def speed_fit(fit: ResponseTimeFit, records: Records) -> SpeedFit:
    """``l_t`` of every person of ``records`` under ``fit`` (see the module docstring)."""
    lt = records.log_seconds
    ok = np.isfinite(lt) & np.isfinite(fit.intensity[records.item])
    n = records.n_persons
    person, item, y = records.person[ok], records.item[ok], lt[ok]
    a2 = fit.discrimination[item] ** 2
    sa2 = np.bincount(person, weights=a2, minlength=n)
    u = fit.intensity[item] - y
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.bincount(person, weights=a2 * u, minlength=n) / sa2
    z2 = a2 * (u - tau[person]) ** 2
    stat = np.bincount(person, weights=z2, minlength=n)
    df = np.bincount(person, minlength=n) - 1
    ok_p = df >= 1
    stat = np.where(ok_p, stat, np.nan)
    p = np.where(ok_p, chi2.sf(stat, np.maximum(df, 1)), np.nan)
    # Wilson-Hilferty: (x/k)^(1/3) is close to normal with mean 1 - 2/(9k), variance 2/(9k)
    k = np.maximum(df, 1).astype(float)
    with np.errstate(invalid="ignore"):
        z = np.where(ok_p, ((stat / k) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / np.sqrt(2.0 / (9.0 * k)), np.nan)
    return SpeedFit(values=stat, df=df, p_values=p, z=z)


def ability_speed_correlation(theta, theta_se, fit: ResponseTimeFit) -> float:
    """The correlation of ability θ and speed τ in the population (van der Linden's hierarchical framework),
    from person estimates with their measurement error removed.

    With unbiased person estimates (WLE θ̂ and the ML speeds ``fit.speed_ml``) whose errors are independent
    given the person, ``cov(θ̂, τ̂) = cov(θ, τ)`` and ``var(θ̂) = var(θ) + E SE²``, so
    ``ρ = cov(θ̂, τ̂) / sqrt((var θ̂ - mean SE_θ²)(var τ̂ - mean SE_τ²))`` (the classical correction for
    attenuation). Persons without either estimate are left out.
    """
    theta = np.asarray(theta, dtype=float)
    theta_se = np.asarray(theta_se, dtype=float)
    tau, tau_se = fit.speed_ml, fit.speed_ml_se
    ok = np.isfinite(theta) & np.isfinite(theta_se) & np.isfinite(tau) & np.isfinite(tau_se)
    if ok.sum() < 3:
        raise ResponseValidationError("fewer than 3 persons have both an ability and a speed estimate; the "
                                      "correlation needs more")
    t, s = theta[ok], tau[ok]
    cov = float(np.cov(t, s)[0, 1])
    var_t = float(np.var(t, ddof=1) - np.mean(theta_se[ok] ** 2))
    var_s = float(np.var(s, ddof=1) - np.mean(tau_se[ok] ** 2))
    if var_t <= 0 or var_s <= 0:
        return float("nan")
    return float(np.clip(cov / np.sqrt(var_t * var_s), -1.0, 1.0))
