"""Feature-space inspection (Fig. 1 of the study): PC1 of each model's test features."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    features: np.ndarray, index: pd.DataFrame, predictions: pd.DataFrame, cohort: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, float]]:
    """PC1 per test image with its subgroups and density, plus PCA facts for the log."""
    test = index[index["split"] == "test"].merge(predictions[["image_id", "score"]], on="image_id", validate="one_to_one")
    test = test.merge(
        cohort[["image_id", "patient_id", "manufacturer", "pseudo_subgroup", "density", "label"]],
        on="image_id",
        validate="one_to_one",
    )
    pc1, explained, correlation = oriented_pc1(features[test["feature_row"].to_numpy()], test["score"].to_numpy())
    table = test[["image_id", "manufacturer", "pseudo_subgroup", "density", "label", "score"]].assign(pc1=pc1)
    return table, {"explained_variance_pc1": explained, "correlation_with_score": correlation}
