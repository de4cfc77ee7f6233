"""Figures of the report: the feature-space grid (Fig. 1) and the threshold shift."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

DENSITY_COLOURS = {"A": "#1b9e77", "B": "#7570b3", "C": "#d95f02", "D": "#e7298a"}
PANELS = [("manufacturer", "HOLO"), ("manufacturer", "GEMS"), ("manufacturer", "FUJI"),
          ("pseudo_subgroup", "PS1"), ("pseudo_subgroup", "PS2"), ("pseudo_subgroup", "PS3")]


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    if len(values) < 3 or np.std(values) == 0:
        return None
    return gaussian_kde(values)(grid)


def feature_kde_grid(
    pc1: dict[str, pd.DataFrame], targets: dict[str, tuple[str | None, str | None]], baseline: str, path: str
) -> None:
    """One row per scenario, one panel per subgroup: KDE of PC1 per density class.

    The baseline model's curves are drawn dashed in every row; the panel of the
    subgroup a scenario biases is framed in red.
    """
    scenarios = list(pc1)
    panels = [p for p in PANELS if any((t[p[0]] == p[1]).any() for t in pc1.values())]
    low = min(float(t["pc1"].quantile(0.001)) for t in pc1.values())
    high = max(float(t["pc1"].quantile(0.999)) for t in pc1.values())
    grid = np.linspace(low - 0.5, high + 0.5, 200)
    fig, axes = plt.subplots(len(scenarios), len(panels), figsize=(2.3 * len(panels), 1.7 * len(scenarios)),
                             sharex=True, squeeze=False)
    for r, scenario in enumerate(scenarios):
        for c, (attribute, subgroup) in enumerate(panels):
            ax = axes[r][c]
            layers = [(scenario, "-")] if scenario == baseline else [(baseline, "--"), (scenario, "-")]
            for source, style in layers:
                table = pc1[source]
                group = table[table[attribute] == subgroup]
                for density, colour in DENSITY_COLOURS.items():
                    curve = _kde(group.loc[group["density"] == density, "pc1"].to_numpy(), grid)
                    if curve is not None:
                        ax.plot(grid, curve, style, color=colour, lw=1.2 if style == "-" else 0.9,
                                alpha=1.0 if style == "-" else 0.6,
                                label=density if (r == 0 and c == 0 and style == "-") else None)
            if targets.get(scenario) == (attribute, subgroup):
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2.0)
            ax.set_yticks([])
            if r == 0:
                ax.set_title(subgroup, fontsize=9)
            if c == 0:
                ax.set_ylabel(scenario, fontsize=9)
            if r == len(scenarios) - 1:
                ax.set_xlabel("PC1", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title="density", loc="upper right", fontsize=8)
    fig.suptitle(f"PC1 of test features per density class (solid: scenario, dashed: {baseline})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.95, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def threshold_figure(scores: dict[str, pd.DataFrame], thresholds: pd.DataFrame, path: str) -> None:
    """Validation score histograms per clean class, with the clean- and biased-label thresholds."""
    scenarios = list(scores)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(2.6 * len(scenarios), 2.4), sharey=True, squeeze=False)
    bins = np.linspace(0, 1, 41)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        val = scores[scenario]
        for label, colour, name in ((0, "#4575b4", "clean 0 (A/B)"), (1, "#d73027", "clean 1 (C/D)")):
            ax.hist(val.loc[val["label_clean"] == label, "score"], bins=bins, color=colour, alpha=0.5, label=name,
                    density=True)
        flipped = val[val["flipped"] == 1]
        if len(flipped):
            ax.hist(flipped["score"], bins=bins, histtype="step", color="black", label="flipped", density=True)
        rows = thresholds[thresholds["scenario"] == scenario].set_index("threshold_source")["threshold"]
        for source, style in (("clean", "-"), ("biased", ":")):
            if source in rows.index:
                ax.axvline(rows[source], color="black", ls=style, lw=1.3, label=f"threshold ({source} val)")
        ax.set_title(scenario, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_yscale("log")
    axes[0][0].legend(fontsize=6, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
