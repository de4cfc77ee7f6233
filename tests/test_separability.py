"""Separability tables and the linear probe, on data with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sklearn.metrics import roc_auc_score

from labelbias.analysis.separability import (
    patient_bootstrap_auc,
    probe_subgroup_information,
    separability_table,
    shrinkage_lda_probabilities,
)
from labelbias.models.metrics import auc, macro_ovr_auc, weighted_auc


def _cohort(n_patients: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        vendor = ["HOLO", "GEMS", "FUJI"][p % 3]
        group = ["PS1", "PS2", "PS3"][int(rng.integers(0, 3))]
        for i in range(4):
            rows.append({"image_id": f"{p}.{i}", "patient_id": p, "manufacturer": vendor, "pseudo_subgroup": group,
                         "split": "test"})
    return pd.DataFrame(rows)


def test_perfect_and_random_classifiers_give_auc_one_and_about_half():
    cohort = _cohort()
    rng = np.random.default_rng(1)
    perfect = cohort[["image_id", "split"]].copy()
    for vendor in ["HOLO", "GEMS", "FUJI"]:
        perfect[f"prob_{vendor}"] = (cohort["manufacturer"] == vendor).astype(float) * 0.9 + 0.05
    table = separability_table(perfect, cohort, "manufacturer", n_boot=200, seed=0).set_index("subgroup")
    assert (table["auc"] == 1.0).all() and (table["ci_low"] == 1.0).all()
    assert table.loc["FUJI", "n_patients"] == 40 and table.loc["FUJI", "n_images"] == 160

    random = cohort[["image_id", "split"]].copy()
    for group in ["PS1", "PS2", "PS3"]:
        random[f"prob_{group}"] = rng.random(len(cohort))
    table = separability_table(random, cohort, "pseudo_subgroup", n_boot=200, seed=0)
    assert table["auc"].between(0.35, 0.65).all()
    assert ((table["ci_low"] < 0.5) & (table["ci_high"] > 0.5)).all()


def test_weighted_auc_equals_the_auc_of_the_repeated_images():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.4 * labels, 1)  # rounded: many ties across classes
    weights = rng.integers(0, 4, size=(25, 200))
    weights[0] = 1
    weights[1] = np.where(labels == 1, weights[1], 0)  # one class only: undefined
    aucs = weighted_auc(labels, scores, weights)
    assert aucs[0] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(aucs[1])
    for draw in range(2, 25):
        repeated = np.repeat(np.arange(200), weights[draw])
        assert aucs[draw] == pytest.approx(roc_auc_score(labels[repeated], scores[repeated]), abs=1e-12)


def test_auc_and_macro_auc_are_scikit_learns():
    rng = np.random.default_rng(6)
    targets = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet([1, 1, 1], 300) + 0.3 * np.eye(3)[targets]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert auc(targets == 1, probabilities[:, 1]) == pytest.approx(roc_auc_score(targets == 1, probabilities[:, 1]), abs=1e-12)
    expected = roc_auc_score(targets, probabilities, multi_class="ovr", average="macro", labels=[0, 1, 2])
    assert macro_ovr_auc(targets, probabilities) == pytest.approx(expected, abs=1e-12)
    # a class absent from the targets is left out of the mean
    present = targets != 2
    two_classes = roc_auc_score(targets[present] == 0, probabilities[present, 0])
    assert macro_ovr_auc(targets[present], probabilities[present]) == pytest.approx(
        np.mean([two_classes, roc_auc_score(targets[present] == 1, probabilities[present, 1])]), abs=1e-12
    )


def test_patient_bootstrap_is_wider_than_image_count_suggests():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(60), 5)
    labels = np.repeat(rng.integers(0, 2, 60), 5)
    scores = np.repeat(rng.random(60), 5) + labels * 0.3  # a patient's images share their score
    low, high = patient_bootstrap_auc(labels, scores, patients, 300, seed=0)
    assert low < high and high - low > 0.1


def test_probe_finds_information_only_where_it_is():
    cohort = _cohort(150)
    rng = np.random.default_rng(2)
    features = rng.normal(size=(len(cohort), 16))
    features[:, 0] += 3 * (cohort["manufacturer"] == "FUJI").to_numpy()
    table = probe_subgroup_information(features, cohort, ["manufacturer", "pseudo_subgroup"], folds=5, seed=0)
    auc = table.set_index(["attribute", "subgroup"])["auc"]
    assert auc[("manufacturer", "FUJI")] > 0.95
    assert 0.35 < auc[("pseudo_subgroup", "all (macro)")] < 0.65


def test_seeds_are_averaged_and_their_spread_widens_the_interval():
    cohort = _cohort()
    rng = np.random.default_rng(3)
    runs = []
    for strength in (0.3, 0.9):  # a weak and a strong classifier: two seeds that disagree
        frame = cohort[["image_id", "split"]].copy()
        for vendor in ["HOLO", "GEMS", "FUJI"]:
            frame[f"prob_{vendor}"] = strength * (cohort["manufacturer"] == vendor) + rng.random(len(cohort))
        runs.append(frame)
    single = [separability_table(r, cohort, "manufacturer", n_boot=200, seed=0).set_index("subgroup") for r in runs]
    both = separability_table(runs, cohort, "manufacturer", n_boot=200, seed=0).set_index("subgroup")
    for vendor in ["HOLO", "GEMS", "FUJI"]:
        assert both.loc[vendor, "auc"] == pytest.approx((single[0].loc[vendor, "auc"] + single[1].loc[vendor, "auc"]) / 2, abs=1e-4)
        assert both.loc[vendor, "n_seeds"] == 2
        assert both.loc[vendor, "auc_min_seed"] == single[0].loc[vendor, "auc"]
        assert both.loc[vendor, "ci_high"] - both.loc[vendor, "ci_low"] > single[1].loc[vendor, "ci_high"] - single[1].loc[vendor, "ci_low"]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_shrinkage_lda_is_scikit_learns(n_classes):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    y = rng.integers(0, n_classes, 400)
    x = rng.normal(size=(400, 40)) + 0.7 * y[:, None] * (np.arange(40) < 5)
    x[:, 7] = 0.0  # a dead unit, as ReLU features have
    x = x.astype(np.float32)
    reference = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"))
    reference.fit(x[:300], y[:300])
    ours = shrinkage_lda_probabilities(x[:300], y[:300], x[300:], n_classes)
    np.testing.assert_allclose(ours, reference.predict_proba(x[300:]), atol=1e-6)


def test_probe_on_fewer_patients_than_folds_uses_one_fold_per_patient():
    cohort = _cohort(150)
    few = cohort[cohort["patient_id"].isin(cohort["patient_id"].unique()[:3])]
    features = np.random.default_rng(4).normal(size=(len(few), 8))
    table = probe_subgroup_information(features, few, ["pseudo_subgroup"], folds=5, seed=0)
    assert len(table) and table["auc"].between(0, 1).all()
    single = few[few["patient_id"] == few["patient_id"].iloc[0]]
    assert probe_subgroup_information(features[: len(single)], single, ["pseudo_subgroup"]).empty
