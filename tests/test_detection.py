"""Label-bias detection without Snakemake: folds, cross-fitting, confident learning, per-subgroup rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cleanlab.count import compute_confident_joint, get_confident_thresholds
from sklearn.model_selection import StratifiedGroupKFold

from labelbias.detection.confident_learning import (
    SUBGROUP_COLUMNS,
    confident_true_labels,
    detection_performance,
    flag_images,
    linear_crossfit,
    subgroup_error_rates,
)
from labelbias.data.cohort import patient_folds
from labelbias.errors import DataQualityError
from labelbias.detection.review import grid_selection, highest_loss


def synthetic_pool(n_patients: int = 300, flip_rate: float = 0.4, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients with 4 images each; a 1-d feature tells the clean label; group G1's positives are flipped."""
    rng = np.random.default_rng(seed)
    patients = np.repeat(np.arange(n_patients), 4)
    clean = np.repeat(rng.integers(0, 2, n_patients), 4)
    group = np.repeat(np.array(["G1", "G2", "G3"])[rng.integers(0, 3, n_patients)], 4)
    flip_patient = rng.random(n_patients) < flip_rate
    flipped = (group == "G1") & (clean == 1) & np.repeat(flip_patient, 4)
    frame = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(len(patients))],
            "patient_id": patients,
            "exam_id": patients,
            "label_clean": clean,
            "label_given": np.where(flipped, 0, clean),
            "flipped": flipped.astype(int),
            "group": group,
            "manufacturer": np.where(np.arange(len(patients)) % 2, "HOLO", "FUJI"),
        }
    )
    features = np.column_stack([clean * 2.0 + rng.normal(0, 0.6, len(clean)), rng.normal(size=(len(clean), 3))])
    return frame, features


def crossfitted(frame: pd.DataFrame, features: np.ndarray, k: int = 4) -> np.ndarray:
    folds = patient_folds(frame, k, seed=1, stratify=["group"])
    probabilities = np.zeros((len(frame), 2))
    labels = frame["label_given"].to_numpy()
    for fold in range(k):
        held = folds == fold
        probabilities[held] = linear_crossfit(features[~held], labels[~held], features[held], c=1.0)
    return probabilities


def test_folds_keep_patients_together_and_spread_strata():
    frame, _ = synthetic_pool()
    folds = patient_folds(frame, 5, seed=3, stratify=["group", "label_given"])
    assert frame.assign(fold=folds).groupby("patient_id")["fold"].nunique().max() == 1
    assert sorted(np.unique(folds)) == [0, 1, 2, 3, 4]
    # Every stratum's images spread over the folds: each fold holds about a fifth of each.
    shares = pd.crosstab(frame["group"] + frame["label_given"].astype(str), folds, normalize="index")
    assert (shares.sub(0.2).abs() < 0.05).all().all()
    assert (patient_folds(frame, 5, seed=3, stratify=["group", "label_given"]) == folds).all()
    assert not (patient_folds(frame, 5, seed=4, stratify=["group", "label_given"]) == folds).all()
    with pytest.raises(DataQualityError, match="3 patients cannot fill 5 folds"):
        patient_folds(frame[frame["patient_id"] < 3], 5, seed=0)


def test_folds_are_scikit_learns_stratified_group_k_fold():
    frame, _ = synthetic_pool()
    strata = frame["group"] + "|" + frame["label_given"].astype(str)
    expected = np.zeros(len(frame), dtype=int)
    splitter = StratifiedGroupKFold(4, shuffle=True, random_state=7)
    for fold, (_, held) in enumerate(splitter.split(frame, strata, frame["patient_id"])):
        expected[held] = fold
    assert (patient_folds(frame, 4, seed=7, stratify=["group", "label_given"]) == expected).all()


def test_confident_true_labels_sum_to_cleanlabs_confident_joint():
    frame, features = synthetic_pool()
    probabilities = crossfitted(frame, features)
    labels = frame["label_given"].to_numpy()
    thresholds = np.asarray(get_confident_thresholds(labels, probabilities))
    truth = confident_true_labels(labels, probabilities, thresholds)
    ours = np.zeros((2, 2), dtype=int)
    np.add.at(ours, (labels[truth >= 0], truth[truth >= 0]), 1)
    np.testing.assert_array_equal(ours, compute_confident_joint(labels, probabilities, calibrate=False))


def test_biased_group_ranks_first_and_its_rate_is_near_the_injected_one():
    frame, features = synthetic_pool()
    probabilities = crossfitted(frame, features)
    quality, flagged = flag_images(frame["label_given"].to_numpy(), probabilities, "prune_by_noise_rate")
    frame["flagged"] = flagged.astype(int)
    table = subgroup_error_rates(frame, probabilities, ["group", "manufacturer"], n_boot=300, seed=0)
    assert list(table.columns) == SUBGROUP_COLUMNS
    groups = table[table["attribute"] == "group"].set_index("subgroup")
    assert groups.loc["G1", "rank"] == 1 and sorted(groups["rank"]) == [1, 2, 3]
    injected = frame.loc[frame["group"] == "G1", "flipped"].mean()
    assert abs(groups.loc["G1", "error_rate"] - injected) < 0.08
    assert groups.loc["G1", "ci_low"] <= groups.loc["G1", "error_rate"] <= groups.loc["G1", "ci_high"]
    assert groups.loc["G1", "ci_low"] > groups.loc["G2", "ci_high"]  # the interval separates them here
    assert (groups["injected_rate"].drop("G1") == 0).all()
    performance = detection_performance(frame["flipped"].to_numpy(), quality, flagged)
    assert performance["auroc"] > 0.9 and performance["recall"] > 0.5
    assert performance["n_flipped"] == frame["flipped"].sum()


def test_clean_pool_has_undefined_auroc_and_low_rates():
    frame, features = synthetic_pool(flip_rate=0.0)
    probabilities = crossfitted(frame, features)
    quality, flagged = flag_images(frame["label_given"].to_numpy(), probabilities, "prune_by_noise_rate")
    frame["flagged"] = flagged.astype(int)
    table = subgroup_error_rates(frame, probabilities, ["group"], n_boot=0, seed=0)
    assert table["error_rate"].max() < 0.08 and table["ci_low"].isna().all()
    performance = detection_performance(frame["flipped"].to_numpy(), quality, flagged)
    assert np.isnan(performance["auroc"]) and np.isnan(performance["recall"])


def test_a_fold_with_one_class_is_refused():
    with pytest.raises(DataQualityError, match="single class"):
        linear_crossfit(np.zeros((5, 2)), np.ones(5, dtype=int), np.zeros((2, 2)))


def test_grid_selection_shows_flipped_images_next_to_untouched_ones():
    frame, _ = synthetic_pool()
    frame["density"] = np.where(frame["label_clean"] == 1, "C", "B")
    selection = grid_selection(frame, "group", per_cell=4, seed=0)
    assert set(selection["row"]) == {"G1", "G2", "G3"} and set(selection["column"]) == {"B", "C"}
    cell = selection[(selection["row"] == "G1") & (selection["column"] == "C")]
    assert len(cell) == 4 and cell["flipped"].sum() == 2
    assert selection[selection["row"] != "G1"]["flipped"].sum() == 0
    merged = selection.merge(frame[["image_id", "patient_id", "flipped"]], on="image_id", suffixes=("", "_true"))
    assert (merged["flipped"] == merged["flipped_true"]).all()
    assert merged.groupby(["row", "column"])["patient_id"].agg(lambda s: s.is_unique).all()
    assert selection.equals(grid_selection(frame, "group", per_cell=4, seed=0))


def test_highest_loss_orders_by_cross_entropy_against_given_labels():
    frame = pd.DataFrame(
        {"image_id": ["a", "b", "c", "d"], "label_given": [0, 1, 0, 1], "score": [0.99, 0.9, 0.2, 0.05]}
    )
    worst = highest_loss(frame, 3)
    assert list(worst["image_id"]) == ["a", "d", "c"]
    assert worst["loss"].iloc[0] == pytest.approx(-np.log(0.01))
