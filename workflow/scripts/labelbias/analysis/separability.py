"""Subgroup separability: one-vs-rest AUC per subgroup with patient-level bootstrap intervals,
and the linear probe of how much subgroup information a density model's features carry."""

from __future__ import annotations

import numpy as np
import pandas as pd
from ..data.cohort import patient_folds
from ..models.metrics import auc, weighted_auc


def patient_bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray | list[np.ndarray], patients: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """95% percentile interval of the AUC, resampling patients (their images are not independent).

    With a list of score arrays (one classifier per seed) it is the interval of the
    mean AUC over seeds: each draw takes seeds with replacement, then patients.
    """
    runs = scores if isinstance(scores, list) else [scores]
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(patients, return_inverse=True)
    # Draws in chunks of about 4 million image weights: bounded memory on a large test set.
    chunk = max(1, 4_000_000 // max(len(labels), 1))
    values: list[float] = []
    for start in range(0, n_boot, chunk):
        chosen_runs, image_weights = [], []
        for _ in range(min(chunk, n_boot - start)):
            chosen_runs.append(rng.integers(0, len(runs), len(runs)) if len(runs) > 1 else np.zeros(1, dtype=int))
            multiplicity = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
            image_weights.append(multiplicity[inverse])
        weights = np.asarray(image_weights)
        # AUC of every run under every draw's resample; a draw then averages its chosen runs.
        per_run = np.stack([weighted_auc(labels, run, weights) for run in runs], axis=1)
        values += [float(per_run[d, chosen].mean()) for d, chosen in enumerate(chosen_runs)]
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def separability_table(
    predictions: pd.DataFrame | list[pd.DataFrame],
    cohort: pd.DataFrame,
    attribute: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One-vs-rest test AUC of a subgroup classifier, per subgroup, with a 95% interval.

    With one classifier per seed (a list of predictions), ``auc`` is the mean over
    seeds and the interval comes from resampling seeds, then patients; with one,
    from resampling patients.
    """
    runs = predictions if isinstance(predictions, list) else [predictions]
    tests = [
        run[run["split"] == "test"].merge(cohort[["image_id", "patient_id", attribute]], on="image_id", validate="one_to_one")
        .sort_values("image_id", kind="stable")
        .reset_index(drop=True)
        for run in runs
    ]
    test = tests[0]
    rows = []
    for subgroup in sorted(test[attribute].astype(str).unique()):
        truth = (test[attribute].astype(str) == subgroup).to_numpy().astype(int)
        scores = [t[f"prob_{subgroup}"].to_numpy() for t in tests]
        aucs = [auc(truth, s) for s in scores]
        low, high = patient_bootstrap_auc(truth, scores, test["patient_id"].to_numpy(), n_boot, seed)
        rows.append(
            {
                "subgroup": subgroup,
                "auc": round(float(np.mean(aucs)), 4),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "n_images": int(truth.sum()),
                "n_patients": int(test.loc[truth == 1, "patient_id"].nunique()),
                "n_seeds": len(runs),
                "auc_min_seed": round(min(aucs), 4),
                "auc_max_seed": round(max(aucs), 4),
            }
        )
    return pd.DataFrame(rows)


def _standardise(x: np.ndarray, reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x - mean) / sd with the mean and sd (ddof 0; a constant column keeps sd 1) of ``reference``."""
    reference = x if reference is None else reference
    scale = reference.std(axis=0)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return (x - reference.mean(axis=0)) / scale, scale


def ledoit_wolf_covariance(x: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance of the rows of ``x`` (scikit-learn's ``ledoit_wolf``)."""
    n, p = x.shape
    centred = x - x.mean(axis=0)
    empirical = centred.T @ centred / n
    squares = centred**2
    variances = squares.sum(axis=0) / n
    mu = variances.sum() / p
    delta_sum = float((empirical**2).sum())
    beta = (float((squares.T @ squares).sum()) / n - delta_sum) / (p * n)
    delta = (delta_sum - 2.0 * mu * variances.sum() + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * empirical
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk


def shrinkage_lda_probabilities(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int
) -> np.ndarray:
    """Class probabilities of a shrinkage LDA on standardised features.

    The same model as scikit-learn's ``StandardScaler`` + ``LinearDiscriminantAnalysis(
    solver="lsqr", shrinkage="auto")`` (each class's covariance shrunk by Ledoit-Wolf on
    its standardised features, weighted by the class priors), written with two matrix
    products and a linear solve per fit: a probe's 15 fits take a second, not ten.
    Columns of classes absent from ``y_train`` are 0.
    """
    x_train = x_train.astype(np.float64)
    train, _ = _standardise(x_train)
    test, _ = _standardise(x_test.astype(np.float64), x_train)
    present = np.unique(y_train)
    priors = np.array([np.mean(y_train == c) for c in present])
    means = np.array([train[y_train == c].mean(axis=0) for c in present])
    covariance = np.zeros((train.shape[1], train.shape[1]))
    for prior, c in zip(priors, present, strict=True):
        members, scale = _standardise(train[y_train == c])
        covariance += prior * scale[:, None] * ledoit_wolf_covariance(members) * scale[None, :]
    try:
        coef = np.linalg.solve(covariance, means.T).T
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(covariance, means.T, rcond=None)[0].T
    intercept = -0.5 * np.einsum("ij,ij->i", means, coef) + np.log(priors)
    scores = test @ coef.T + intercept
    if len(present) == 2:
        # scikit-learn's binary LDA: a logistic of the difference of the two scores.
        difference = scores[:, 1] - scores[:, 0]
        positive = 1.0 / (1.0 + np.exp(-difference))
        known = np.stack([1.0 - positive, positive], axis=1)
    else:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        known = shifted / shifted.sum(axis=1, keepdims=True)
    probabilities = np.zeros((len(x_test), n_classes))
    probabilities[:, present] = known
    return probabilities


def probe_subgroup_information(
    features: np.ndarray, frame: pd.DataFrame, attributes: list[str], folds: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Cross-validated AUC of a linear classifier predicting each attribute from frozen features.

    Folds are grouped by patient. Per attribute: the macro one-vs-rest AUC and the
    AUC of each subgroup against the rest, from out-of-fold probabilities.
    """
    rows = []
    x = features.astype(np.float32)
    groups = frame["patient_id"].to_numpy()
    for attribute in attributes:
        names = sorted(frame[attribute].astype(str).unique())
        y = frame[attribute].astype(str).map({n: i for i, n in enumerate(names)}).to_numpy()
        if len(names) < 2:
            continue
        # A small test set (a handful of patients) gets as many folds as it has patients.
        n_splits = min(folds, len(np.unique(groups)))
        if n_splits < 2:
            continue
        out_of_fold = np.zeros((len(y), len(names)))
        fold_of = patient_folds(frame, n_splits, seed, [attribute])
        for fold in range(n_splits):
            train, test = fold_of != fold, fold_of == fold
            # Shrinkage LDA: a linear classifier fitted in closed form, about five
            # times faster than logistic regression on 512-d features, same AUCs here.
            out_of_fold[test] = shrinkage_lda_probabilities(x[train], y[train], x[test], len(names))
        for i, name in enumerate(names):
            rows.append(
                {"attribute": attribute, "subgroup": name, "auc": round(auc(y == i, out_of_fold[:, i]), 4)}
            )
        macro = np.mean([r["auc"] for r in rows if r["attribute"] == attribute])
        rows.append({"attribute": attribute, "subgroup": "all (macro)", "auc": round(float(macro), 4)})
    return pd.DataFrame(rows)
