"""The study's qualitative findings (its Table 2 patterns), checked against this run's Table 2.

Each bias scenario is classed by its target subgroup: *not separable* (its
classifier's one-vs-rest AUC is below the separability threshold), a *separable
minority* or a *separable majority* (more than half of the attribute's images in the cohort).
The study then predicts:

(a) not separable: with the clean-label threshold no subgroup's TPR moves
    (|change| below ``no_change``); with the biased-label threshold every
    subgroup's TPR and FPR fall.
(b) separable minority: with either threshold the biased subgroup's TPR and FPR
    fall, and every other subgroup's TPR moves by less than half as much.
(c) separable majority, biased-label threshold: every subgroup's TPR and FPR
    fall, the biased subgroup's TPR the most.

A rate "falls" when the change is at least a minimum effect size (``min_tpr_change``,
``min_fpr_change``) *and* its 95% interval lies below 0: a finding never rests on a
difference the intervals do not support, nor on one too small to matter (a 0.02
drop with a tight interval is not the study's 0.17).

An FPR near 0 cannot fall by an absolute amount larger than itself, so a fall of
``min_fpr_change_relative`` of the clean model's FPR also counts when that is the
smaller: the study reports changes relative to the clean baseline, and its FPR falls
are 49-88% of it (a subgroup at 0.03 falling to 0.015 is such a fall; one at 0.10
must still fall by 0.02). TPRs near 0.9 have no such floor, so TPR stays absolute.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class EffectSizes:
    """What counts as a change in the findings check (absolute rates, not percent)."""

    min_tpr_change: float = 0.05
    min_fpr_change: float = 0.02
    min_fpr_change_relative: float = 0.3
    no_change: float = 0.03

    def minimum(self, metric: str, baseline: float) -> float:
        """The smallest fall that counts for a rate that was ``baseline`` in the clean model."""
        if metric == "tpr":
            return self.min_tpr_change
        return min(self.min_fpr_change, self.min_fpr_change_relative * baseline)

    def describe(self) -> str:
        return (
            f"by at least {self.min_tpr_change:g} (TPR) and {self.min_fpr_change:g} or "
            f"{self.min_fpr_change_relative:.0%} of the clean FPR, whichever is smaller (FPR)"
        )


FINDING_COLUMNS = ["finding", "scenario", "threshold_source", "expected", "observed", "holds"]


def classify_target(
    separability: pd.DataFrame | None, shares: pd.Series, subgroup: str, separable_auc: float
) -> str:
    """'not separable', 'separable minority', 'separable majority', or 'unknown' without a classifier."""
    if separability is None or subgroup not in set(separability["subgroup"].astype(str)):
        return "unknown"
    auc = float(separability.set_index(separability["subgroup"].astype(str)).loc[subgroup, "auc"])
    if auc < separable_auc:
        return "not separable"
    return "separable majority" if float(shares.get(subgroup, 0.0)) > 0.5 else "separable minority"


def _change(row: pd.Series, metric: str) -> str:
    return (
        f"{row['subgroup']} {metric.upper()} {row[metric] - row[metric + '_change']:.3f}->{row[metric]:.3f} "
        f"({row[metric + '_change']:+.3f} [{row[metric + '_change_ci_low']:+.3f}, {row[metric + '_change_ci_high']:+.3f}])"
    )


def _falls(row: pd.Series, metric: str, sizes: EffectSizes) -> bool:
    change = float(row[f"{metric}_change"])
    baseline = float(row[metric]) - change
    return bool(row[f"{metric}_change_ci_high"] < 0 and change <= -sizes.minimum(metric, baseline))


def check_findings(
    table2: pd.DataFrame,
    targets: dict[str, tuple[str, str] | None],
    separability: dict[str, pd.DataFrame],
    shares: dict[str, pd.Series],
    separable_auc: float = 0.9,
    sizes: EffectSizes = EffectSizes(),
) -> pd.DataFrame:
    """One row per (finding, scenario, threshold source) with the numbers it rests on and whether it holds."""
    rows = []
    falls_by = sizes.describe()
    no_change = sizes.no_change
    for scenario, target in targets.items():
        if not target:
            continue
        attribute, subgroup = target
        kind = classify_target(separability.get(attribute), shares.get(attribute, pd.Series(dtype=float)), subgroup, separable_auc)
        part = table2[(table2["scenario"] == scenario) & (table2["attribute"] == attribute)]
        for source, cells in part.groupby("threshold_source", sort=False):
            cells = cells.set_index(cells["subgroup"].astype(str), drop=False)
            if subgroup not in cells.index:
                continue
            biased, others = cells.loc[subgroup], cells.drop(index=subgroup)
            observed_all = "; ".join(_change(r, "tpr") + ", " + _change(r, "fpr") for _, r in cells.iterrows())
            if kind == "not separable" and source == "clean":
                largest = float(cells["tpr_change"].abs().max())
                rows.append(("a", scenario, source, f"no subgroup's TPR moves by {no_change} or more",
                             observed_all, largest < no_change))
            elif kind == "not separable":
                holds = all(_falls(r, "tpr", sizes) and _falls(r, "fpr", sizes) for _, r in cells.iterrows())
                rows.append(("a", scenario, source, f"every subgroup's TPR and FPR fall {falls_by}", observed_all, holds))
            elif kind == "separable minority":
                bound = abs(float(biased["tpr_change"])) / 2
                holds = (
                    _falls(biased, "tpr", sizes)
                    and _falls(biased, "fpr", sizes)
                    and bool((others["tpr_change"].abs() < bound).all())
                )
                rows.append(("b", scenario, source,
                             f"{subgroup}'s TPR and FPR fall {falls_by}; every other subgroup's TPR moves by less "
                             f"than half of {subgroup}'s",
                             observed_all, holds))
            elif kind == "separable majority" and source == "biased":
                everyone = all(_falls(r, "tpr", sizes) and _falls(r, "fpr", sizes) for _, r in cells.iterrows())
                most = bool((float(biased["tpr_change"]) < others["tpr_change"]).all())
                rows.append(("c", scenario, source,
                             f"every subgroup's TPR and FPR fall {falls_by}, {subgroup}'s TPR the most",
                             observed_all, everyone and most))
            elif kind == "unknown":
                rows.append(("?", scenario, source, f"no separability table for {attribute}: cannot class {subgroup}",
                             observed_all, False))
    table = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    table["holds"] = table["holds"].map({True: "yes", False: "no"})
    return table
