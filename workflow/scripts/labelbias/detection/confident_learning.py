"""Detecting subgroup label bias: cross-fitted class probabilities and confident learning.

Every training and validation image of a scenario gets a class probability from a
model that never saw its label (K-fold cross-fitting, folds by patient). Confident
learning (cleanlab) turns those into a label-quality score and a flag per image,
and into an estimated label-error rate per subgroup: the calibrated confident joint
of the subgroup's images, with the class thresholds of the whole pool, so every
subgroup is judged by the same standard. Intervals resample patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataQualityError
from ..models.metrics import auc

SUBGROUP_COLUMNS = [
    "attribute",
    "subgroup",
    "error_rate",
    "ci_low",
    "ci_high",
    "rank",
    "injected_rate",
    "flagged_share",
    "n_images",
    "n_patients",
]
SUMMARY_COLUMNS = ["scenario", "auroc", "precision", "recall", "n_images", "n_flipped", "n_flagged", "flagged_flipped"]


def linear_crossfit(
    features_train: np.ndarray, labels_train: np.ndarray, features_out: np.ndarray, c: float = 0.01
) -> np.ndarray:
    """Class probabilities of held-out images from a logistic regression on frozen features.

    Strong regularisation (small ``c``) keeps the model close to what the features
    say about density, so it learns a subgroup's biased labels less than a flexible
    model would, and their flips stand out more (measured on the synthetic default).
    """
    if len(np.unique(labels_train)) < 2:
        raise DataQualityError("a cross-fitting fold's training images hold a single class")
    # Here, not at the top: the fold and summary jobs import this module and never fit.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(features_train.astype(np.float64), labels_train)
    probabilities = np.zeros((len(features_out), 2))
    probabilities[:, model.classes_] = model.predict_proba(features_out.astype(np.float64))
    return probabilities


def heldout_table(frame: pd.DataFrame, held: np.ndarray, probabilities: np.ndarray) -> pd.DataFrame:
    """``image_id, fold, prob_0, prob_1`` of one fold's held-out images (rows of ``frame`` where ``held``)."""
    out = pd.DataFrame({"image_id": frame.loc[held, "image_id"].to_numpy(), "fold": frame.loc[held, "fold"].to_numpy()})
    out["prob_0"], out["prob_1"] = probabilities[:, 0], probabilities[:, 1]
    return out


def confident_true_labels(labels: np.ndarray, pred_probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The class each image is confidently in (cleanlab's rule), or -1 where no class passes its threshold.

    Summed over images with their given labels this is cleanlab's (uncalibrated)
    confident joint; kept per image so patients can be resampled.
    """
    confident = pred_probs >= thresholds - 1e-6
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, pred_probs.argmax(axis=1), confident.argmax(axis=1))
    return np.where(n_confident > 0, guess, -1)


def _calibrated_error_rate(joint: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Off-diagonal share of calibrated confident joints; ``joint`` (..., K, K), ``label_counts`` (..., K).

    Calibration scales each given-label row to that label's image count (cleanlab's
    calibrate_confident_joint), so the rate estimates P(given label != true label).
    """
    rows = joint.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        off_share = 1.0 - np.diagonal(joint, axis1=-2, axis2=-1) / rows
        off_share = np.where(rows > 0, off_share, 0.0)
        return (off_share * label_counts).sum(axis=-1) / label_counts.sum(axis=-1)


def subgroup_error_rates(
    frame: pd.DataFrame,
    pred_probs: np.ndarray,
    attributes: list[str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Estimated label-error rate per subgroup with a patient-bootstrap 95% interval.

    ``frame`` has one row per pool image with ``label_given`` (the scenario's labels),
    ``flipped``, ``flagged``, ``patient_id`` and the attribute columns; ``pred_probs``
    are its cross-fitted probabilities. Rank 1 is the most suspect subgroup of its
    attribute.
    """
    labels = frame["label_given"].to_numpy().astype(int)
    k = pred_probs.shape[1]
    from cleanlab.count import get_confident_thresholds  # here: the fold and cross-fit jobs never need cleanlab

    thresholds = np.asarray(get_confident_thresholds(labels, pred_probs))
    truth = confident_true_labels(labels, pred_probs, thresholds)
    rng = np.random.default_rng(seed)
    rows = []
    for attribute in attributes:
        values = frame[attribute].astype(str).to_numpy()
        for subgroup in sorted(set(values)):
            member = values == subgroup
            sub_labels, sub_truth = labels[member], truth[member]
            patients = frame.loc[member, "patient_id"].to_numpy()
            _, inverse = np.unique(patients, return_inverse=True)
            n_patients = int(inverse.max()) + 1
            # Per-patient confident-joint counts and label counts: a bootstrap draw is a weighted sum.
            joint = np.zeros((n_patients, k, k))
            counted = sub_truth >= 0
            np.add.at(joint, (inverse[counted], sub_labels[counted], sub_truth[counted]), 1.0)
            counts = np.zeros((n_patients, k))
            np.add.at(counts, (inverse, sub_labels), 1.0)
            estimate = float(_calibrated_error_rate(joint.sum(axis=0), counts.sum(axis=0)))
            low = high = float("nan")
            if n_boot:
                draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
                weights = np.apply_along_axis(np.bincount, 1, draws, minlength=n_patients).astype(float)
                boot = _calibrated_error_rate(
                    np.einsum("bp,pij->bij", weights, joint), weights @ counts
                )
                low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
            rows.append(
                {
                    "attribute": attribute,
                    "subgroup": subgroup,
                    "error_rate": estimate,
                    "ci_low": low,
                    "ci_high": high,
                    "injected_rate": float(frame.loc[member, "flipped"].mean()),
                    "flagged_share": float(frame.loc[member, "flagged"].mean()),
                    "n_images": int(member.sum()),
                    "n_patients": n_patients,
                }
            )
    table = pd.DataFrame(rows)
    table["rank"] = (
        table.groupby("attribute")["error_rate"].rank(ascending=False, method="min").astype(int)
    )
    rates = ["error_rate", "ci_low", "ci_high", "injected_rate", "flagged_share"]
    table[rates] = table[rates].round(5)
    return table[SUBGROUP_COLUMNS]


def flag_images(labels: np.ndarray, pred_probs: np.ndarray, filter_by: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image: label quality (cleanlab's self-confidence; low = suspect) and the label-issue flag."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
    # One process: cleanlab's default pool of workers can hang inside a job script that forked before.
    flagged = find_label_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1)
    return quality, flagged


def detection_performance(flipped: np.ndarray, quality: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """How well suspicion finds the injected flips: AUROC of 1 - quality, precision and recall of flags.

    Without flips (a clean scenario) AUROC and recall are undefined (NaN); precision
    is then 0 if anything was flagged.
    """
    flipped = flipped.astype(bool)
    flagged = flagged.astype(bool)
    hits = int((flipped & flagged).sum())
    both_classes = 0 < flipped.sum() < len(flipped)
    return {
        "auroc": auc(flipped, 1.0 - quality) if both_classes else float("nan"),
        "precision": hits / int(flagged.sum()) if flagged.any() else float("nan"),
        "recall": hits / int(flipped.sum()) if flipped.any() else float("nan"),
        "n_images": int(len(flipped)),
        "n_flipped": int(flipped.sum()),
        "n_flagged": int(flagged.sum()),
        "flagged_flipped": hits,
    }
