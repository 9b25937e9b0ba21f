"""Banks of multidimensional and nominal items: a slope vector per item, the factor names and the latent covariance.

Columns as mirt writes them (logistic metric, slope-intercept): ``item_id, model, a1..aK`` then ``d`` (``2pl``;
``3pl`` adds ``g``, the lower asymptote),
``d1..d{C-1}`` (``graded``: ``P(X >= k) = expit(a·θ + d_k)``, decreasing; ``gpcm``: ``d_0 = 0``) or, for
``nominal`` items (one dimension), ``ak0..ak{C-1}`` and ``d0..d{C-1}`` with ``ak0 = d0 = 0`` and
``ak{C-1} = C - 1``. :meth:`MultidimBank.to_json` also keeps the factor names and the latent covariance;
:meth:`MultidimBank.read_csv` takes them as arguments (identity and ``F1..FK`` by default).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from ..exceptions import BankValidationError
from ..irt.linear import KIND_OF_MODEL, LinearKind, extra_column, n_internal, nominal_from_mirt, nominal_to_mirt

__all__ = ["MultidimBank", "MULTIDIM_MODELS"]

MULTIDIM_MODELS = tuple(KIND_OF_MODEL)


def _item_id(row) -> str | None:
    """The id column: ``item_id``, ``id`` or ``item`` (mirt's tables)."""
    for key in ("item_id", "id", "item"):
        if row.get(key) not in (None, ""):
            return str(row[key])
    return None


class MultidimBank:
    """Items on K abilities (see the module docstring); ``phi`` is the internal form of :mod:`adaptive.irt.linear`.

    Validation names the item and the field: slopes and intercepts finite, graded intercepts decreasing, nominal
    items one-dimensional, the latent covariance symmetric positive definite with the factor names unique.
    """

    def __init__(self, item_ids, models, phi, n_cat, factor_names=None, latent_cov=None, latent_mean=None):
        self.item_ids = tuple(str(i) for i in item_ids)
        self.models = tuple(str(m).lower() for m in models)
        self.phi = np.array(phi, dtype=float)
        self.n_cat = np.asarray(n_cat, dtype=int)
        n_dims = self.phi.shape[1] - n_internal(0, int(self.n_cat.max())) if self.n_cat.size else 1
        self.factor_names = tuple(factor_names) if factor_names is not None else tuple(
            f"F{k + 1}" for k in range(n_dims))
        k = len(self.factor_names)
        self.latent_cov = np.eye(k) if latent_cov is None else np.array(latent_cov, dtype=float)
        self.latent_mean = np.zeros(k) if latent_mean is None else np.array(latent_mean, dtype=float)
        self._validate()
        self.kind = np.array([KIND_OF_MODEL[m] for m in self.models])

    # ------------------------------------------------------------------ validation
    def _validate(self):
        k = len(self.factor_names)
        n = len(self.item_ids)
        if len(set(self.item_ids)) != n:
            dup = sorted({i for i in self.item_ids if self.item_ids.count(i) > 1})
            raise BankValidationError(f"duplicate item ids {dup[:5]}: every item needs its own id")
        if len(set(self.factor_names)) != k:
            raise BankValidationError(f"factor names {list(self.factor_names)} repeat a name; give each factor its own")
        if len(self.models) != n or self.phi.shape[0] != n or self.n_cat.shape != (n,):
            raise BankValidationError(f"{n} item ids, {len(self.models)} models, {self.phi.shape[0]} parameter rows "
                                      f"and {self.n_cat.size} category counts: give one of each per item")
        if self.phi.shape[1] != n_internal(k, int(self.n_cat.max()) if n else 2):
            raise BankValidationError(f"parameter rows of width {self.phi.shape[1]} do not fit {k} factors")
        for j, (iid, m) in enumerate(zip(self.item_ids, self.models)):
            where = f"item {iid!r}"
            if m not in KIND_OF_MODEL:
                raise BankValidationError(f"{where}, field 'model': {m!r} is not a multidimensional model; use one "
                                          f"of {', '.join(MULTIDIM_MODELS)}")
            c = int(self.n_cat[j])
            if c < 2 or (m in ("2pl", "3pl") and c != 2):
                raise BankValidationError(f"{where}, field 'n_cat': {c} categories do not fit model {m!r}")
            used = self.phi[j, :k + c - 1]
            if not np.all(np.isfinite(used)):
                bad = int(np.flatnonzero(~np.isfinite(used))[0])
                name = f"a{bad + 1}" if bad < k else f"d{bad - k + 1}"
                raise BankValidationError(f"{where}, field {name!r}: must be a finite number")
            if m == "graded" and np.any(np.diff(self.phi[j, k:k + c - 1]) >= 0):
                raise BankValidationError(f"{where}, fields 'd1..d{c - 1}': graded intercepts must decrease "
                                          "(d1 > d2 > ...)")
            if m == "nominal" and k != 1:
                raise BankValidationError(f"{where}: the nominal model is unidimensional; this bank has {k} factors")
        cov = self.latent_cov
        if cov.shape != (k, k) or not np.allclose(cov, cov.T) or np.any(np.linalg.eigvalsh(cov) <= 0):
            raise BankValidationError(f"latent_cov must be a symmetric positive definite {k} x {k} matrix")
        if self.latent_mean.shape != (k,) or not np.all(np.isfinite(self.latent_mean)):
            raise BankValidationError(f"latent_mean must hold {k} finite numbers")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def n_dims(self) -> int:
        return len(self.factor_names)

    @property
    def slopes(self) -> np.ndarray:
        """``(I, K)`` slopes; a nominal item's is mirt's ``a1`` (its key category's slope over ``C - 1``)."""
        a = self.phi[:, :self.n_dims].copy()
        nom = self.kind == LinearKind.NOMINAL
        if nom.any():
            a[nom, 0] = nominal_to_mirt(self.phi[nom], self.n_cat[nom])[0]
        return a

    @property
    def intercepts(self) -> np.ndarray:
        """``(I, C-1)`` intercepts (NaN where an item has fewer categories)."""
        k_max = int(self.n_cat.max())
        d = self.phi[:, self.n_dims:self.n_dims + k_max - 1].copy()
        d[np.arange(k_max - 1)[None, :] >= (self.n_cat - 1)[:, None]] = np.nan
        return d

    def nominal_parameters(self) -> dict:
        """mirt's ``a1, ak (I, C), d (I, C)`` of the nominal items (NaN rows for the others)."""
        nom = self.kind == LinearKind.NOMINAL
        c = int(self.n_cat.max())
        a1, ak, d = np.full(len(self), np.nan), np.full((len(self), c), np.nan), np.full((len(self), c), np.nan)
        if nom.any():
            a1[nom], ak[nom], d[nom] = nominal_to_mirt(self.phi[nom], self.n_cat[nom])
        return {"item_id": self.item_ids, "a1": a1, "ak": ak, "d": d}

    # ------------------------------------------------------------------ rows (mirt's columns)
    def rows(self) -> list[dict]:
        k = self.n_dims
        nomp = self.nominal_parameters()
        out = []
        for j, (iid, m) in enumerate(zip(self.item_ids, self.models)):
            c = int(self.n_cat[j])
            row: dict = {"item_id": iid, "model": m}
            if m == "nominal":
                row["a1"] = nomp["a1"][j]
                row.update({f"ak{q}": nomp["ak"][j, q] for q in range(c)})
                row.update({f"d{q}": nomp["d"][j, q] for q in range(c)})
            else:
                row.update({f"a{q + 1}": self.phi[j, q] for q in range(k)})
                if m in ("2pl", "3pl"):
                    row["d"] = self.phi[j, k]
                    if m == "3pl":  # mirt's g: the lower asymptote
                        row["g"] = float(1.0 / (1.0 + np.exp(-self.phi[j, extra_column(k, self.phi.shape[1])])))
                else:
                    row.update({f"d{q + 1}": self.phi[j, k + q] for q in range(c - 1)})
            out.append(row)
        return out

    @classmethod
    def from_rows(cls, rows, factor_names=None, latent_cov=None, latent_mean=None, source="rows"):
        rows = list(rows)
        if not rows:
            raise BankValidationError(f"{source}: no items")
        n_dims = len(factor_names) if factor_names is not None else max(
            sum(1 for key in r if key.startswith("a") and key[1:].isdigit() and r[key] not in ("", None))
            for r in rows)
        models: list[str] = []
        n_cat: list[int] = []
        parsed: list[tuple] = []

        def num(r, key, line):
            try:
                value = float(r[key])
            except (KeyError, TypeError, ValueError):
                raise BankValidationError(f"{source}, row {line} (item {_item_id(r)!r}), field {key!r}: "
                                          f"expected a number, got {r.get(key)!r}") from None
            if not math.isfinite(value):
                raise BankValidationError(f"{source}, row {line} (item {_item_id(r)!r}), field {key!r}: "
                                          "must be finite")
            return value

        for line, r in enumerate(rows, start=2):
            m = str(r.get("model", "")).strip().lower() or "2pl"
            if m not in KIND_OF_MODEL:
                raise BankValidationError(f"{source}, row {line} (item {_item_id(r)!r}), field 'model': {m!r} is "
                                          f"not one of {', '.join(MULTIDIM_MODELS)}")
            if m == "nominal":
                c = sum(1 for key in r if key.startswith("ak") and r[key] not in ("", None))
                ak = [num(r, f"ak{q}", line) for q in range(c)]
                d = [num(r, f"d{q}", line) for q in range(c)]
                parsed.append(("nominal", num(r, "a1", line), ak, d))
            elif m in ("2pl", "3pl"):
                c = 2
                g = num(r, "g", line) if m == "3pl" else None
                if g is not None and not 0.0 <= g < 1.0:
                    raise BankValidationError(f"{source}, row {line} (item {_item_id(r)!r}), field 'g': the lower "
                                              f"asymptote must be in [0, 1), got {g:g}")
                parsed.append((m, [num(r, f"a{q + 1}", line) for q in range(n_dims)], [num(r, "d", line)], g))
            else:
                c = 1 + sum(1 for key in r if key.startswith("d") and key[1:].isdigit() and r[key] not in ("", None))
                parsed.append((m, [num(r, f"a{q + 1}", line) for q in range(n_dims)],
                               [num(r, f"d{q + 1}", line) for q in range(c - 1)], None))
            models.append(m)
            n_cat.append(c)
        k_max = max(n_cat)
        phi = np.zeros((len(rows), n_internal(n_dims, k_max)))
        for j, p in enumerate(parsed):
            if p[0] == "nominal":
                one = nominal_from_mirt([p[1]], [p[2]], [p[3]])[0]
                c = n_cat[j]
                phi[j, 0] = one[0]
                phi[j, n_dims:n_dims + c - 1] = one[1:c]
                phi[j, n_dims + k_max - 1:n_dims + k_max - 1 + c - 2] = one[c:c + c - 2]
            else:
                phi[j, :n_dims] = p[1]
                phi[j, n_dims:n_dims + len(p[2])] = p[2]
                if p[0] == "3pl":
                    with np.errstate(divide="ignore"):
                        phi[j, extra_column(n_dims, phi.shape[1])] = np.log(p[3]) - np.log1p(-p[3])
        return cls([_item_id(r) or f"I{j + 1:04d}" for j, r in enumerate(rows)], models, phi, n_cat,
                   factor_names, latent_cov, latent_mean)

    def to_csv(self, path) -> None:
        rows = self.rows()
        fields: list[str] = []
        for r in rows:
            fields += [key for key in r if key not in fields]
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows({key: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                         for key, v in r.items()} for r in rows)

    @classmethod
    def read_csv(cls, path, factor_names=None, latent_cov=None, latent_mean=None) -> MultidimBank:
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as err:
            raise BankValidationError(f"{path}: cannot read ({err.strerror})") from None
        return cls.from_rows(rows, factor_names, latent_cov, latent_mean, source=str(path))

    def to_json(self, path=None) -> str:
        doc = {"factors": list(self.factor_names), "latent_mean": self.latent_mean.tolist(),
               "latent_cov": self.latent_cov.tolist(),
               "items": [{key: (float(v) if isinstance(v, (float, np.floating)) else v) for key, v in r.items()}
                         for r in self.rows()]}
        text = json.dumps(doc, indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def read_json(cls, path) -> MultidimBank:
        try:
            doc = json.loads(Path(path).read_text())
            return cls.from_rows(doc["items"], doc.get("factors"), doc.get("latent_cov"), doc.get("latent_mean"),
                                 source=str(path))
        except OSError as err:
            raise BankValidationError(f"{path}: cannot read ({err.strerror})") from None
        except (ValueError, KeyError, TypeError) as err:
            raise BankValidationError(f"{path}: not a multidimensional bank ({err})") from None
