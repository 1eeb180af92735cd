"""Risk charts as PNG bytes (matplotlib, Agg backend: no display needed).

``window_chart``: each metric of a recent window with its dynamic threshold band and the flagged
points. ``snapshot_chart``: the inputs of a snapshot against their warning levels, and the factor
contributions of this prediction.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

__all__ = ["window_chart", "snapshot_chart", "PanelData"]

PanelData = Mapping[str, Sequence[float]]  # x, value, lower, upper, flagged (0/1)


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def window_chart(title: str, panels: Mapping[str, PanelData]) -> bytes:
    """One panel per metric: the values, the threshold band, anomalies (red) and warnings (orange)."""
    n = max(len(panels), 1)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.9 * n + 0.6), sharex=True, squeeze=False)
    for ax, (name, p) in zip(axes[:, 0], panels.items(), strict=False):
        x = np.asarray(p["x"], dtype=float)
        v = np.asarray(p["value"], dtype=float)
        ax.plot(x, v, color="#1f77b4", lw=1.2, label=name)
        if "lower" in p and len(p["lower"]):
            lo, hi = np.asarray(p["lower"], dtype=float), np.asarray(p["upper"], dtype=float)
            xs = x[len(x) - len(lo):]
            ax.fill_between(xs, lo, hi, color="#2ca02c", alpha=0.15, label="dynamic threshold")
        for key, color in (("warning", "#ff7f0e"), ("flagged", "#d62728")):
            if key in p and len(p[key]):
                mask = np.asarray(p[key], dtype=bool)
                xs, vs = x[len(x) - len(mask):], v[len(v) - len(mask):]
                ax.scatter(xs[mask], vs[mask], color=color, s=18, zorder=3, label=key)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    axes[-1, 0].set_xlabel("minutes (0 = now)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def snapshot_chart(title: str, values: Mapping[str, float], warn: Mapping[str, float],
                   contributions: Mapping[str, float]) -> bytes:
    """Left: each input as a share of its warning level; right: what pushes this prediction up or down."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = list(values)
    ratio = [values[k] / warn[k] if warn.get(k) else 0.0 for k in names]
    colors = ["#d62728" if r >= 1 else ("#ff7f0e" if r >= 0.8 else "#2ca02c") for r in ratio]
    a1.barh(names, ratio, color=colors)
    a1.axvline(1.0, color="k", lw=0.8, ls="--")
    a1.set_xlabel("value / warning level", fontsize=8)
    a1.tick_params(labelsize=7)
    cn = list(contributions)
    cv = [contributions[k] for k in cn]
    a2.barh(cn, cv, color=["#d62728" if c > 0 else "#2ca02c" for c in cv])
    a2.axvline(0.0, color="k", lw=0.8)
    a2.set_xlabel("change in failure probability", fontsize=8)
    a2.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
