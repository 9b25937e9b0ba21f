"""One plotting style for every figure the project draws (study reports, bank information curves).

Figures need matplotlib (the ``plots`` extra); :func:`pyplot` imports it headless (Agg) and says how
to install it otherwise.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["STYLE", "cut_line", "pyplot", "styled"]

#: the shared look: readable sizes at 100% zoom, light grids, no top/right frame, legends without boxes
STYLE = {
    "figure.dpi": 110, "savefig.dpi": 110, "savefig.bbox": "tight",
    "font.size": 9.5, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 9.5,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "legend.fontsize": 8, "legend.frameon": False, "lines.linewidth": 1.6,
}


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (ImportError naming the extra when it is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'adaptive-cat[plots]'") from None
    return plt


@contextmanager
def styled():
    """``with styled() as plt:`` draws in the shared style."""
    plt = pyplot()
    with plt.rc_context(STYLE):
        yield plt


def cut_line(ax, theta_cut: float, label: bool = True) -> None:
    """The pass standard as a labelled vertical line (the label goes into the legend)."""
    ax.axvline(theta_cut, color="tab:red", linestyle="--", linewidth=1.0,
               label=f"θ cut = {theta_cut:.2f}" if label else None)
