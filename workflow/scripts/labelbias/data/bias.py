"""Subgroup label bias: flip labels of a seeded share of one subgroup's patients or images."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataQualityError
from .table import canonical

LABEL_COLUMNS = ["image_id", "label_clean", "label_biased", "flipped"]


@dataclass(frozen=True)
class BiasSpec:
    """What a scenario does to the labels.

    ``attribute`` None means the clean baseline. ``mode`` "patient" flips all images
    of round(rate x eligible patients) patients (the study); "image" flips
    round(rate x eligible images) images chosen independently of patient (Jones et
    al.'s per-positive flip, with the count fixed so scenarios compare exactly).
    ``per_split`` shares that count out over the splits (train, val, test) in
    proportion to their eligible patients or images (:func:`allocate`) and draws each
    split's flips from its own: the rate the scenario names is then the rate the model
    trains on and the threshold is picked with. Over the whole cohort, a 30%
    flip of a minority's 60 training patients left 9 to 21 of them flipped from one
    seed to the next (docs/design-log.md).
    """

    attribute: str | None
    subgroup: str | None
    rate: float
    classes: tuple[str, ...]  # fine classes whose images may flip (EMBED: BI-RADS letters)
    class_column: str
    from_label: int
    mode: str
    seed: int
    per_split: bool

    def __post_init__(self) -> None:
        # Snakemake params hold lists; a spec is hashable and compares equal either way.
        object.__setattr__(self, "classes", tuple(self.classes))


@dataclass(frozen=True)
class BiasMode:
    """How a scenario picks what it flips (``bias.mode``): the units of a stratum's eligible
    images, drawn in a seeded order, and the images that the units drawn cover."""

    units: Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    images: Callable[[pd.DataFrame, np.ndarray, np.ndarray], np.ndarray]


def _patients(cohort: pd.DataFrame, eligible: np.ndarray) -> np.ndarray:
    return np.unique(cohort.loc[eligible, "patient_id"].to_numpy())


def _images_of_patients(cohort: pd.DataFrame, eligible: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    return eligible & cohort["patient_id"].isin(chosen).to_numpy()


def _images(cohort: pd.DataFrame, eligible: np.ndarray) -> np.ndarray:
    return np.flatnonzero(eligible)


def _chosen_images(cohort: pd.DataFrame, eligible: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    covered = np.zeros(len(cohort), dtype=bool)
    covered[chosen] = True
    return covered


# A new mode is one entry here (and its name in the schema's bias.mode enum, which a test checks).
BIAS_MODES = {
    "patient": BiasMode(_patients, _images_of_patients),  # the study: all images of a patient
    "image": BiasMode(_images, _chosen_images),  # Jones et al.: images independently of patient
}


def scenario_seed(base_seed: int, scenario: str) -> int:
    """A per-scenario seed that does not change when other scenarios are added."""
    return (int(base_seed) * 1_000_003 + zlib.crc32(scenario.encode("utf-8"))) % (2**32)


def inject_bias(cohort: pd.DataFrame, spec: BiasSpec) -> pd.DataFrame:
    """Return ``image_id, label_clean, label_biased, flipped`` for every cohort image."""
    labels = pd.DataFrame(
        {
            "image_id": cohort["image_id"].to_numpy(),
            "label_clean": cohort["label"].astype(int).to_numpy(),
        }
    )
    flipped = np.zeros(len(cohort), dtype=bool)
    if spec.attribute is not None:
        if spec.attribute not in cohort.columns:
            raise DataQualityError(
                f"bias attribute '{spec.attribute}' is not a cohort column "
                f"(available: {', '.join(cohort.columns)})"
            )
        in_group = cohort[spec.attribute].astype(str).to_numpy() == str(spec.subgroup)
        if not in_group.any():
            present = sorted(cohort[spec.attribute].astype(str).unique())
            raise DataQualityError(
                f"subgroup '{spec.subgroup}' of attribute '{spec.attribute}' has no image in the cohort "
                f"(present: {', '.join(present)})"
            )
        eligible = (
            in_group
            & cohort[spec.class_column].map(canonical).isin([canonical(c) for c in spec.classes]).to_numpy()
            & (cohort["label"].astype(int).to_numpy() == spec.from_label)
        )
        if spec.mode not in BIAS_MODES:
            raise ValueError(f"unknown bias mode {spec.mode!r}; one of {', '.join(BIAS_MODES)}")
        mode = BIAS_MODES[spec.mode]
        if spec.per_split and "split" not in cohort.columns:
            raise DataQualityError("bias per split needs the cohort's 'split' column")
        strata = cohort["split"].astype(str).to_numpy() if spec.per_split else np.zeros(len(cohort), dtype=str)
        # A seeded order of each stratum's eligible units, flipped from the front: the same
        # seed at a higher rate flips everyone a lower rate flips (nested doses).
        rng = np.random.default_rng(spec.seed)
        orders = {}
        for stratum in sorted(set(strata[eligible])):
            orders[stratum] = rng.permutation(mode.units(cohort, eligible & (strata == stratum)))
        sizes = {stratum: len(order) for stratum, order in orders.items()}
        counts = allocate(int(round(spec.rate * sum(sizes.values()))), sizes)
        for stratum, order in orders.items():
            flipped |= mode.images(cohort, eligible & (strata == stratum), order[: counts[stratum]])
    labels["label_biased"] = np.where(flipped, 1 - labels["label_clean"], labels["label_clean"])
    labels["flipped"] = flipped.astype(int)
    return labels[LABEL_COLUMNS]


def allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``total`` flips over strata in proportion to their sizes (Sainte-Lague, one at a time).

    The total is the whole cohort's round(rate x eligible), so a small subgroup loses no
    flips to rounding in every split (a 50% rate of one patient per split would round to
    none in each). Handing out one flip at a time, each to the stratum whose share is
    furthest behind (size / (2 x given + 1)), gives every stratum its rounded share when
    the shares round to the total, and never takes a flip from a stratum when the total
    grows: a higher rate's counts contain a lower rate's, so doses stay nested. Ties go
    to the stratum first in order.
    """
    counts = {stratum: 0 for stratum in sizes}
    for _ in range(min(total, sum(sizes.values()))):
        open_strata = [stratum for stratum in sizes if counts[stratum] < sizes[stratum]]
        best = max(open_strata, key=lambda stratum: sizes[stratum] / (2 * counts[stratum] + 1))
        counts[best] += 1
    return counts


def bias_summary(cohort: pd.DataFrame, labels: pd.DataFrame, spec: BiasSpec) -> dict[str, object]:
    """Counts for the log and the report: how many patients and images were flipped."""
    merged = cohort[["image_id", "patient_id", "split"]].merge(labels, on="image_id")
    flipped = merged[merged["flipped"] == 1]
    return {
        "attribute": spec.attribute or "",
        "subgroup": spec.subgroup or "",
        "mode": spec.mode,
        "rate": spec.rate,
        "flipped_patients": flipped["patient_id"].nunique(),
        "flipped_images": len(flipped),
        **{f"flipped_images_{s}": int((flipped["split"] == s).sum()) for s in ("train", "val", "test")},
    }
