"""Operating thresholds and subgroup TPR/FPR (Table 2 of the study), with patient-level intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

TABLE2_COLUMNS = [
    "scenario",
    "threshold_source",
    "attribute",
    "subgroup",
    "threshold",
    "tpr",
    "tpr_ci_low",
    "tpr_ci_high",
    "fpr",
    "fpr_ci_low",
    "fpr_ci_high",
    "tpr_change_pct",
    "fpr_change_pct",
    "n_pos",
    "n_neg",
    "n_patients",
]


def threshold_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The ROC point whose FPR is closest to ``target_fpr`` (the study's rule); its score threshold.

    Every distinct score is a candidate (no points dropped); on ties the first
    (highest threshold) wins. Images with score >= threshold are called positive.
    """
    if len(np.unique(labels)) < 2:
        raise ValueError("threshold selection needs both classes in the validation labels")
    fpr, _, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    index = int(np.argmin(np.abs(fpr - target_fpr)))
    return float(min(thresholds[index], np.nextafter(np.float64(1.0), 2.0)))


def rates(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    positives, negatives = labels == 1, labels == 0
    tpr = float(predicted[positives].mean()) if positives.any() else float("nan")
    fpr = float(predicted[negatives].mean()) if negatives.any() else float("nan")
    return tpr, fpr


def bootstrap_rates(
    labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray, n_boot: int, rng: np.random.Generator
) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% percentile intervals of TPR and FPR, resampling patients with all their images."""
    if n_boot == 0:
        return (float("nan"), float("nan")), (float("nan"), float("nan"))
    _, inverse = np.unique(patients, return_inverse=True)
    n_patients = inverse.max() + 1
    # Per-patient sums make each resample a weighted sum instead of a concatenation.
    tp = np.bincount(inverse, weights=(labels == 1) & predicted, minlength=n_patients)
    pos = np.bincount(inverse, weights=labels == 1, minlength=n_patients)
    fp = np.bincount(inverse, weights=(labels == 0) & predicted, minlength=n_patients)
    neg = np.bincount(inverse, weights=labels == 0, minlength=n_patients)
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    weights = np.apply_along_axis(np.bincount, 1, draws, minlength=n_patients)
    with np.errstate(invalid="ignore", divide="ignore"):
        tprs = (weights @ tp) / (weights @ pos)
        fprs = (weights @ fp) / (weights @ neg)
    tpr_ci = tuple(float(v) for v in np.nanpercentile(tprs, [2.5, 97.5])) if np.isfinite(tprs).any() else (np.nan, np.nan)
    fpr_ci = tuple(float(v) for v in np.nanpercentile(fprs, [2.5, 97.5])) if np.isfinite(fprs).any() else (np.nan, np.nan)
    return tpr_ci, fpr_ci  # type: ignore[return-value]


def evaluate_scenario(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    cohort: pd.DataFrame,
    threshold_source: str,
    attributes: list[str],
    target_fpr: float,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """TPR and FPR per subgroup on the test set against clean labels.

    The threshold comes from the validation set with the scenario's clean or biased
    labels (``threshold_source``). Rows for the whole test set carry attribute "all".
    """
    frame = predictions.merge(labels, on="image_id", validate="one_to_one").merge(
        cohort[["image_id", "patient_id", *attributes]], on="image_id", validate="one_to_one"
    )
    val, test = frame[frame["split"] == "val"], frame[frame["split"] == "test"]
    label_column = {"clean": "label_clean", "biased": "label_biased"}[threshold_source]
    threshold = threshold_at_fpr(val[label_column].to_numpy(), val["score"].to_numpy(), target_fpr)
    predicted = test["score"].to_numpy() >= threshold
    truth = test["label_clean"].to_numpy()
    patients = test["patient_id"].to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    groups: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(test), dtype=bool))]
    for attribute in attributes:
        values = test[attribute].astype(str).to_numpy()
        groups += [(attribute, value, values == value) for value in sorted(set(values))]
    for attribute, subgroup, member in groups:
        tpr, fpr = rates(truth[member], predicted[member])
        tpr_ci, fpr_ci = bootstrap_rates(truth[member], predicted[member], patients[member], n_boot, rng)
        rows.append(
            {
                "threshold_source": threshold_source,
                "attribute": attribute,
                "subgroup": subgroup,
                "threshold": threshold,
                "tpr": tpr,
                "tpr_ci_low": tpr_ci[0],
                "tpr_ci_high": tpr_ci[1],
                "fpr": fpr,
                "fpr_ci_low": fpr_ci[0],
                "fpr_ci_high": fpr_ci[1],
                "n_pos": int((truth[member] == 1).sum()),
                "n_neg": int((truth[member] == 0).sum()),
                "n_patients": int(len(np.unique(patients[member]))),
            }
        )
    return pd.DataFrame(rows)


def assemble_table2(per_scenario: dict[str, pd.DataFrame], baseline: str) -> pd.DataFrame:
    """Stack scenario results and add the relative change (%) to the baseline, per threshold source."""
    table = pd.concat([frame.assign(scenario=name) for name, frame in per_scenario.items()], ignore_index=True)
    base = table[table["scenario"] == baseline].set_index(["threshold_source", "attribute", "subgroup"])
    keys = pd.MultiIndex.from_frame(table[["threshold_source", "attribute", "subgroup"]])
    for metric in ("tpr", "fpr"):
        reference = base[metric].reindex(keys).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"{metric}_change_pct"] = 100.0 * (table[metric].to_numpy() - reference) / reference
    return table[TABLE2_COLUMNS]


def table2_layout(table: pd.DataFrame, attribute: str, scenarios: list[str], baseline: str) -> pd.DataFrame:
    """Table 2 as in the paper: one row per (scenario, threshold source), TPR then FPR per subgroup.

    Cells read ``0.912 (-0.3%)``; the baseline row is shown once.
    """
    part = table[table["attribute"] == attribute]
    subgroups = sorted(part["subgroup"].unique())
    rows = []
    for scenario in scenarios:
        sources = ["clean"] if scenario == baseline else ["clean", "biased"]
        for source in sources:
            cells = part[(part["scenario"] == scenario) & (part["threshold_source"] == source)].set_index("subgroup")
            row: dict[str, str] = {"bias in": scenario, "val labels": "" if scenario == baseline else source}
            for metric in ("tpr", "fpr"):
                for subgroup in subgroups:
                    value = cells.loc[subgroup, metric]
                    change = cells.loc[subgroup, f"{metric}_change_pct"]
                    text = f"{value:.3f}" if scenario == baseline else f"{value:.3f} ({change:+.1f}%)"
                    row[f"{metric.upper()} {subgroup}"] = text
            rows.append(row)
    return pd.DataFrame(rows)
