"""Figures of the report: the feature-space grid (Fig. 1) and the threshold shift."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

from ..data.perturb import KINDS as PERTURBATION_KINDS  # noqa: E402
from ..data.table import canonical  # noqa: E402

# One colour per fine class, in the class order (EMBED: A, B, C, D).
CLASS_PALETTE = ["#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def class_colours(order: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {value: CLASS_PALETTE[i % len(CLASS_PALETTE)] for i, value in enumerate(order)}


def figure_panels(table: pd.DataFrame, order: dict[str, list[str] | None]) -> list[tuple[str, str]]:
    """(attribute, subgroup) panels of the subgroups present in ``table``: in the order
    given per attribute (the config's: HOLO, GEMS, FUJI; PS1-PS3), then any others largest first."""
    panels = []
    for attribute, named in order.items():
        counts = table[attribute].astype(str).value_counts()
        ranked = [subgroup for subgroup in named or [] if subgroup in counts.index]
        ranked += sorted(set(counts.index) - set(ranked), key=lambda subgroup: (-int(counts[subgroup]), subgroup))
        panels += [(attribute, subgroup) for subgroup in ranked]
    return panels


def _kde(values: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    if len(values) < 3 or np.std(values) == 0:
        return None
    return gaussian_kde(values)(grid)


def feature_kde_grid(
    pc1: dict[str, pd.DataFrame],
    targets: dict[str, tuple[str | None, str | None]],
    baseline: str,
    path: str,
    shifts: pd.DataFrame | None = None,
    panels: list[tuple[str, str]] | None = None,
    class_column: str = "density",
    classes: dict[str, int] | None = None,
) -> None:
    """One row per scenario, one panel per subgroup: KDE of PC1 per fine class (EMBED: density).

    The baseline model's curves are drawn dashed in every row; the panel of the
    subgroup a scenario biases is framed in red. Each curve is scaled to its own peak,
    so a narrow class (A) does not flatten the wide ones (C, D), and each row's x-range
    is where 98% of its two models' values lie, so one long tail does not squeeze the
    rest. With ``shifts`` (``features.pc1_median_shift``), each panel states how far the
    class-1 medians (C, D) moved against the baseline. ``classes``: fine class -> label,
    in the order of the legend (EMBED's A-D when not given).
    """
    classes = classes or {"A": 0, "B": 0, "C": 1, "D": 1}
    colours = class_colours(list(classes))
    positive = [value for value, label in classes.items() if label == 1]
    scenarios = list(pc1)
    if panels is None:
        panels = figure_panels(pc1[baseline], {"manufacturer": ["HOLO", "GEMS", "FUJI"], "pseudo_subgroup": None})
    fig, axes = plt.subplots(len(scenarios), len(panels), figsize=(2.3 * len(panels), 1.75 * len(scenarios)),
                             squeeze=False)
    for r, scenario in enumerate(scenarios):
        layers = [(scenario, "-")] if scenario == baseline else [(baseline, "--"), (scenario, "-")]
        values = np.concatenate([pc1[source]["pc1"].to_numpy() for source, _ in layers])
        low, high = (float(v) for v in np.quantile(values, [0.01, 0.99]))
        margin = 0.05 * (high - low)
        grid = np.linspace(low - margin, high + margin, 200)
        for c, (attribute, subgroup) in enumerate(panels):
            ax = axes[r][c]
            for source, style in layers:
                table = pc1[source]
                group = table[table[attribute].astype(str) == subgroup]
                for density, colour in colours.items():
                    class_values = group.loc[group[class_column].map(canonical) == density, "pc1"].to_numpy()
                    curve = _kde(class_values[(class_values >= grid[0]) & (class_values <= grid[-1])], grid)
                    if curve is not None and curve.max() > 0:
                        ax.plot(grid, curve / curve.max(), style, color=colour, lw=1.3 if style == "-" else 0.9,
                                alpha=1.0 if style == "-" else 0.65,
                                label=density if (r == 0 and c == 0 and style == "-") else None)
            if shifts is not None and scenario != baseline:
                here = shifts[(shifts["scenario"] == scenario) & (shifts["attribute"] == attribute)
                              & (shifts["subgroup"].astype(str) == subgroup)]
                here = here.set_index(here[class_column].map(canonical))
                text = "  ".join(f"{d} {here.loc[d, 'shift']:+.2f}" for d in positive if d in here.index)
                ax.text(0.98, 0.95, text, transform=ax.transAxes, ha="right", va="top", fontsize=6.5,
                        color="#333333")
            if targets.get(scenario) == (attribute, subgroup):
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2.0)
            ax.set_xlim(grid[0], grid[-1])
            ax.set_ylim(0, 1.18)
            ax.set_yticks([])
            ax.tick_params(axis="x", labelsize=6)
            if r == 0:
                ax.set_title(subgroup, fontsize=9)
            if c == 0:
                ax.set_ylabel(scenario, fontsize=9)
            if r == len(scenarios) - 1:
                ax.set_xlabel("PC1 (standardised)", fontsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, title=class_column, loc="upper right", fontsize=8)
    ends = [value for value in classes if shifts is not None and value in set(shifts[class_column].map(canonical))]
    scale = f", {ends[0]} = 0 and {ends[-1]} = 1" if len(ends) >= 2 else ""
    note = f"; numbers: shift of the {' and '.join(positive)} medians against it{scale}" if shifts is not None else ""
    fig.suptitle(f"PC1 of test features per {class_column} class, each curve scaled to its peak "
                 f"(solid: scenario, dashed: {baseline}{note})", fontsize=9)
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


def detection_figure(
    tables: dict[str, pd.DataFrame], targets: dict[str, tuple[str | None, str | None]], path: str
) -> None:
    """Estimated label-error rate per subgroup (95% interval) against the injected rate, one panel per scenario.

    The subgroup a scenario biased is drawn in red; the injected rate (known only
    because the workflow injected it) is the cross.
    """
    scenarios = list(tables)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(2.6 * len(scenarios), 2.8), sharey=True, squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        table = tables[scenario].reset_index(drop=True)
        y = np.arange(len(table))[::-1]
        target = targets.get(scenario, (None, None))
        biased = ((table["attribute"] == target[0]) & (table["subgroup"] == target[1])).to_numpy()
        colours = np.where(biased, "#d73027", "#4575b4")
        errors = np.vstack([table["error_rate"] - table["ci_low"], table["ci_high"] - table["error_rate"]])
        for i in range(len(table)):
            ax.errorbar(table["error_rate"][i], y[i], xerr=errors[:, i : i + 1], fmt="o", color=colours[i], ms=4, capsize=2)
            ax.annotate(f"#{table['rank'][i]}", (table["ci_high"][i], y[i]), xytext=(3, -3),
                        textcoords="offset points", fontsize=6, color=colours[i])
        ax.scatter(table["injected_rate"], y, marker="x", color="black", s=18, label="injected", zorder=3)
        ax.set_yticks(y, list(table["subgroup"]), fontsize=7)
        for boundary in np.flatnonzero(table["attribute"].to_numpy()[1:] != table["attribute"].to_numpy()[:-1]):
            ax.axhline(y[boundary] - 0.5, color="#999999", lw=0.5)
        ax.set_title(scenario, fontsize=9)
        ax.set_xlabel("label-error rate", fontsize=8)
        ax.set_xlim(left=0)
    axes[0][0].legend(fontsize=6, loc="lower right")
    fig.suptitle("Estimated label-error rate per subgroup (#rank within its attribute); red: the biased subgroup", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _frame_image(ax, image: np.ndarray, colour: str | None) -> None:
    if image.ndim == 3:  # a colour cache row, (3, height, width): shown in its colours
        ax.imshow(np.moveaxis(image, 0, -1).clip(0, 1), interpolation="nearest")
    else:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour or "#bbbbbb")
        spine.set_linewidth(2.5 if colour else 0.5)


def image_grid_figure(
    selection: pd.DataFrame, images: dict[str, np.ndarray], title: str, path: str,
    columns: list[str] | tuple[str, ...] = ("A", "B", "C", "D"), class_column: str = "density",
) -> None:
    """Rows: subgroups; column blocks: fine classes (density A-D), each block ``per_cell`` images; flipped images framed red."""
    rows = list(dict.fromkeys(selection["row"]))
    columns = list(columns)
    per_cell = int(selection["position"].max()) + 1 if len(selection) else 1
    fig, axes = plt.subplots(
        len(rows), len(columns) * per_cell, figsize=(0.55 * len(columns) * per_cell + 0.6, 0.8 * len(rows) + 0.7),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for item in selection.itertuples():
        ax = axes[rows.index(item.row)][columns.index(item.column) * per_cell + item.position]
        ax.axis("on")
        _frame_image(ax, images[item.image_id], "#d73027" if item.flipped else None)
    for r, row in enumerate(rows):
        axes[r][0].axis("on")
        axes[r][0].set_ylabel(row, fontsize=8)
    for c, column in enumerate(columns):
        axes[0][c * per_cell].set_title(f"{class_column} {column}", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, w_pad=0.1, h_pad=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loss_figure(
    worst: pd.DataFrame, images: dict[str, np.ndarray], row_attribute: str, title: str, path: str,
    class_column: str = "density",
) -> None:
    """The highest-loss images, worst first, captioned with subgroup, fine class, given label and score."""
    n_columns = 8
    n_rows = max(1, -(-len(worst) // n_columns))
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(1.2 * n_columns, 2.2 * n_rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, item in enumerate(worst.itertuples()):
        ax = axes[i // n_columns][i % n_columns]
        ax.axis("on")
        _frame_image(ax, images[item.image_id], "#d73027" if item.flipped else None)
        ax.set_title(
            f"{worst.at[item.Index, row_attribute]} {canonical(worst.at[item.Index, class_column])} "
            f"y={item.label_given}\np1={item.score:.2f}"
            + (" flipped" if item.flipped else ""),
            fontsize=6,
        )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.8, rect=(0, 0, 1, 1 - 0.35 / (2.2 * n_rows + 0.5)))
    fig.savefig(path, dpi=110)
    plt.close(fig)


ATTRIBUTE_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]


STRENGTH_UNITS = {"lowpass": "kept diameter (px)", "highpass": "removed diameter (px)", "noise": "noise sigma",
                  "crop": "kept area share", "grey": "share of colour removed"}


def perturbation_figure(table: pd.DataFrame, path: str) -> None:
    """Macro one-vs-rest AUC against perturbation strength, one panel per kind, one line per attribute.

    The unperturbed classifier's AUC is the dashed line of the same colour; 0.5 is chance.
    """
    macro = table[table["subgroup"] == "all (macro)"]
    kinds = [k for k in PERTURBATION_KINDS if k in set(macro["kind"])]
    attributes = list(dict.fromkeys(macro["attribute"]))
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.0 * max(1, len(kinds)), 2.8), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=False):
        for colour, attribute in zip(ATTRIBUTE_COLOURS * 3, attributes, strict=False):
            rows = macro[(macro["attribute"] == attribute) & (macro["kind"] == kind)].sort_values("strength")
            ax.plot(rows["strength"], rows["auc"], "o-", color=colour, label=attribute, ms=4)
            plain = macro[(macro["attribute"] == attribute) & (macro["kind"] == "none")]
            if len(plain):
                ax.axhline(float(plain["auc"].iloc[0]), color=colour, ls="--", lw=0.8)
        ax.axhline(0.5, color="#999999", ls=":", lw=0.8)
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel(STRENGTH_UNITS[kind], fontsize=8)
        ax.set_ylim(0.4, 1.02)
    axes[0][0].set_ylabel("macro one-vs-rest AUC", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Separability under perturbation (dashed: unperturbed)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dose_response_figure(table: pd.DataFrame, path: str) -> None:
    """TPR and FPR change against the bias rate: a row per metric, a column per scenario x threshold source.

    One line per subgroup of the scenario's attribute with its 95% interval; the
    biased subgroup is drawn thicker.
    """
    panels = list(dict.fromkeys(zip(table["scenario"], table["threshold_source"], strict=True)))
    fig, axes = plt.subplots(2, len(panels), figsize=(2.8 * len(panels), 4.6), sharex=True, squeeze=False)
    for c, (scenario, source) in enumerate(panels):
        part = table[(table["scenario"] == scenario) & (table["threshold_source"] == source)]
        attribute = part["target_attribute"].iloc[0]
        part = part[part["attribute"] == attribute]
        for r, metric in enumerate(("tpr", "fpr")):
            ax = axes[r][c]
            for colour, (subgroup, rows) in zip(ATTRIBUTE_COLOURS * 3, part.groupby("subgroup", sort=True), strict=False):
                rows = rows.sort_values("rate")
                target = subgroup == rows["target_subgroup"].iloc[0]
                ax.plot(rows["rate"], rows[f"{metric}_change"], "o-", color=colour, lw=2.2 if target else 1.0, ms=4,
                        label=subgroup + (" (biased)" if target else ""))
                ax.fill_between(rows["rate"], rows[f"{metric}_change_ci_low"], rows[f"{metric}_change_ci_high"],
                                color=colour, alpha=0.15)
            ax.axhline(0, color="#999999", lw=0.8)
            if r == 0:
                ax.set_title(f"{scenario}, {source} val labels", fontsize=8)
                ax.legend(fontsize=6, loc="lower left")
            else:
                ax.set_xlabel("bias rate", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{metric.upper()} change", fontsize=8)
    fig.suptitle("Dose-response: change to the clean model against the bias rate (95% intervals)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finish(fig, legend_axes, title: str, path: str) -> None:
    """The legend in one panel, the title, and the figure written and closed."""
    legend_axes.legend(fontsize=5.5, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def audit_figure(curves: dict[str, pd.DataFrame], targets: dict[str, tuple[str, str]], path: str) -> None:
    """Test TPR and FPR against the number of relabelled validation patients.

    Two rows per bias scenario (TPR, FPR), a panel per subgroup of the attribute it
    biases. Random audits: mean over draws with the 10-90% range of the draws;
    detection-chosen audits: one line. Dotted: the biased-label threshold (no audit);
    dashed: the clean-label threshold (every validation patient relabelled).
    """
    scenarios = list(curves)
    columns = max(curves[s].loc[curves[s]["attribute"] == targets[s][0], "subgroup"].nunique() for s in scenarios)
    fig, axes = plt.subplots(2 * len(scenarios), columns, figsize=(2.6 * columns, 1.9 * 2 * len(scenarios)),
                             squeeze=False)
    for row, scenario in enumerate(scenarios):
        attribute, target = targets[scenario]
        curve = curves[scenario]
        curve = curve[curve["attribute"] == attribute]
        sizes = sorted(curve["n_requested"].unique())
        positions = {n: i for i, n in enumerate(sizes)}
        n_val = int(curve["n_relabelled"].max())
        labels = ["0" if n == 0 else ("all" if n >= n_val else str(n)) for n in sizes]
        for col in range(columns):
            for offset in (0, 1):
                axes[2 * row + offset][col].set_visible(False)
        for col, (subgroup, part) in enumerate(curve.groupby("subgroup", sort=True)):
            for offset, metric in enumerate(("tpr", "fpr")):
                ax = axes[2 * row + offset][col]
                ax.set_visible(True)
                random = part[part["strategy"] == "random"].groupby("n_requested")[metric]
                x = [positions[n] for n in random.mean().index]
                ax.plot(x, random.mean().to_numpy(), "o-", color="#1f78b4", ms=3, lw=1.2, label="random patients")
                ax.fill_between(x, random.quantile(0.1).to_numpy(), random.quantile(0.9).to_numpy(),
                                color="#1f78b4", alpha=0.18, lw=0)
                suspect = part[part["strategy"] == "suspect"].sort_values("n_requested")
                if len(suspect):
                    ax.plot([positions[n] for n in suspect["n_requested"]], suspect[metric].to_numpy(), "s-",
                            color="#e31a1c", ms=3, lw=1.2, label="most suspect first")
                ends = random.mean()
                ax.axhline(float(ends.iloc[0]), color="#555555", ls=":", lw=1.0, label="biased-label threshold")
                ax.axhline(float(ends.iloc[-1]), color="#555555", ls="--", lw=1.0, label="clean-label threshold")
                ax.set_xticks(range(len(sizes)), labels, fontsize=6)
                ax.tick_params(axis="y", labelsize=6)
                title = f"{scenario}: {subgroup}" + (" (biased)" if subgroup == target else "")
                if offset == 0:
                    ax.set_title(title, fontsize=8, color="#c00000" if subgroup == target else "black")
                if col == 0:
                    ax.set_ylabel(f"test {metric.upper()}", fontsize=7)
                if offset == 1:
                    ax.set_xlabel("validation patients relabelled", fontsize=7)
    _finish(fig, axes[0][0], "What a clean audit buys: the threshold re-picked with n validation patients relabelled", path)


REMEDY_STYLE = {
    "relabel_suspect": ("#e31a1c", "s-", "relabel most suspect"),
    "relabel_random": ("#1f78b4", "o-", "relabel random"),
    "drop_flagged": ("#33a02c", "--", "drop flagged (no audit)"),
    "forward_correction": ("#6a3d9a", "-.", "loss correction (no audit)"),
}


def remedy_figure(table: pd.DataFrame, path: str) -> None:
    """The biased subgroup's test TPR change to the clean model against the audit budget.

    A row per remedied scenario, a column per threshold source. Budgeted remedies are
    lines over the budgets (95% interval shaded); a remedy without a budget is a
    horizontal line; dotted: the scenario's own change (no remedy); grey: 0 (the clean model).
    """
    biased = table[table["biased_subgroup"].astype(bool)]
    scenarios = list(dict.fromkeys(biased["scenario"]))
    sources = list(dict.fromkeys(biased["threshold_source"]))
    budgets = sorted(biased["budget"].dropna().unique())
    fig, axes = plt.subplots(len(scenarios), len(sources), figsize=(3.2 * len(sources), 2.3 * len(scenarios)),
                             squeeze=False)  # fmt: skip
    for row, scenario in enumerate(scenarios):
        for col, source in enumerate(sources):
            ax = axes[row][col]
            part = biased[(biased["scenario"] == scenario) & (biased["threshold_source"] == source)]
            span = [min(budgets, default=0.0), max(budgets, default=1.0)]
            for remedy, lines in part.groupby("remedy", sort=False):
                colour, style, label = REMEDY_STYLE.get(remedy, ("#6a3d9a", "^-", remedy))
                if lines["budget"].notna().all():
                    lines = lines.sort_values("budget")
                    ax.plot(lines["budget"], lines["tpr_change"], style, color=colour, ms=3, lw=1.2, label=label)
                    ax.fill_between(lines["budget"], lines["tpr_change_ci_low"], lines["tpr_change_ci_high"],
                                    color=colour, alpha=0.15, lw=0)  # fmt: skip
                else:
                    value = float(lines["tpr_change"].iloc[0])
                    ax.plot(span, [value, value], style, color=colour, lw=1.2, label=label)
            ax.axhline(float(part["scenario_tpr_change"].iloc[0]), color="#555555", ls=":", lw=1.0, label="no remedy")
            ax.axhline(0.0, color="#999999", lw=0.8, label="clean model")
            ax.tick_params(labelsize=6)
            subgroup = part["subgroup"].iloc[0]
            ax.set_title(f"{scenario}: {subgroup}'s TPR, {source}-label threshold", fontsize=7.5)
            if col == 0:
                ax.set_ylabel("change to the clean model", fontsize=7)
            if row == len(scenarios) - 1:
                ax.set_xlabel("share of training and validation patients audited", fontsize=7)
    _finish(fig, axes[0][0], "What fixing the training labels buys", path)
