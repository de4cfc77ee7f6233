"""What fixing the training labels buys: a bias scenario's labels after a remedy.

A remedy decides, per image, which label a retrained model sees and whether it sees
the image at all; everything else about the retraining (seed, initialisation, data
order) is the scenario's own, so a remedy that restores every clean label gives the
clean model back. Remedies that audit take a budget, a share of the training and
validation patients: an audited patient's images get their clean labels.

- ``relabel_suspect``: audit the patients detection finds most suspect (lowest mean
  label quality first, :func:`patient_suspicion`).
- ``relabel_random``: audit patients drawn at random, the control for the ranking.
- ``drop_flagged``: no audit; the training and validation images detection flags as
  label issues leave the run (test images never do).
- ``forward_correction``: no audit, no image changed; the model trains with a forward
  loss correction (Patrini et al., CVPR 2017): its clean-class probabilities pass through
  a noise matrix P(given label | true label) per subgroup before the loss, so it learns the
  clean labels behind the noisy ones. The matrices are detection's calibrated confident
  joints (cleanlab) per subgroup of the attribute whose subgroups' estimated error rates
  differ most: detection, not the user, says along which attribute the bias lies.

Budgets nest: the patients of a smaller budget are the first ones of a larger, in one
order per run (the ranking, or one seeded permutation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataQualityError
from .audit import patient_suspicion

REMEDY_SPLITS = ("train", "val")
REMEDY_LABEL_COLUMNS = ["image_id", "label_clean", "label_biased", "flipped", "audited", "dropped"]
REMEDY_SUMMARY_COLUMNS = [
    "remedy", "budget", "n_patients", "patients_audited", "images_audited", "flips_before", "flips_fixed",
    "flips_left", "images_dropped", "flips_dropped", "correction_attribute", "correction_rates",
]  # fmt: skip


@dataclass(frozen=True)
class RemedyChoice:
    """Per cohort image (in the labels' row order): audited (gets its clean label), dropped, and
    for a loss correction its noise matrix, ``noise[n, true, given]`` = P(given | true)."""

    audited: np.ndarray
    dropped: np.ndarray
    noise: np.ndarray | None = None
    about: dict[str, object] = field(default_factory=dict)  # what the summary adds


@dataclass(frozen=True)
class Remedy:
    """A remedy: whether it takes a budget, whether it needs detection's images table, and its choice."""

    budgeted: bool
    uses_detection: bool
    choose: Callable[[pd.DataFrame, pd.DataFrame | None, float, int, list[str]], RemedyChoice]
    by_subgroup: bool = False  # reads detection.attributes


def audit_size(n_patients: int, budget: float) -> int:
    """Patients a budget audits: the share rounded half up, so 5% of 30 patients is 2, not 1."""
    return int(np.floor(budget * n_patients + 0.5))


def _pool_patients(frame: pd.DataFrame) -> np.ndarray:
    """Training and validation patients, sorted: who can be audited."""
    pool = frame.loc[frame["split"].isin(REMEDY_SPLITS), "patient_id"].astype(str)
    return np.array(sorted(pool.unique()), dtype=object)


def _audit(frame: pd.DataFrame, order: np.ndarray, budget: float) -> RemedyChoice:
    chosen = set(order[: audit_size(len(_pool_patients(frame)), budget)])
    audited = frame["patient_id"].astype(str).isin(chosen).to_numpy()
    return RemedyChoice(audited=audited, dropped=np.zeros(len(frame), dtype=bool))


def _relabel_suspect(
    frame: pd.DataFrame, detection: pd.DataFrame | None, budget: float, seed: int, attributes: list[str]
) -> RemedyChoice:
    assert detection is not None
    ranked = patient_suspicion(detection.assign(patient_id=detection["patient_id"].astype(str)), REMEDY_SPLITS)
    missing = sorted(set(_pool_patients(frame)) - set(ranked.index))
    if missing:
        raise DataQualityError(
            f"detection ranks no image of {len(missing)} training or validation patients (first: {missing[0]}): "
            "its images table is not this run's"
        )
    return _audit(frame, np.asarray(ranked.index, dtype=object), budget)


def _relabel_random(
    frame: pd.DataFrame, detection: pd.DataFrame | None, budget: float, seed: int, attributes: list[str]
) -> RemedyChoice:
    # One permutation per run, whatever the budget: budgets nest.
    order = np.random.default_rng(seed).permutation(_pool_patients(frame))
    return _audit(frame, order, budget)


def _drop_flagged(
    frame: pd.DataFrame, detection: pd.DataFrame | None, budget: float, seed: int, attributes: list[str]
) -> RemedyChoice:
    assert detection is not None
    flagged = set(detection.loc[detection["flagged"].astype(int) == 1, "image_id"].astype(str))
    dropped = frame["image_id"].astype(str).isin(flagged).to_numpy() & frame["split"].isin(REMEDY_SPLITS).to_numpy()
    return RemedyChoice(audited=np.zeros(len(frame), dtype=bool), dropped=dropped)


def subgroup_confident_joints(detection: pd.DataFrame, attribute: str) -> dict[str, np.ndarray]:
    """Subgroup -> its calibrated confident joint ``[given, true]`` (cleanlab), with the class
    thresholds of the whole pool, as the detection stage's error rates are estimated (cleanlab
    rounds it to whole images, so its error rate may differ from detection's by an image or two)."""
    from cleanlab.count import compute_confident_joint, get_confident_thresholds  # here: only this remedy needs it

    labels = detection["label_given"].to_numpy().astype(int)
    pred_probs = np.column_stack([1.0 - detection["prob_1"].to_numpy(), detection["prob_1"].to_numpy()])
    thresholds = np.asarray(get_confident_thresholds(labels, pred_probs))
    values = detection[attribute].astype(str).to_numpy()
    return {
        subgroup: np.asarray(
            compute_confident_joint(labels[values == subgroup], pred_probs[values == subgroup], thresholds=thresholds),
            dtype=float,
        )
        for subgroup in sorted(set(values))
    }


def noise_matrix(joint: np.ndarray) -> np.ndarray:
    """``[true, given]`` = P(given | true) from a confident joint ``[given, true]``; a true class
    without confident images keeps its label (an identity row)."""
    columns = joint.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(columns > 0, joint / columns, np.eye(len(joint))).T


def error_rate(joint: np.ndarray) -> float:
    """P(given != true): the off-diagonal share of a calibrated joint (detection's ``error_rate``)."""
    return float(1.0 - np.trace(joint) / joint.sum()) if joint.sum() else 0.0


def _forward_correction(
    frame: pd.DataFrame, detection: pd.DataFrame | None, budget: float, seed: int, attributes: list[str]
) -> RemedyChoice:
    assert detection is not None
    if not attributes:
        raise DataQualityError("forward_correction needs detection.attributes: the subgroups its noise matrices are for")
    joints = {attribute: subgroup_confident_joints(detection, attribute) for attribute in attributes}
    rates = {attribute: [error_rate(joint) for joint in joints[attribute].values()] for attribute in attributes}
    chosen = max(attributes, key=lambda attribute: max(rates[attribute]) - min(rates[attribute]))  # ties: the first
    matrices = {subgroup: noise_matrix(joint) for subgroup, joint in joints[chosen].items()}
    subgroup_of = detection.assign(image_id=detection["image_id"].astype(str)).set_index("image_id")[chosen].astype(str)
    subgroups = frame["image_id"].astype(str).map(subgroup_of)
    pool = frame["split"].isin(REMEDY_SPLITS).to_numpy()
    if subgroups[pool].isna().any():
        first = frame.loc[pool & subgroups.isna().to_numpy(), "image_id"].iloc[0]
        raise DataQualityError(f"detection has no row for training or validation image {first}: its images table is not this run's")
    # Test images are never trained on; they keep the identity.
    noise = np.stack([matrices.get(subgroup, np.eye(2)) if keep else np.eye(2) for subgroup, keep in zip(subgroups, pool)])
    about = {
        "correction_attribute": chosen,
        "correction_rates": "; ".join(
            f"{subgroup} {matrix[1, 0]:.3f}/{matrix[0, 1]:.3f}" for subgroup, matrix in matrices.items()
        ),
    }
    return RemedyChoice(audited=np.zeros(len(frame), dtype=bool), dropped=np.zeros(len(frame), dtype=bool), noise=noise, about=about)


REMEDIES: dict[str, Remedy] = {
    "relabel_suspect": Remedy(budgeted=True, uses_detection=True, choose=_relabel_suspect),
    "relabel_random": Remedy(budgeted=True, uses_detection=False, choose=_relabel_random),
    "drop_flagged": Remedy(budgeted=False, uses_detection=True, choose=_drop_flagged),
    "forward_correction": Remedy(budgeted=False, uses_detection=True, choose=_forward_correction, by_subgroup=True),
}


def remedy_labels(
    labels: pd.DataFrame,
    cohort: pd.DataFrame,
    remedy: str,
    budget: float | None,
    seed: int,
    detection: pd.DataFrame | None = None,
    attributes: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """A scenario run's labels after ``remedy``, and what the remedy did.

    ``labels`` are the run's (``LABEL_COLUMNS``); ``cohort`` gives each image's patient
    and split; ``detection`` is the run's ``results/detection/{run}.images.tsv``. In the
    result ``label_biased`` is the label the remedied model trains on and its threshold
    source "biased" reads; ``flipped`` marks where that still differs from the clean label;
    a loss correction adds ``noise_{true}_{given}``, each image's noise matrix.
    The summary counts flips in the training and validation splits only.
    """
    spec = REMEDIES[remedy]
    if spec.uses_detection and detection is None:
        raise DataQualityError(f"remedy {remedy} needs the detection stage's images table")
    frame = labels.merge(cohort[["image_id", "patient_id", "split"]], on="image_id", how="left", validate="one_to_one")
    if frame["patient_id"].isna().any():
        first = frame.loc[frame["patient_id"].isna(), "image_id"].iloc[0]
        raise DataQualityError(f"label image {first} is not in the cohort")
    choice = spec.choose(frame, detection, float(budget or 0.0), seed, list(attributes or []))
    given = np.where(choice.audited, frame["label_clean"], frame["label_biased"]).astype(int)
    out = pd.DataFrame(
        {
            "image_id": frame["image_id"],
            "label_clean": frame["label_clean"].astype(int),
            "label_biased": given,
            "flipped": (given != frame["label_clean"].to_numpy()).astype(int),
            "audited": choice.audited.astype(int),
            "dropped": choice.dropped.astype(int),
        }
    )
    if choice.noise is not None:
        for true in range(2):
            for given in range(2):
                out[f"noise_{true}_{given}"] = choice.noise[:, true, given]
    # Counted where a remedy can act: the test split keeps its flips, whatever the remedy.
    before = frame["flipped"].to_numpy().astype(bool) & frame["split"].isin(REMEDY_SPLITS).to_numpy()
    summary = {
        "remedy": remedy,
        "budget": float(budget) if budget is not None else float("nan"),
        "n_patients": len(_pool_patients(frame)),
        "patients_audited": int(frame.loc[choice.audited, "patient_id"].nunique()),
        "images_audited": int(choice.audited.sum()),
        "flips_before": int(before.sum()),
        "flips_fixed": int((before & choice.audited).sum()),
        "flips_left": int((before & ~choice.audited & ~choice.dropped).sum()),
        "images_dropped": int(choice.dropped.sum()),
        "flips_dropped": int((before & choice.dropped).sum()),
        "correction_attribute": "",
        "correction_rates": "",
        **choice.about,
    }
    return out, summary
