"""What a clean audit buys: thresholds re-picked with part of the validation set relabelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelbias.detection.audit import AUDIT_COLUMNS, audit_curve, audit_summary, audited_labels, patient_suspicion
from labelbias.analysis.evaluation import threshold_at_fpr


def toy_frame(seed: int = 0) -> pd.DataFrame:
    """Two vendors, 60 val and 60 test patients, 2 images each; a third of vendor B's positive
    validation patients flipped to 0 (they keep their high scores)."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("val", "test"):
        for p in range(60):
            patient = f"{split}{p:02d}"
            vendor = "B" if p % 2 else "A"
            clean = int(p % 4 < 2)
            flipped = split == "val" and vendor == "B" and clean == 1 and p % 3 == 0
            for image in range(2):
                rows.append(
                    {
                        "image_id": f"{patient}_{image}",
                        "patient_id": patient,
                        "split": split,
                        "manufacturer": vendor,
                        "score": float(np.clip(rng.normal(0.7 if clean else 0.35, 0.15), 0, 1)),
                        "label_clean": clean,
                        "label_biased": 0 if flipped else clean,
                    }
                )
    return pd.DataFrame(rows)


def test_audited_labels_are_clean_for_relabelled_patients_only():
    val = toy_frame().query("split == 'val'")
    flipped = sorted(val.loc[val["label_clean"] != val["label_biased"], "patient_id"].unique())
    labels = audited_labels(val, flipped[:2])
    chosen = val["patient_id"].isin(flipped[:2]).to_numpy()
    assert (labels[chosen] == val["label_clean"].to_numpy()[chosen]).all()
    assert (labels[~chosen] == val["label_biased"].to_numpy()[~chosen]).all()
    assert (labels != val["label_biased"].to_numpy()).sum() == 4  # two patients, two images each


def test_curve_ends_are_the_biased_and_clean_label_thresholds_and_draws_are_seeded():
    frame = toy_frame()
    val = frame[frame["split"] == "val"]
    curve = audit_curve(frame, [5, 20, 500], 4, 0.1, ["manufacturer"], seed=1)
    assert list(curve.columns) == AUDIT_COLUMNS and set(curve["strategy"]) == {"random"}
    assert sorted(curve["n_requested"].unique()) == [0, 5, 20, 60, 500]
    assert curve["n_relabelled"].max() == 60  # 500 is capped at the 60 validation patients
    overall = curve[curve["attribute"] == "all"]
    biased = threshold_at_fpr(val["label_biased"].to_numpy(), val["score"].to_numpy(), 0.1)
    clean = threshold_at_fpr(val["label_clean"].to_numpy(), val["score"].to_numpy(), 0.1)
    assert biased != clean
    assert (overall.loc[overall["n_requested"] == 0, "threshold"] == biased).all()
    assert (overall.loc[overall["n_requested"] >= 60, "threshold"] == clean).all()
    assert overall.groupby("n_requested")["draw"].nunique().to_dict() == {0: 1, 5: 4, 20: 4, 60: 1, 500: 1}
    pd.testing.assert_frame_equal(curve, audit_curve(frame, [5, 20, 500], 4, 0.1, ["manufacturer"], seed=1))
    other = audit_curve(frame, [5, 20, 500], 4, 0.1, ["manufacturer"], seed=2)
    assert not other["threshold"].equals(curve["threshold"])


def test_suspect_first_audit_recovers_with_the_flipped_patients_alone():
    frame = toy_frame()
    val = frame[frame["split"] == "val"]
    flipped = set(val.loc[val["label_clean"] != val["label_biased"], "patient_id"])
    # A detector that ranks exactly the flipped patients lowest.
    detection = val.assign(quality=np.where(val["patient_id"].isin(flipped), 0.1, 0.9))
    suspicion = patient_suspicion(pd.concat([detection, detection.assign(split="train", patient_id="t")]))
    assert set(suspicion.index[: len(flipped)]) == flipped and len(suspicion) == 60
    curve = audit_curve(frame, [len(flipped)], 3, 0.1, ["manufacturer"], seed=0, suspicion=suspicion)
    suspect = curve[(curve["strategy"] == "suspect") & (curve["attribute"] == "all")].set_index("n_requested")
    assert suspect.loc[len(flipped), "threshold"] == suspect.loc[60, "threshold"]  # all that needed fixing
    targets = {"B": ("manufacturer", "B")}
    summary = audit_summary({"B": curve}, targets, recover_share=0.9, min_tpr_lost=0.0)
    row = summary[(summary["subgroup"] == "B") & (summary["strategy"] == "suspect")].iloc[0]
    assert bool(row["biased_subgroup"]) and row["tpr_lost"] > 0
    assert row["n_to_recover"] <= len(flipped)
    random = summary[(summary["subgroup"] == "B") & (summary["strategy"] == "random")].iloc[0]
    assert random["n_to_recover"] > row["n_to_recover"]


def test_summary_reads_the_smallest_size_that_recovers_the_share():
    rows = []
    for n, tpr in [(0, 0.60), (10, 0.70), (25, 0.85), (50, 0.89), (80, 0.90)]:
        for draw in range(2):
            rows.append({"strategy": "random", "n_requested": n, "n_relabelled": n, "draw": draw, "threshold": 0.5,
                         "attribute": "manufacturer", "subgroup": "FUJI", "tpr": tpr + (0.01 if draw else -0.01),
                         "fpr": 0.1, "n_pos": 10, "n_neg": 10})
    curve = pd.DataFrame(rows)
    summary = audit_summary({"FUJI": curve}, {"FUJI": ("manufacturer", "FUJI")}, 0.9, 0.05).iloc[0]
    assert summary["tpr_lost"] == pytest.approx(0.30) and summary["n_val_patients"] == 80
    assert summary["n_to_recover"] == 50  # 0.60 + 0.9 * 0.30 = 0.87: 25 gives 0.85, 50 gives 0.89
    nothing_lost = audit_summary({"FUJI": curve}, {"FUJI": ("manufacturer", "FUJI")}, 0.9, 0.5).iloc[0]
    assert np.isnan(nothing_lost["n_to_recover"])
