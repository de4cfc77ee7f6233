"""Feature-space inspection (Fig. 1 of the study): PC1 of each model's test features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.table import canonical


def oriented_pc1(features: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, float, float]:
    """First principal component of ``features``, signed to increase with the model's class-1 score.

    PCA's sign is arbitrary; orienting every model's PC1 by its own score makes the
    clean model's curves comparable with each bias scenario's. The component is
    standardised (mean 0, sd 1 over the test set). Returns (pc1, explained variance
    ratio, correlation with the score after orientation).
    """
    centred = features.astype(np.float64)
    centred -= centred.mean(axis=0)
    # The leading eigenvector of the (512 x 512) scatter matrix: exact PCA, no sampling.
    variances, vectors = np.linalg.eigh(centred.T @ centred)
    pc1 = centred @ vectors[:, -1]
    explained = float(variances[-1] / variances.sum()) if variances.sum() > 0 else 0.0
    correlation = float(np.corrcoef(pc1, scores)[0, 1]) if np.std(pc1) > 0 and np.std(scores) > 0 else 0.0
    if correlation < 0:
        pc1, correlation = -pc1, -correlation
    pc1 = (pc1 - pc1.mean()) / (pc1.std() or 1.0)
    return pc1, explained, correlation


def pc1_table(
    features: np.ndarray,
    index: pd.DataFrame,
    predictions: pd.DataFrame,
    cohort: pd.DataFrame,
    attributes: list[str] | tuple[str, ...] = ("manufacturer", "pseudo_subgroup"),
    class_column: str = "density",
) -> tuple[pd.DataFrame, dict[str, float]]:
    """PC1 per test image with its subgroups and fine class, plus PCA facts for the log."""
    test = index[index["split"] == "test"].merge(predictions[["image_id", "score"]], on="image_id", validate="one_to_one")
    test = test.merge(
        cohort[["image_id", "patient_id", *attributes, class_column, "label"]],
        on="image_id",
        validate="one_to_one",
    )
    test[class_column] = test[class_column].map(canonical)
    pc1, explained, correlation = oriented_pc1(features[test["feature_row"].to_numpy()], test["score"].to_numpy())
    table = test[["image_id", *attributes, class_column, "label", "score"]].assign(pc1=pc1)
    return table, {"explained_variance_pc1": explained, "correlation_with_score": correlation}


PC1_SHIFT_COLUMNS = [
    "scenario", "attribute", "subgroup", "density", "median_baseline", "median_scenario",
    "shift", "ci_low", "ci_high", "n_images", "n_patients",
]


def pc1_shift_columns(class_column: str = "density") -> list[str]:
    return [class_column if c == "density" else c for c in PC1_SHIFT_COLUMNS]


def anchor_classes(
    table: pd.DataFrame, class_column: str = "density", order: list[str] | tuple[str, ...] | None = None
) -> tuple[str, str] | None:
    """The extreme classes present, first and last in ``order`` (A and D when both are;
    sorted when no order is given), or None with fewer than two."""
    present = {canonical(value) for value in table[class_column].dropna().unique()}
    ranked = [value for value in order if value in present] if order else sorted(present)
    return (ranked[0], ranked[-1]) if len(ranked) >= 2 else None


def anchored_pc1(table: pd.DataFrame, anchors: tuple[str, str], class_column: str = "density") -> np.ndarray:
    """PC1 rescaled so the median image of ``anchors[0]`` is at 0 and of ``anchors[1]`` at 1."""
    classes = table[class_column].map(canonical)
    low = float(table.loc[classes == anchors[0], "pc1"].median())
    high = float(table.loc[classes == anchors[1], "pc1"].median())
    if high == low:
        return np.full(len(table), np.nan)
    return ((table["pc1"] - low) / (high - low)).to_numpy()


def _weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Lower weighted median of ``values`` for each row of ``weights`` (shape (k, n))."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[:, order], axis=1)
    index = np.argmax(cumulative >= 0.5 * cumulative[:, -1:], axis=1)
    return values[order][index]


def pc1_median_shift(
    pc1: dict[str, pd.DataFrame],
    baseline: str,
    patients: pd.Series,
    groups: list[tuple[str, str]],
    n_boot: int,
    seed: int,
    class_column: str = "density",
    order: list[str] | tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """How far each fine class's median PC1 moved against the baseline model.

    Two models' PC1s live in different spaces, so each is put on a scale anchored on
    the classes no scenario flips: 0 at the median of that model's A test images, 1 at
    the median of its D images (the lowest and highest classes present, on data without
    A or D; the first and last of ``order`` on other data; no rows with fewer than two classes). On that scale, per scenario, subgroup and class: the
    median of the scenario's model minus the baseline's on the same images, with a 95%
    interval from resampling the subgroup's patients (the same resample for both
    models: paired). A negative shift of C in a subgroup means its class-1 images moved
    toward class 0 there. ``patients`` maps image_id to patient_id.
    """
    rng = np.random.default_rng(seed)
    anchors = anchor_classes(pc1[baseline], class_column, order)
    columns = pc1_shift_columns(class_column)
    if anchors is None:
        return pd.DataFrame(columns=columns)
    anchored = {
        name: table.assign(pc1=anchored_pc1(table, anchors, class_column), **{class_column: table[class_column].map(canonical)})
        for name, table in pc1.items()
    }
    reference = anchored[baseline].set_index("image_id")
    rows = []
    for scenario, table in anchored.items():
        if scenario == baseline or table["pc1"].isna().all():
            continue
        merged = table.set_index("image_id")[["pc1"]].join(reference, suffixes=("", "_baseline"), how="inner")
        merged["patient_id"] = patients.reindex(merged.index).to_numpy()
        for attribute, subgroup in groups:
            member = merged[merged[attribute].astype(str) == subgroup]
            present = set(member[class_column])
            for density in [v for v in order if v in present] if order else sorted(present):
                part = member[member[class_column] == density]
                ids, inverse = np.unique(part["patient_id"].astype(str).to_numpy(), return_inverse=True)
                here, there = part["pc1"].to_numpy(), part["pc1_baseline"].to_numpy()
                ones = np.ones((1, len(part)))
                median_here, median_there = float(_weighted_medians(here, ones)[0]), float(_weighted_medians(there, ones)[0])
                low = high = float("nan")
                if n_boot and len(ids) > 1:
                    # Each image weighs as often as its patient was drawn; both models see the same draws.
                    draws = rng.integers(0, len(ids), size=(n_boot, len(ids)))
                    counts = np.apply_along_axis(np.bincount, 1, draws, minlength=len(ids))[:, inverse].astype(float)
                    shifts = _weighted_medians(here, counts) - _weighted_medians(there, counts)
                    low, high = (float(v) for v in np.percentile(shifts, [2.5, 97.5]))
                rows.append(
                    {
                        "scenario": scenario,
                        "attribute": attribute,
                        "subgroup": subgroup,
                        class_column: density,
                        "median_baseline": median_there,
                        "median_scenario": median_here,
                        "shift": median_here - median_there,
                        "ci_low": low,
                        "ci_high": high,
                        "n_images": len(part),
                        "n_patients": len(ids),
                    }
                )
    return pd.DataFrame(rows, columns=columns)
