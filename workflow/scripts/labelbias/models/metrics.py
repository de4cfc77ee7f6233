"""Ranking metrics in numpy: what the training jobs need, without importing scikit-learn (about
a second per job on a slow CPU)."""

from __future__ import annotations

import numpy as np


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of binary ``labels`` for each row of ``weights`` (draws x images), ties counted half.

    An image of weight k counts as k copies of it, so a row of patient-bootstrap
    multiplicities gives exactly the AUC of the resampled set (what ``roc_auc_score``
    returns on the concatenated copies), for every draw in one vectorised pass.
    Rows without both classes give NaN.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    positive = np.asarray(labels) == 1
    _, tie_group = np.unique(scores, return_inverse=True)  # equal scores share a group, ordered by score
    n_groups = int(tie_group.max()) + 1 if len(tie_group) else 0
    draws = np.arange(weights.shape[0])[:, None]
    pos_by_group = np.zeros((weights.shape[0], n_groups))
    neg_by_group = np.zeros((weights.shape[0], n_groups))
    np.add.at(pos_by_group, (draws, tie_group[positive][None, :]), weights[:, positive])
    np.add.at(neg_by_group, (draws, tie_group[~positive][None, :]), weights[:, ~positive])
    negatives_below = np.cumsum(neg_by_group, axis=1) - neg_by_group
    pairs = (pos_by_group * (negatives_below + 0.5 * neg_by_group)).sum(axis=1)
    total = pos_by_group.sum(axis=1) * neg_by_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pairs / total, np.nan)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Binary AUC (ties counted half): scikit-learn's ``roc_auc_score``; NaN without both classes."""
    return float(weighted_auc(labels, scores, np.ones((1, len(labels))))[0])


def macro_ovr_auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean over classes of each class's one-vs-rest AUC (``roc_auc_score(multi_class="ovr", average="macro")``).

    A class with no image in ``targets`` has no AUC and is left out of the mean (a small
    validation set can miss a rare class, e.g. BI-RADS A, and still select an epoch).
    """
    per_class = [auc(targets == k, probabilities[:, k]) for k in range(probabilities.shape[1])]
    defined = [value for value in per_class if np.isfinite(value)]
    return float(np.mean(defined)) if defined else float("nan")
