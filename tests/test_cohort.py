"""The study's filters, de-duplication, balance, splits and pseudo-groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelbias.data.cohort import (
    AttributeSpec,
    CohortFilters,
    assert_patient_disjoint,
    assign_pseudo_groups,
    balance_classes,
    build_cohort,
    hold_out_patients,
    select_images,
    split_patients,
    split_summary,
    table1,
)
from labelbias.data.embed import read_embed_tables
from labelbias.errors import DataQualityError, InputTableError

VENDORS = {"HOLOGIC, Inc.": "HOLO", "GE MEDICAL SYSTEMS": "GEMS", "FUJIFILM Corporation": "FUJI"}
RACE = AttributeSpec("RACE_DESC", {"Caucasian or White": "White", "African American  or Black": "Black", "Asian": "Asian"})


@pytest.fixture
def selected(embed_tables_paths):
    tables = read_embed_tables(*embed_tables_paths)
    return select_images(tables, CohortFilters(vendors=VENDORS, attributes={"race": RACE}))


def test_each_filter_removes_what_it_should(selected):
    images, log = selected
    patients = set(images["patient_id"])
    assert 10000004 not in patients  # man, tissueden 5
    assert 10000005 not in patients  # GE HEALTHCARE, the fourth vendor
    assert 10000006 not in patients  # two density values
    assert patients == {10000001, 10000002, 10000003, 10000007, 10000008}
    assert set(images["view"]) == {"CC", "MLO"}  # XCCL gone
    paths = set(images["image_path"])
    assert not any("1.2.3.21.5.1" in p for p in paths)  # spot magnification view
    assert not any("1.2.3.71.3.1" in p or "1.2.3.71.4.1" in p for p in paths)  # C-view
    assert not any("1.2.3.71.6.1" in p for p in paths)  # ROI_SSC
    assert len(images) == 16
    steps = log.set_index("step")
    assert steps.loc["merged with clinical findings", "rows"] > steps.loc["merged with clinical findings", "images"]
    assert steps.loc["one row per image", "rows"] == 16


def test_finding_merge_is_deduplicated_and_labels_follow_density(selected):
    images, _ = selected
    assert images["image_id"].is_unique
    p1 = images[images["patient_id"] == 10000001]
    assert len(p1) == 4  # two findings, still four images
    assert set(p1["density"]) == {"B"} and set(p1["label"]) == {0}
    p3 = images[images["patient_id"] == 10000003]
    assert set(p3["manufacturer"]) == {"FUJI"} and set(p3["density"]) == {"D"} and set(p3["label"]) == {1}
    assert images.set_index("patient_id").loc[10000002, "race"].iloc[0] == "Black"
    assert images.set_index("patient_id").loc[10000007, "race"].iloc[0] == "Other"


def test_verbatim_duplicate_metadata_row_is_dropped(selected):
    images, log = selected
    assert (images["patient_id"] == 10000008).sum() == 2
    assert log.iloc[0]["rows"] == 29  # 30 lines, one repeated verbatim


def test_conflicting_duplicate_metadata_rows_are_an_error(embed_tables_paths, tmp_path):
    metadata_path, clinical_path = embed_tables_paths
    frame = pd.read_csv(metadata_path, dtype=str)
    frame.loc[len(frame) - 1, "ImageLateralityFinal"] = "L"  # same file, other laterality
    broken = tmp_path / "metadata.csv"
    frame.to_csv(broken, index=False)
    tables = read_embed_tables(broken, clinical_path)
    with pytest.raises(InputTableError, match=r"metadata\.csv: image .*1\.2\.3\.81\.2\.1\.dcm' appears on several lines"):
        select_images(tables, CohortFilters(vendors=VENDORS))


def test_no_image_left_is_a_clear_error(embed_tables_paths):
    tables = read_embed_tables(*embed_tables_paths)
    with pytest.raises(DataQualityError, match=r"metadata.* / .*clinical.*: no image is left after the filters") as raised:
        select_images(tables, CohortFilters(vendors={"SIEMENS": "SIEM"}))
    # The job stops before its filter log is written, so the message carries the log:
    # the step that emptied the cohort shows as the first with 0 images.
    steps = str(raised.value).splitlines()[1:]
    emptied = next(line for line in steps if line.split()[0] == "0")
    assert "Manufacturer in SIEMENS" in emptied and steps[0].split()[0] != "0"


def test_table1_counts_vendor_by_density(selected):
    images, _ = selected
    table = table1(images).set_index("manufacturer")
    assert table.loc["HOLO", ["A", "B", "C", "D", "total"]].tolist() == [2, 4, 2, 0, 8]
    assert table.loc["FUJI", "D"] == 4 and table.loc["GEMS", "C"] == 4
    assert table["percent"].sum() == pytest.approx(100.0, abs=0.2)


def _synthetic_images(n_patients: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        vendor = rng.choice(["HOLO", "GEMS", "FUJI"], p=[0.6, 0.25, 0.15])
        density = rng.choice(list("ABCD"), p=[0.1, 0.4, 0.4, 0.1])
        for i in range(int(rng.integers(2, 6))):
            rows.append(
                {
                    "image_id": f"{p}.{i}",
                    "patient_id": 10_000_000 + p,
                    "exam_id": 10**15 + p,
                    "manufacturer": vendor,
                    "view": "CC",
                    "laterality": "L",
                    "density": density,
                    "label": int(density in "CD"),
                }
            )
    return pd.DataFrame(rows)


def test_balance_is_exact_and_seeded():
    images = _synthetic_images()
    balanced = balance_classes(images, seed=3)
    counts = balanced["label"].value_counts()
    assert counts[0] == counts[1] == images["label"].value_counts().min()
    assert balanced.equals(balance_classes(images, seed=3))
    assert not balanced.equals(balance_classes(images, seed=4))


def test_split_is_patient_level_with_requested_fractions():
    images = _synthetic_images(600)
    split = split_patients(images, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1, stratify=["manufacturer", "label"])
    assert split.index.is_unique and len(split) == images["patient_id"].nunique()
    shares = split.value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.6, abs=0.02)
    assert shares["test"] == pytest.approx(0.2, abs=0.02)
    # stratified: every vendor appears in every split in about the same share
    vendor = images.drop_duplicates("patient_id").set_index("patient_id")["manufacturer"]
    fuji = split[vendor[vendor == "FUJI"].index]
    assert fuji.value_counts(normalize=True)["test"] == pytest.approx(0.2, abs=0.05)


def test_cohort_has_no_patient_in_two_splits_and_equal_pseudo_groups():
    cohort = build_cohort(_synthetic_images(500), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=5)
    assert cohort.groupby("patient_id")["split"].nunique().max() == 1
    assert cohort.groupby("patient_id")["pseudo_subgroup"].nunique().max() == 1
    sizes = cohort.drop_duplicates("patient_id")["pseudo_subgroup"].value_counts()
    assert set(sizes.index) == {"PS1", "PS2", "PS3"} and sizes.max() - sizes.min() <= 1
    again = build_cohort(_synthetic_images(500), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=5)
    assert cohort.equals(again)


def test_patient_leak_is_caught_in_code():
    cohort = pd.DataFrame({"patient_id": [1, 1, 2], "split": ["train", "test", "val"]})
    with pytest.raises(DataQualityError, match="1 patient"):
        assert_patient_disjoint(cohort)


def test_pseudo_groups_are_seeded_per_patient():
    groups = assign_pseudo_groups(np.array([5, 1, 3, 3, 9, 7]), 3, seed=1)
    assert list(groups.index) == [1, 3, 5, 7, 9]
    assert groups.equals(assign_pseudo_groups(np.array([9, 7, 5, 3, 1]), 3, seed=1))


def test_split_summary_reports_interval_width():
    cohort = build_cohort(_synthetic_images(400), {"train": 0.5, "val": 0.2, "test": 0.3}, seed=2)
    summary = split_summary(cohort, ["manufacturer"])
    row = summary[(summary["subgroup"] == "HOLO") & (summary["split"] == "test")].iloc[0]
    assert row["tpr_halfwidth_patients"] > row["tpr_halfwidth_images"] > 0


def test_held_out_patients_never_reach_the_cohort():
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(200), 4)
    images = pd.DataFrame(
        {
            "image_id": [f"i{i}" for i in range(len(patients))],
            "patient_id": patients,
            "exam_id": patients,
            "manufacturer": np.repeat(rng.choice(["HOLO", "GEMS", "FUJI"], 200), 4),
            "label": np.repeat(rng.integers(0, 2, 200), 4),
        }
    )
    kept, held = hold_out_patients(images, 0.25, 0.2, seed=4, stratify=["manufacturer", "label"])
    assert set(kept["patient_id"]).isdisjoint(held["patient_id"])
    assert len(kept) + len(held) == len(images)
    assert abs(held["patient_id"].nunique() - 50) <= 3
    assert set(held["split"]) == {"train", "val"}
    assert held.groupby("patient_id")["split"].nunique().max() == 1
    assert abs((held.drop_duplicates("patient_id")["split"] == "val").mean() - 0.2) < 0.06
    same_kept, same_held = hold_out_patients(images, 0.25, 0.2, seed=4, stratify=["manufacturer", "label"])
    assert same_kept.equals(kept) and same_held.equals(held)
    everything, nothing = hold_out_patients(images, 0.0, 0.2, seed=4)
    assert everything.equals(images) and nothing.empty and "split" in nothing.columns
    with pytest.raises(DataQualityError, match="too few for a train and a val part"):
        hold_out_patients(images[images["patient_id"] < 8], 0.15, 0.2, seed=4)


def test_table1_and_cohort_columns_take_any_attribute_and_class_column():
    from labelbias.data.cohort import build_cohort, cohort_columns

    images = pd.DataFrame({
        "image_id": [f"p{i // 2}/s1/v{i % 2}" for i in range(40)],
        "patient_id": [f"patient{i // 2:05d}" for i in range(40)],
        "exam_id": [f"patient{i // 2:05d}/s1" for i in range(40)],
        "view": "Frontal", "laterality": "",
        "effusion": [str(v) for v in ([0, 1] * 20)],
        "label": [0, 1] * 20,
        "image_path": [f"p{i}.jpg" for i in range(40)],
        "sex": ["F", "M", "M", "F"] * 10,
    })
    table = table1(images, "sex", "effusion", ["0", "1"])
    assert list(table.columns) == ["sex", "total", "percent", "0", "1"] and table["total"].sum() == 40
    cohort = build_cohort(images, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=1, stratify=["label"])
    assert list(cohort.columns) == cohort_columns(images) == [
        "image_id", "patient_id", "exam_id", "view", "laterality", "effusion", "label", "split", "pseudo_subgroup", "sex"]
    assert cohort.groupby("patient_id")["split"].nunique().max() == 1  # string patient ids split by patient
