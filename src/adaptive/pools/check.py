"""Check a bank or a pool directory, and summarize it (``adaptive bank check`` / ``adaptive bank info``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bank import ItemBank
from ..exceptions import BankValidationError, ScoringError
from ..plotting import STYLE, cut_line, pyplot
from ..scoring.standard import PassStandard

__all__ = ["PoolInfo", "check_pool", "content_warnings", "pool_info"]

#: options whose meaning depends on their place among the others: they need ``shuffle = false``
_ORDER_BOUND = re.compile(r"(?i:\b(all|none|both|neither) of the (above|preceding|following)\b)"
                          r"|\b(?:[Bb]oth )?[A-H] (?:and|or) [A-H]\b|\b(?i:only) [A-H]\b(?! [a-z])")
#: a key letter's share of the keyed items may lie within this factor of an even share (20-30% for 4 options)
KEY_SHARE_TOLERANCE = 0.2
#: fewer keyed items (of one option count) than this are too few to judge the key balance
KEY_BALANCE_MIN_ITEMS = 20


def _normalized(option: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", option.casefold())


def content_warnings(bank: ItemBank) -> list[str]:
    """Content an item writer should look at, one line each (the bank is still valid):

    * key-letter imbalance: among the keyed items with k options (at least 20), a letter keying less
      than 0.8/k or more than 1.2/k of them (20-30% for four options), so guessing one letter pays;
    * options that differ only in case, spacing or punctuation;
    * the key as the one clearly longest option (twice as long as, and 20 characters longer than,
      every distractor), a cue test-wise candidates use;
    * "all/none of the above", "A and B" and the like in an item that may be shuffled (set
      ``shuffle = false`` on it).
    """
    out = []
    keyed: dict[int, list[str]] = {}
    for pos, it in enumerate(bank.items):
        c = it.content
        if c is None or not c.options:
            continue
        where = f"item {it.id!r} (position {pos})"
        if c.key is not None:
            keyed.setdefault(len(c.options), []).append(c.key)
        norm = [_normalized(o) for o in c.options]
        dup = sorted({o for o in c.options if norm.count(_normalized(o)) > 1})
        if dup:
            out.append(f"{where}, field 'content.options': options {dup} differ only in case, spacing or punctuation; "
                       "make them distinct")
        if c.key is not None and len(c.options) > 2:
            k = ord(c.key) - ord("A")
            longest_other = max(len(o) for j, o in enumerate(c.options) if j != k)
            if len(c.options[k]) > 2 * longest_other and len(c.options[k]) - longest_other >= 20:
                out.append(f"{where}, field 'content.options': the key ({c.key}) is by far the longest option "
                           f"({len(c.options[k])} characters, the others at most {longest_other}); a test-wise "
                           "candidate picks it without knowing the answer: even out the lengths")
        if c.shuffle:
            bound = [o for o in c.options if _ORDER_BOUND.search(o)]
            if bound:
                out.append(f"{where}, field 'content.shuffle': option {bound[0]!r} refers to other options' places; "
                           "set shuffle = false so the order is kept")
    for n_opt, keys in sorted(keyed.items()):
        if len(keys) < KEY_BALANCE_MIN_ITEMS:
            continue
        even = 1.0 / n_opt
        lo, hi = even * (1 - KEY_SHARE_TOLERANCE), even * (1 + KEY_SHARE_TOLERANCE)
        for j in range(n_opt):
            letter = chr(ord("A") + j)
            share = keys.count(letter) / len(keys)
            if not lo - 1e-12 <= share <= hi + 1e-12:
                out.append(f"keys of the {len(keys)} items with {n_opt} options: {letter} keys "
                           f"{keys.count(letter)} ({share:.0%}), outside {lo:.0%}-{hi:.0%}; answering {letter} "
                           "everywhere would pay: reorder options so each letter keys about as many items")
    return out


def _pool_dir(path: str | Path) -> Path | None:
    """The pool directory when ``path`` is one (design.json and standard.json live there)."""
    p = Path(path)
    return p if p.is_dir() else None


def check_pool(path: str | Path) -> tuple[ItemBank | None, list[str]]:
    """Every problem of a bank file or pool directory, one line each (empty list: the bank is sound).

    * the bank itself: each item's fields (ids, parameters, models), duplicate ids, enemies that do
      not exist, domains outside the blueprint -- all reported, by item and field;
    * items with content: the key among the options, distinct options, a rationale, and the
      code set's year when a code set is named;
    * the blueprint: every domain has operational items;
    * in a pool directory, ``design.json``: the design can be met with this bank (lengths, blueprint
      and enemies, pretest count), and ``standard.json``: its reference form is in the bank and
      its θ cut is the one the bank's parameters give.
    """
    pool_dir = _pool_dir(path)
    try:
        bank = ItemBank.load(path)
    except BankValidationError as err:
        return None, list(err.problems)
    problems = []
    for pos, it in enumerate(bank.items):
        where = f"item {it.id!r} (position {pos}), "
        if it.code_set is not None and it.code_set_year is None:
            problems.append(f"{where}field 'code_set_year': the code set {it.code_set!r} needs the year of the "
                            "edition the item was written against")
        c = it.content
        if c is not None and c.options:
            if c.key is None:
                problems.append(f"{where}field 'content.key': an item with options needs a key")
            if not c.rationale:
                problems.append(f"{where}field 'content.rationale': missing; give a one-line rationale for the key")
    if bank.blueprint is not None:
        for d in bank.blueprint.domains:
            if not any(it.domain == d.name and it.status == "operational" for it in bank.items):
                problems.append(f"blueprint, domain {d.name!r}: no operational item in the bank")
    if pool_dir is not None:
        problems += _check_design_and_standard(bank, pool_dir)
    return bank, problems


def _check_design_and_standard(bank: ItemBank, pool_dir: Path) -> list[str]:
    from ..cat.design import ExamDesign
    from ..cat.engine import CatEngine
    from ..exceptions import DesignError

    problems = []
    design = None
    if (pool_dir / "design.json").exists():
        try:
            design = ExamDesign.load(pool_dir / "design.json")
            CatEngine(design, bank)
        except DesignError as err:
            lines = [ln.strip() for ln in str(err).splitlines()]
            listed = [ln.removeprefix("- ") for ln in lines if ln.startswith("- ")]
            problems += [f"design.json: {ln}" for ln in (listed or lines[:1])]
    std_path = pool_dir / "standard.json"
    if std_path.exists():
        try:
            std = PassStandard.load(std_path)
        except ScoringError as err:
            return problems + [f"standard.json: {ln.strip().removeprefix('- ')}" for ln in str(err).splitlines()[1:]
                               or [str(err)]]
        missing = [i for i in std.reference_form if i not in bank.index]
        if missing:
            problems.append(f"standard.json, field 'reference_form': items {missing} are not in the bank")
        else:
            theta = std.theta_cut_for(bank)
            if abs(theta - std.theta_cut) > 1e-4:
                problems.append(f"standard.json, field 'theta_cut': {std.theta_cut} but the bank's parameters give "
                                f"{theta} for {std.raw_cut} of {std.form_length}; rerun the pool's calibration script")
            if design is not None and design.theta_cut is not None and abs(design.theta_cut - std.theta_cut) > 1e-9:
                problems.append(f"design.json, field 'scale.theta_cut': {design.theta_cut} differs from the standard's "
                                f"{std.theta_cut}")
    return problems


@dataclass(frozen=True)
class PoolInfo:
    """Counts and parameter summaries of a bank (``adaptive bank info``)."""

    bank: ItemBank
    counts: dict[str | None, dict[str, int]]
    theta: np.ndarray
    information: np.ndarray
    reference_information: np.ndarray | None
    theta_cut: float | None

    def table(self) -> str:
        statuses = ("operational", "pretest", "retired")
        target = {d.name: d.proportion for d in self.bank.blueprint.domains} if self.bank.blueprint else {}
        rows = [["domain", *statuses, "total", "target"]]
        for dom, c in self.counts.items():
            p = target.get(dom) if dom is not None else None
            label = dom if dom is not None else "(no domain)"
            rows.append([label, *(str(c.get(s, 0)) for s in statuses), str(sum(c.values())),
                         "-" if p is None else f"{p:.0%}"])
        tot = {s: sum(c.get(s, 0) for c in self.counts.values()) for s in statuses}
        rows.append(["all", *(str(tot[s]) for s in statuses), str(len(self.bank)), ""])
        w = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w[k]) if k == 0 else v.rjust(w[k]) for k, v in enumerate(r)) for r in rows]
        lines.insert(1, "  ".join("-" * x for x in w))
        return "\n".join(lines)

    def parameter_summary(self) -> str:
        arr = self.bank.compile()
        lines = []
        for s in ("operational", "pretest"):
            sel = np.array([it.status == s for it in self.bank.items])
            if not sel.any():
                continue
            parts = [f"{s} ({int(sel.sum())}):"]
            for name, v in (("a", arr.a[sel]), ("b", arr.thresholds[sel, 0]), ("c", arr.c[sel])):
                parts.append(f"{name} mean {np.mean(v):.2f} [{np.min(v):.2f}, {np.max(v):.2f}]")
            lines.append("  ".join(parts))
        k = int(np.argmax(self.information))
        lines.append(f"operational pool information peaks at theta {self.theta[k]:.2f} ({self.information[k]:.1f})")
        if self.theta_cut is not None:
            at = float(np.interp(self.theta_cut, self.theta, self.information))
            lines.append(f"at the theta cut {self.theta_cut:.4f}: pool information {at:.1f}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Draw the test information curve(s) to a PNG (needs matplotlib: ``pip install adaptive-cat[plots]``)."""
        try:
            plt = pyplot()
        except ImportError:  # pragma: no cover - depends on the environment
            raise BankValidationError(["drawing the information curve needs matplotlib: pip install "
                                       "'adaptive-cat[plots]'"]) from None
        path = Path(path)
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(7, 4.2))
            n_oper = sum(it.status == "operational" for it in self.bank.items)
            ax.plot(self.theta, self.information, label=f"operational pool ({n_oper} items)", color="tab:blue")
            if self.reference_information is not None:
                ax.plot(self.theta, self.reference_information, color="tab:orange",
                        label="reference form of the pass standard")
            if self.theta_cut is not None:
                cut_line(ax, self.theta_cut)
            ax.set_xlabel("θ (logits)")
            ax.set_ylabel("Test information")
            ax.set_title(f"Test information: {self.bank.name} v{self.bank.version}")
            ax.legend()
            fig.savefig(path, format="png")
            plt.close(fig)
        return path


def pool_info(path: str | Path) -> PoolInfo:
    """Counts by domain and status, and information curves, of a bank file or pool directory."""
    pool_dir = _pool_dir(path)
    bank = ItemBank.load(path)
    domains = list(bank.blueprint.names) if bank.blueprint else []
    domains += sorted({it.domain or "(none)" for it in bank.items} - set(domains))
    counts: dict[str | None, dict[str, int]] = {d: {} for d in domains}
    for it in bank.items:
        c = counts[it.domain or "(none)"]
        c[it.status] = c.get(it.status, 0) + 1
    theta = np.linspace(-4.0, 4.0, 161)
    arr = bank.compile()
    info = arr.information(theta)  # (T, I)
    operational = np.array([it.status == "operational" for it in bank.items])
    ref_info = cut = None
    if pool_dir is not None and (pool_dir / "standard.json").exists():
        std = PassStandard.load(pool_dir / "standard.json")
        idx = [bank.index[i] for i in std.reference_form if i in bank.index]
        ref_info = info[:, idx].sum(axis=1) if idx else None
        cut = std.theta_cut
    elif pool_dir is not None and (pool_dir / "design.json").exists():
        from .cat.design import ExamDesign

        cut = ExamDesign.load(pool_dir / "design.json").theta_cut
    return PoolInfo(bank=bank, counts=counts, theta=theta, information=info[:, operational].sum(axis=1),
                    reference_information=ref_info, theta_cut=cut)
