"""Label bias injection: exact counts, only the target, whole patients, seeded."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from labelbias.config import scenario_bias
from labelbias.data.bias import BiasSpec, inject_bias, scenario_seed
from labelbias.data.cohort import build_cohort
from labelbias.errors import DataQualityError
from labelbias.schema import schema_defaults

# The default config's clean run as the label job gets it (no flips), with seed 0.
CLEAN = replace(BiasSpec(**scenario_bias(schema_defaults(), "clean")), seed=0)


def bias_spec(**fields: object) -> BiasSpec:
    """The default bias (the schema's: 30% of class C patients to label 0) of a scenario given by ``fields``."""
    return replace(CLEAN, **fields)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(900):
        vendor = rng.choice(["HOLO", "GEMS", "FUJI"], p=[0.6, 0.25, 0.15])
        density = rng.choice(list("ABCD"), p=[0.1, 0.4, 0.4, 0.1])
        for i in range(4):
            rows.append(
                {"image_id": f"{p}.{i}", "patient_id": 10_000_000 + p, "exam_id": p, "manufacturer": vendor,
                 "view": "CC", "laterality": "L", "density": density, "label": int(density in "CD")}
            )
    return build_cohort(pd.DataFrame(rows), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)


def _merged(cohort, labels):
    return cohort.merge(labels, on="image_id")


@pytest.mark.parametrize("attribute,subgroup", [("manufacturer", "FUJI"), ("manufacturer", "HOLO"), ("pseudo_subgroup", "PS1")])
def test_patient_mode_flips_exactly_rounded_share_of_eligible_patients(cohort, attribute, subgroup):
    spec = bias_spec(attribute=attribute, subgroup=subgroup, rate=0.3, classes=("C",), seed=4)
    merged = _merged(cohort, inject_bias(cohort, spec))
    eligible = merged[(merged[attribute] == subgroup) & (merged["density"] == "C")]
    flipped = merged[merged["flipped"] == 1]
    # the whole cohort's count, shared so every split carries the rate (within one patient of
    # its rounded share): the model trains and picks its threshold at the named rate
    assert flipped["patient_id"].nunique() == round(0.3 * eligible["patient_id"].nunique())
    for split in ("train", "val", "test"):
        in_split = eligible["split"] == split
        share = 0.3 * eligible.loc[in_split, "patient_id"].nunique()
        assert abs(flipped.loc[flipped["split"] == split, "patient_id"].nunique() - share) <= 1
    # only the target subgroup's C images, each from 1 to 0
    assert set(flipped[attribute]) == {subgroup} and set(flipped["density"]) == {"C"}
    assert (flipped["label_clean"] == 1).all() and (flipped["label_biased"] == 0).all()
    # all images of a chosen patient flip
    chosen = merged[merged["patient_id"].isin(flipped["patient_id"])]
    assert chosen["flipped"].all()
    # biased differs from clean exactly where flipped
    assert ((merged["label_biased"] != merged["label_clean"]) == (merged["flipped"] == 1)).all()
    assert (merged["label_clean"] == merged["label"]).all()


@pytest.mark.parametrize("mode", ["patient", "image"])
def test_whole_cohort_flips_the_rate_overall_not_per_split(cohort, mode):
    """per_split off: the reference's draw over the whole table; the split counts then vary with the seed."""
    spec = bias_spec(attribute="manufacturer", subgroup="FUJI", rate=0.3, mode=mode, per_split=False, seed=4)
    merged = _merged(cohort, inject_bias(cohort, spec))
    eligible = merged[(merged["manufacturer"] == "FUJI") & (merged["density"] == "C")]
    unit = "patient_id" if mode == "patient" else "image_id"
    assert merged.loc[merged["flipped"] == 1, unit].nunique() == round(0.3 * eligible[unit].nunique())
    shares = [
        merged.loc[(merged["flipped"] == 1) & (merged["split"] == split), unit].nunique()
        / eligible.loc[eligible["split"] == split, unit].nunique()
        for split in ("train", "val", "test")
    ]
    assert max(shares) - min(shares) > 0.01  # not held at 0.3 in each split


def test_clean_scenario_flips_nothing(cohort):
    labels = inject_bias(cohort, bias_spec())
    assert labels["flipped"].sum() == 0 and labels["label_biased"].equals(labels["label_clean"])
    assert list(labels.columns) == ["image_id", "label_clean", "label_biased", "flipped"]


def test_image_mode_flips_rounded_share_of_images(cohort):
    spec = bias_spec(attribute="manufacturer", subgroup="GEMS", rate=0.25, classes=("C", "D"), mode="image", seed=2)
    merged = _merged(cohort, inject_bias(cohort, spec))
    eligible = merged[(merged["manufacturer"] == "GEMS") & merged["density"].isin(["C", "D"])]
    assert merged["flipped"].sum() == round(0.25 * len(eligible))
    for split in ("train", "val", "test"):
        share = 0.25 * (eligible["split"] == split).sum()
        assert abs(merged.loc[merged["split"] == split, "flipped"].sum() - share) <= 1
    assert set(merged.loc[merged["flipped"] == 1, "density"]) <= {"C", "D"}


def test_flip_direction_zero_to_one(cohort):
    spec = bias_spec(attribute="manufacturer", subgroup="HOLO", rate=0.5, classes=("B",), from_label=0, seed=1)
    merged = _merged(cohort, inject_bias(cohort, spec))
    flipped = merged[merged["flipped"] == 1]
    assert len(flipped) > 0 and (flipped["label_biased"] == 1).all() and set(flipped["density"]) == {"B"}


def test_seeded_and_scenario_specific(cohort):
    spec = bias_spec(attribute="manufacturer", subgroup="HOLO", seed=scenario_seed(2025, "HOLO"))
    assert inject_bias(cohort, spec).equals(inject_bias(cohort, spec))
    other = bias_spec(attribute="manufacturer", subgroup="HOLO", seed=scenario_seed(2025, "HOLO_rate30"))
    assert not inject_bias(cohort, spec)["flipped"].equals(inject_bias(cohort, other)["flipped"])
    assert scenario_seed(2025, "HOLO") == scenario_seed(2025, "HOLO")  # stable across processes


def test_empty_or_unknown_subgroup_is_a_clear_error(cohort):
    with pytest.raises(DataQualityError, match="subgroup 'SIEM' of attribute 'manufacturer' has no image"):
        inject_bias(cohort, bias_spec(attribute="manufacturer", subgroup="SIEM"))
    with pytest.raises(DataQualityError, match="bias attribute 'scanner' is not a cohort column"):
        inject_bias(cohort, bias_spec(attribute="scanner", subgroup="X"))


@pytest.mark.parametrize("mode", ["patient", "image"])
def test_higher_rates_flip_a_superset_with_the_same_seed(cohort, mode):
    flipped = {}
    for rate in (0.1, 0.3, 0.5, 1.0):
        spec = bias_spec(attribute="manufacturer", subgroup="HOLO", rate=rate, mode=mode, seed=11)
        flipped[rate] = set(cohort.loc[inject_bias(cohort, spec)["flipped"].to_numpy() == 1, "image_id"])
    assert flipped[0.1] <= flipped[0.3] <= flipped[0.5] <= flipped[1.0]
    assert len(flipped[0.1]) < len(flipped[0.5])
    eligible = cohort[(cohort["manufacturer"] == "HOLO") & (cohort["density"] == "C")]
    assert flipped[1.0] == set(eligible["image_id"])


def test_allocation_keeps_small_strata_flips_and_nests():
    from labelbias.data.bias import allocate

    # one eligible patient in each split: a 50% rate still flips round(1.5) = 2 of the 3
    assert sum(allocate(2, {"test": 1, "train": 1, "val": 1}).values()) == 2
    sizes = {"test": 125, "train": 60, "val": 30}
    assert allocate(64, sizes) == {"test": 37, "train": 18, "val": 9}  # each split's rounded share
    previous = {stratum: 0 for stratum in sizes}
    for total in range(sum(sizes.values()) + 1):
        counts = allocate(total, sizes)
        assert sum(counts.values()) == total and all(counts[s] >= previous[s] for s in sizes)  # nested
        assert all(counts[s] <= sizes[s] for s in sizes)
        previous = counts


def test_the_schema_offers_exactly_the_registered_modes():
    from labelbias.data.bias import BIAS_MODES
    from labelbias.schema import load_schema

    schema = load_schema()
    scenario = schema["properties"]["scenarios"]["additionalProperties"]
    scenario = schema["definitions"][scenario["$ref"].rsplit("/", 1)[-1]] if "$ref" in scenario else scenario
    assert schema["properties"]["bias"]["properties"]["mode"]["enum"] == list(BIAS_MODES)
    assert scenario["properties"]["mode"]["enum"] == list(BIAS_MODES)
