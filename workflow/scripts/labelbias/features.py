"""Feature-space inspection (Fig. 1 of the study): PC1 of each model's test features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA


def oriented_pc1(features: np.ndarray, scores: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """First principal component of ``features``, signed to increase with the model's class-1 score.

    PCA's sign is arbitrary; orienting every model's PC1 by its own score makes the
    clean model's curves comparable with each bias scenario's. The component is
    standardised (mean 0, sd 1 over the test set). Returns (pc1, explained variance
    ratio, correlation with the score after orientation).
    """
    x = features.astype(np.float64)
    pca = PCA(n_components=1, random_state=seed).fit(x)
    pc1 = pca.transform(x)[:, 0]
    correlation = float(np.corrcoef(pc1, scores)[0, 1]) if np.std(pc1) > 0 and np.std(scores) > 0 else 0.0
    if correlation < 0:
        pc1, correlation = -pc1, -correlation
    pc1 = (pc1 - pc1.mean()) / (pc1.std() or 1.0)
    return pc1, float(pca.explained_variance_ratio_[0]), correlation


def pc1_table(features: np.ndarray, index: pd.DataFrame, predictions: pd.DataFrame, cohort: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, dict[str, float]]:
    """PC1 per test image with its subgroups and density, plus PCA facts for the log."""
    test = index[index["split"] == "test"].merge(predictions[["image_id", "score"]], on="image_id", validate="one_to_one")
    test = test.merge(
        cohort[["image_id", "patient_id", "manufacturer", "pseudo_subgroup", "density", "label"]],
        on="image_id",
        validate="one_to_one",
    )
    pc1, explained, correlation = oriented_pc1(features[test["feature_row"].to_numpy()], test["score"].to_numpy(), seed)
    table = test[["image_id", "manufacturer", "pseudo_subgroup", "density", "label", "score"]].assign(pc1=pc1)
    return table, {"explained_variance_pc1": explained, "correlation_with_score": correlation}
