"""What a small clean audit buys: the operating threshold re-picked with part of the
validation set relabelled by an expert.

A threshold chosen on biased validation labels costs TPR; one chosen on clean labels
does not. Between the two: relabel only ``n`` validation patients (all their images
get their clean labels, the rest keep the biased ones) and pick the threshold on that
mix. The patients are drawn at random (repeated draws), or taken in the order the
detection stage finds most suspect (lowest label quality first). No model is
retrained: every threshold is re-picked on the model's saved validation scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..analysis.evaluation import rates, subgroup_masks, threshold_at_fpr, totals

AUDIT_COLUMNS = ["strategy", "n_requested", "n_relabelled", "draw", "threshold", "attribute", "subgroup", "tpr", "fpr", "n_pos", "n_neg"]
SUMMARY_COLUMNS = [
    "scenario", "attribute", "subgroup", "biased_subgroup", "strategy", "tpr_biased", "tpr_clean", "tpr_lost",
    "recover_share", "n_to_recover", "n_val_patients",
]


def patient_suspicion(detection_images: pd.DataFrame, splits: Sequence[str] = ("val",)) -> pd.Series:
    """Patients of ``splits`` ordered most suspect first: mean label quality of their images.

    Ties (equal quality) are broken by patient id, so the order is reproducible.
    """
    pool = detection_images[detection_images["split"].isin(list(splits))]
    quality = pool.groupby("patient_id", sort=True)["quality"].mean()
    order = sorted(quality.index, key=lambda patient: (float(quality[patient]), str(patient)))
    return quality.loc[order]


def audited_labels(val: pd.DataFrame, relabelled: Sequence[object] | np.ndarray) -> np.ndarray:
    """Validation labels after the audit: clean for the relabelled patients, biased for the rest."""
    chosen = val["patient_id"].isin(set(relabelled)).to_numpy()
    return np.where(chosen, val["label_clean"].to_numpy(), val["label_biased"].to_numpy())


def _subgroup_rows(test: pd.DataFrame, predicted: np.ndarray, attributes: list[str]) -> list[dict[str, object]]:
    truth = test["label_clean"].to_numpy()
    rows = []
    for attribute, subgroup, member in subgroup_masks(test, attributes):
        rows.append(
            {
                "attribute": attribute,
                "subgroup": subgroup,
                **rates(truth[member], predicted[member]),
                **totals(truth[member], predicted[member]),
            }
        )
    return rows


def audit_curve(
    frame: pd.DataFrame,
    sizes: Sequence[int],
    draws: int,
    target_fpr: float,
    attributes: list[str],
    seed: int,
    suspicion: pd.Series | None = None,
) -> pd.DataFrame:
    """Test TPR and FPR per subgroup for every audit size, strategy and draw.

    ``frame`` holds one row per validation and test image: ``split``, ``score``,
    ``patient_id``, ``label_clean``, ``label_biased`` and the attributes. Sizes above
    the number of validation patients are capped at it; ``n_requested`` 0 is the
    biased-label threshold and the size "all" (every validation patient) the
    clean-label one, both kept as the curve's ends. ``random`` has ``draws`` draws per
    size, ``suspect`` (when ``suspicion`` is given) one ordering.
    """
    val = frame[frame["split"] == "val"].reset_index(drop=True)
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    patients = np.array(sorted(val["patient_id"].unique(), key=str), dtype=object)
    n_val = len(patients)
    requested = sorted({0, *(int(n) for n in sizes), n_val})
    scores_val, scores_test = val["score"].to_numpy(), test["score"].to_numpy()
    rng = np.random.default_rng(seed)
    plans: list[tuple[str, int, int, np.ndarray]] = []
    for n in requested:
        k = min(n, n_val)
        # Every draw comes from one generator in a fixed order: the same seed, the same draws.
        for draw in range(draws if 0 < k < n_val else 1):
            plans.append(("random", n, draw, rng.choice(patients, size=k, replace=False) if k else patients[:0]))
    if suspicion is not None:
        known = set(patients)
        ranked = np.array([p for p in suspicion.index if p in known], dtype=object)
        for n in requested:
            plans.append(("suspect", n, 0, ranked[: min(n, n_val)]))
    rows = []
    for strategy, n, draw, chosen in plans:
        labels = audited_labels(val, chosen)
        threshold = threshold_at_fpr(labels, scores_val, target_fpr)
        predicted = scores_test >= threshold
        for row in _subgroup_rows(test, predicted, attributes):
            rows.append(
                {
                    "strategy": strategy,
                    "n_requested": n,
                    "n_relabelled": len(chosen),
                    "draw": draw,
                    "threshold": threshold,
                    **row,
                }
            )
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def audit_summary(
    curves: dict[str, pd.DataFrame],
    targets: dict[str, tuple[str, str]],
    recover_share: float,
    min_tpr_lost: float,
) -> pd.DataFrame:
    """Per scenario, subgroup and strategy: how many relabelled patients recover
    ``recover_share`` of the TPR the biased-label threshold loses.

    The curve's mean over draws is used; ``n_to_recover`` is the smallest audit size
    whose mean TPR is at least ``tpr_biased + recover_share * tpr_lost``, NaN when no
    size does or when less than ``min_tpr_lost`` was lost (nothing to recover).
    ``targets`` names each scenario's biased (attribute, subgroup).
    """
    rows = []
    for scenario, curve in curves.items():
        mean = curve.groupby(["attribute", "subgroup", "strategy", "n_requested"], sort=True)["tpr"].mean()
        n_val = int(curve["n_relabelled"].max())
        for (attribute, subgroup, strategy), by_n in mean.groupby(level=[0, 1, 2], sort=True):
            by_n = by_n.droplevel([0, 1, 2])
            biased, clean = float(by_n.loc[0]), float(by_n.iloc[-1])
            lost = clean - biased
            needed = float("nan")
            if lost >= min_tpr_lost:
                enough = by_n[by_n >= biased + recover_share * lost - 1e-12]
                needed = float(min(int(enough.index.min()), n_val))
            rows.append(
                {
                    "scenario": scenario,
                    "attribute": attribute,
                    "subgroup": subgroup,
                    "biased_subgroup": tuple(targets[scenario]) == (attribute, subgroup),
                    "strategy": strategy,
                    "tpr_biased": biased,
                    "tpr_clean": clean,
                    "tpr_lost": lost,
                    "recover_share": recover_share,
                    "n_to_recover": needed,
                    "n_val_patients": n_val,
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
