"""Thresholds, subgroup rates with patient-level intervals, Table 2 and PC1 orientation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelbias.evaluation import (
    assemble_table2,
    bootstrap_rates,
    evaluate_scenario,
    table2_layout,
    threshold_at_fpr,
)
from labelbias.features import oriented_pc1


def test_threshold_is_the_roc_point_closest_to_the_target_fpr():
    labels = np.array([0] * 10 + [1] * 10)
    scores = np.concatenate([np.linspace(0.0, 0.9, 10), np.linspace(0.5, 1.0, 10)])
    threshold = threshold_at_fpr(labels, scores, 0.1)
    predicted = scores >= threshold
    assert predicted[labels == 0].mean() == pytest.approx(0.1)
    assert threshold == pytest.approx(0.9)
    with pytest.raises(ValueError):
        threshold_at_fpr(np.zeros(5), np.arange(5.0), 0.1)


def _scenario(seed: int = 0, n_patients: int = 400):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        label = p % 2
        vendor = ["HOLO", "GEMS", "FUJI"][p % 3]
        split = "val" if p < n_patients // 2 else "test"
        flip = label == 1 and vendor == "GEMS" and rng.random() < 0.3
        for i in range(3):
            score = float(np.clip(rng.normal(0.3 + 0.4 * label - 0.2 * flip, 0.15), 0, 1))
            rows.append({"image_id": f"{p}.{i}", "patient_id": p, "split": split, "score": score,
                         "label_clean": label, "label_biased": 0 if flip else label, "flipped": int(flip),
                         "manufacturer": vendor, "pseudo_subgroup": f"PS{p % 3 + 1}"})
    frame = pd.DataFrame(rows)
    return (frame[["image_id", "split", "score"]], frame[["image_id", "label_clean", "label_biased", "flipped"]],
            frame[["image_id", "patient_id", "manufacturer", "pseudo_subgroup"]])


def test_evaluation_uses_clean_test_labels_and_the_chosen_validation_labels():
    predictions, labels, cohort = _scenario()
    clean = evaluate_scenario(predictions, labels, cohort, "clean", ["manufacturer"], 0.1, 200, 0)
    biased = evaluate_scenario(predictions, labels, cohort, "biased", ["manufacturer"], 0.1, 200, 0)
    # flipped positives count as negatives with biased labels: the threshold can only rise
    assert biased["threshold"].iloc[0] >= clean["threshold"].iloc[0]
    overall = clean[clean["attribute"] == "all"].iloc[0]
    test = predictions[predictions["split"] == "test"].merge(labels, on="image_id")
    positives = test[test["label_clean"] == 1]
    assert overall["tpr"] == pytest.approx((positives["score"] >= overall["threshold"]).mean())
    assert overall["n_pos"] == len(positives)
    assert set(clean["subgroup"]) == {"all", "HOLO", "GEMS", "FUJI"}
    assert (clean["tpr_ci_low"] <= clean["tpr"]).all() and (clean["tpr"] <= clean["tpr_ci_high"]).all()
    val = predictions[predictions["split"] == "val"].merge(labels, on="image_id")
    val_fpr = (val.loc[val["label_clean"] == 0, "score"] >= overall["threshold"]).mean()
    assert val_fpr == pytest.approx(0.1, abs=0.01)


def test_patient_bootstrap_narrows_with_more_patients():
    rng = np.random.default_rng(0)

    def width(n):
        patients = np.repeat(np.arange(n), 4)
        labels = np.ones(len(patients), dtype=int)
        predicted = np.repeat(rng.random(n) < 0.9, 4)
        (low, high), _ = bootstrap_rates(labels, predicted, patients, 500, np.random.default_rng(1))
        return high - low

    assert width(400) < width(50)


def test_table2_changes_are_relative_to_the_baseline_for_both_sources():
    predictions, labels, cohort = _scenario()
    per = {}
    for name, shift in (("clean", 0.0), ("GEMS", -0.1)):
        shifted = predictions.assign(score=(predictions["score"] + shift * (cohort["manufacturer"] == "GEMS")).clip(0, 1))
        biased_labels = labels if name != "clean" else labels.assign(label_biased=labels["label_clean"], flipped=0)
        per[name] = pd.concat(
            [evaluate_scenario(shifted, biased_labels, cohort, s, ["manufacturer"], 0.1, 50, 0) for s in ("clean", "biased")]
        )
    table = assemble_table2(per, "clean")
    base = table[table["scenario"] == "clean"]
    assert set(base["threshold_source"]) == {"clean", "biased"}
    assert (base["tpr_change_pct"] == 0).all() and (base["fpr_change_pct"] == 0).all()
    row = table[(table["scenario"] == "GEMS") & (table["threshold_source"] == "clean") & (table["subgroup"] == "GEMS")].iloc[0]
    reference = base[(base["threshold_source"] == "clean") & (base["subgroup"] == "GEMS")].iloc[0]
    assert row["tpr_change_pct"] == pytest.approx(100 * (row["tpr"] - reference["tpr"]) / reference["tpr"])
    assert row["tpr"] < reference["tpr"]
    layout = table2_layout(table, "manufacturer", ["clean", "GEMS"], "clean")
    assert list(layout["bias in"]) == ["clean", "GEMS", "GEMS"]
    assert list(layout.columns[2:]) == ["TPR FUJI", "TPR GEMS", "TPR HOLO", "FPR FUJI", "FPR GEMS", "FPR HOLO"]
    assert "%" in layout.iloc[1]["TPR GEMS"] and "%" not in layout.iloc[0]["TPR GEMS"]


def test_pc1_is_oriented_by_the_score_and_standardised():
    rng = np.random.default_rng(0)
    scores = rng.random(300)
    features = np.outer(scores, rng.normal(size=16)) * 5 + rng.normal(scale=0.1, size=(300, 16))
    for sign in (1, -1):
        pc1, explained, correlation = oriented_pc1(sign * features, scores)
        assert correlation > 0.9 and explained > 0.5
        assert pc1.mean() == pytest.approx(0, abs=1e-9) and pc1.std() == pytest.approx(1)
