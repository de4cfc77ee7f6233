"""The study cohort: EMBED filters, de-duplication, class balance, splits and pseudo-groups.

Every step is a pure function of data frames and a seed, so the same inputs and
seed always give the same rows in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .embed import MERGE_KEYS, EmbedTables
from ..errors import DataQualityError, InputTableError
from .table import canonical, nothing_left_error

DENSITY_LETTERS = {1: "A", 2: "B", 3: "C", 4: "D"}
POSITIVE_DENSITIES = ("C", "D")
SPLITS = ("train", "val", "test")
IMAGE_COLUMNS = [
    "image_id",
    "patient_id",
    "exam_id",
    "manufacturer",
    "view",
    "laterality",
    "density",
    "label",
    "image_path",
]
# The cohort keeps every image column but the path (the cache is indexed by image id).
COHORT_COLUMNS = [c for c in IMAGE_COLUMNS if c != "image_path"] + ["split", "pseudo_subgroup"]


def cohort_columns(images: pd.DataFrame) -> list[str]:
    """The cohort's column order for an eligible-image table of any source.

    The image columns up to the label, then split and pseudo-group, then the rest
    (subgroup attributes): EMBED's ``COHORT_COLUMNS`` followed by its attributes.
    """
    columns = [c for c in images.columns if c not in ("image_path", "split", "pseudo_subgroup")]
    head = columns[: columns.index("label") + 1]
    return head + ["split", "pseudo_subgroup"] + columns[len(head) :]


@dataclass(frozen=True)
class AttributeSpec:
    """An extra subgroup attribute taken from a table column, e.g. race from RACE_DESC."""

    column: str
    values: dict[str, str]
    other: str = "Other"


@dataclass(frozen=True)
class CohortFilters:
    vendors: dict[str, str]
    views: tuple[str, ...] = ("CC", "MLO")
    image_type: str = "2D"
    gender: str = "Female"
    attributes: dict[str, AttributeSpec] = field(default_factory=dict)


def _counts(step: str, frame: pd.DataFrame, image_column: str) -> dict[str, object]:
    return {
        "step": step,
        "rows": len(frame),
        "images": frame[image_column].nunique(),
        "patients": frame["empi_anon"].nunique(),
    }


def _drop_duplicate_metadata(metadata: pd.DataFrame, image_column: str) -> pd.DataFrame:
    """Drop rows repeated verbatim; refuse two different rows for one image file."""
    source = metadata.attrs.get("source", "metadata table")
    exact = metadata.duplicated(keep="first")
    unique = metadata.loc[~exact]
    conflicting = unique[image_column].duplicated(keep=False)
    if conflicting.any():
        rows = unique.index[conflicting].to_numpy()[:4]
        lines = ", ".join(str(int(r) + 2) for r in rows)
        raise InputTableError(
            f"{source}: image {unique.loc[rows[0], image_column]!r} appears on several lines "
            f"with different values (lines {lines}); each image needs one metadata row"
        )
    return unique


def image_id_from_path(path: str) -> str:
    """EMBED file names are the SOP instance UID, unique per image."""
    return PurePosixPath(path.replace("\\", "/")).stem


def select_images(
    tables: EmbedTables, filters: CohortFilters, image_column: str = "anon_dicom_path"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the study's filters to the merged tables.

    Returns one row per image (columns ``IMAGE_COLUMNS`` plus configured attributes)
    and a log with the rows, images and patients left after each step.
    """
    metadata = _drop_duplicate_metadata(tables.metadata, image_column)
    log = [_counts("metadata (exact duplicates dropped)", metadata, image_column)]
    clinical = tables.clinical
    merged = metadata.merge(clinical, on=MERGE_KEYS, how="inner", suffixes=("", "_clinical"))
    log.append(_counts("merged with clinical findings", merged, image_column))

    steps: list[tuple[str, pd.Series]] = [
        (f"FinalImageType == {filters.image_type}", merged["FinalImageType"].str.strip() == filters.image_type),
        (f"GENDER_DESC == {filters.gender}", merged["GENDER_DESC"].str.strip() == filters.gender),
        ("tissueden in 1..4", merged["tissueden"].isin(list(DENSITY_LETTERS))),
        (f"ViewPosition in {','.join(filters.views)}", merged["ViewPosition"].str.strip().isin(filters.views)),
        ("no spot compression / magnification", merged["spot_mag"].isna()),
        (
            f"Manufacturer in {', '.join(filters.vendors)}",
            merged["Manufacturer"].str.strip().isin(list(filters.vendors)),
        ),
        ("laterality is L or R", merged["ImageLateralityFinal"].str.strip().isin(["L", "R"])),
    ]
    for name, keep in steps:
        merged = merged.loc[keep.loc[merged.index]]
        log.append(_counts(name, merged, image_column))

    densities_per_patient = merged.groupby("empi_anon")["tissueden"].nunique()
    single = densities_per_patient.index[densities_per_patient == 1]
    merged = merged.loc[merged["empi_anon"].isin(single)]
    log.append(_counts("patients with a single density", merged, image_column))

    # One image matches every finding row of its exam; keep it once.
    merged = merged.sort_values([image_column, *MERGE_KEYS], kind="stable").drop_duplicates(image_column)
    log.append(_counts("one row per image", merged, image_column))
    if merged.empty:
        sources = [tables.metadata.attrs.get("source", "metadata table"), tables.clinical.attrs.get("source", "clinical table")]
        raise nothing_left_error(" / ".join(sources), log)

    images = pd.DataFrame(
        {
            "image_id": merged[image_column].map(image_id_from_path),
            "patient_id": merged["empi_anon"].astype("int64"),
            "exam_id": merged["acc_anon"].astype("int64"),
            "manufacturer": merged["Manufacturer"].str.strip().map(filters.vendors),
            "view": merged["ViewPosition"].str.strip(),
            "laterality": merged["ImageLateralityFinal"].str.strip(),
            "density": merged["tissueden"].astype(int).map(DENSITY_LETTERS),
            "image_path": merged[image_column],
        }
    )
    images["label"] = images["density"].isin(POSITIVE_DENSITIES).astype(int)
    clash = images["image_id"].duplicated(keep=False)
    if clash.any():
        paths = images.loc[clash, "image_path"].head(2).tolist()
        raise InputTableError(
            f"{tables.metadata.attrs.get('source', 'metadata table')}: two images share the file name "
            f"(image id) {images.loc[clash, 'image_id'].iloc[0]!r}: {paths}"
        )
    for name, spec in filters.attributes.items():
        values = merged[spec.column].fillna("").astype(str).str.strip()
        images[name] = values.map(spec.values).fillna(spec.other)
    images = images[IMAGE_COLUMNS + list(filters.attributes)]
    images = images.sort_values(["patient_id", "exam_id", "image_id"], kind="stable").reset_index(drop=True)
    return images, pd.DataFrame(log)


def balance_classes(images: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Undersample the larger binary class (seeded) so both have the same image count."""
    counts = images["label"].value_counts()
    if len(counts) < 2:
        raise DataQualityError(
            f"the cohort has only label {counts.index[0]}: images of both labels (0 and 1) are needed"
        )
    smaller = int(counts.min())
    rng = np.random.default_rng(seed)
    keep = []
    for label in sorted(counts.index):
        index = images.index[images["label"] == label].to_numpy()
        chosen = rng.choice(index, size=smaller, replace=False) if len(index) > smaller else index
        keep.append(np.sort(chosen))
    return images.loc[np.sort(np.concatenate(keep))].reset_index(drop=True)


def _largest_remainder(total: int, fractions: dict[str, float]) -> dict[str, int]:
    raw = {k: total * v for k, v in fractions.items()}
    sizes = {k: int(np.floor(v)) for k, v in raw.items()}
    left = total - sum(sizes.values())
    for key in sorted(raw, key=lambda k: (-(raw[k] - sizes[k]), list(fractions).index(k)))[:left]:
        sizes[key] += 1
    return sizes


def split_patients(
    images: pd.DataFrame, fractions: dict[str, float], seed: int, stratify: list[str] | None = None
) -> pd.Series:
    """Assign each patient to train/val/test with the given fractions.

    Patients are stratified by the columns in ``stratify`` taken from their first
    image (e.g. vendor and label), so small subgroups appear in every split.
    Returns a Series indexed by patient id.
    """
    rng = np.random.default_rng(seed)
    first = images.sort_values(["patient_id", "exam_id", "image_id"]).drop_duplicates("patient_id")
    keys = stratify or []
    groups = first.groupby(keys, sort=True) if keys else [((), first)]
    assignment: dict[object, str] = {}
    for _, group in groups:
        patients = np.sort(group["patient_id"].to_numpy())
        rng.shuffle(patients)
        sizes = _largest_remainder(len(patients), fractions)
        start = 0
        for split_name in fractions:
            for patient in patients[start : start + sizes[split_name]]:
                assignment[patient.item() if isinstance(patient, np.generic) else patient] = split_name
            start += sizes[split_name]
    split = pd.Series(assignment, name="split").sort_index()
    return split


def patient_folds(frame: pd.DataFrame, k: int, seed: int, stratify: list[str] | None = None) -> np.ndarray:
    """Fold (0..k-1) of every row of ``frame``: all images of a patient share one fold.

    scikit-learn's ``StratifiedGroupKFold`` (shuffled, seeded) with the patients as
    groups and the joint value of the ``stratify`` columns as the class, so every
    stratum's images spread over the folds as evenly as whole patients allow. The one
    way folds are made in the package: detection's cross-fitting and the probe's.
    """
    patients = frame["patient_id"].to_numpy()
    if len(np.unique(patients)) < k:
        raise DataQualityError(f"{len(np.unique(patients))} patients cannot fill {k} folds")
    keys = stratify or []
    stratum = frame[keys].astype(str).agg("|".join, axis=1) if keys else pd.Series("", index=frame.index)
    classes = pd.factorize(stratum, sort=True)[0]
    folds = np.full(len(frame), -1, dtype=int)
    splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(frame)), classes, patients)):
        folds[held] = fold
    return folds


def hold_out_patients(
    images: pd.DataFrame, share: float, val_share: float, seed: int, stratify: list[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep a share of patients out of the study cohort, to pretrain a backbone on.

    Returns (the images of the remaining patients, the held-out images with a
    ``split`` of train or val for the backbone's own model selection). No held-out
    patient can reach the cohort's train, val or test split. With ``share`` 0 every
    image stays and the held-out table is empty.
    """
    if share <= 0:
        return images.copy(), images.iloc[:0].assign(split=pd.Series(dtype=str))
    side = images["patient_id"].map(split_patients(images, {"cohort": 1 - share, "holdout": share}, seed, stratify))
    rest = images[side == "cohort"].reset_index(drop=True)
    held = images[side == "holdout"].reset_index(drop=True)
    if held.empty or rest.empty:
        raise DataQualityError(
            f"backbone.holdout {share:g} leaves {held['patient_id'].nunique()} held-out and "
            f"{rest['patient_id'].nunique()} cohort patients: both need some"
        )
    inner = split_patients(held, {"train": 1 - val_share, "val": val_share}, seed + 1, stratify)
    held["split"] = held["patient_id"].map(inner)
    if set(held["split"]) != {"train", "val"}:
        raise DataQualityError(
            f"the {held['patient_id'].nunique()} held-out patients are too few for a train and a val part "
            "(raise backbone.holdout or the number of patients)"
        )
    return rest, held


def assert_patient_disjoint(cohort: pd.DataFrame) -> None:
    """Refuse a cohort in which one patient's images fall in two splits."""
    per_patient = cohort.groupby("patient_id")["split"].nunique()
    leaking = per_patient.index[per_patient > 1]
    if len(leaking):
        raise DataQualityError(
            f"{len(leaking)} patient(s) have images in more than one split (first: {leaking[0]})"
        )


def assign_pseudo_groups(patients: np.ndarray, n_groups: int, seed: int, prefix: str = "PS") -> pd.Series:
    """Random, equal-sized patient groups PS1..PSk: by construction not visible in images."""
    rng = np.random.default_rng(seed)
    order = np.sort(np.unique(patients))
    rng.shuffle(order)
    labels = np.array([f"{prefix}{i % n_groups + 1}" for i in range(len(order))])
    return pd.Series(labels, index=order, name="pseudo_subgroup").sort_index()


def build_cohort(
    images: pd.DataFrame,
    fractions: dict[str, float],
    seed: int,
    n_pseudo_groups: int = 3,
    balance: bool = True,
    stratify: list[str] | None = None,
) -> pd.DataFrame:
    """Balance classes, split by patient and add pseudo-groups."""
    cohort = balance_classes(images, seed) if balance else images.copy()
    split = split_patients(cohort, fractions, seed + 1, stratify)
    cohort["split"] = cohort["patient_id"].map(split)
    pseudo = assign_pseudo_groups(cohort["patient_id"].to_numpy(), n_pseudo_groups, seed + 2)
    cohort["pseudo_subgroup"] = cohort["patient_id"].map(pseudo)
    assert_patient_disjoint(cohort)
    return cohort[cohort_columns(cohort)].reset_index(drop=True)


def table1(
    images: pd.DataFrame, attribute: str = "manufacturer", class_column: str = "density",
    classes: list[str] | tuple[str, ...] = tuple(DENSITY_LETTERS.values()),
) -> pd.DataFrame:
    """Images per subgroup and fine class, as Table 1 of the study (vendor x BI-RADS density).

    Without the attribute (a table with no subgroup attribute of its own) one row ``all``.
    """
    groups = images[attribute] if attribute in images.columns else pd.Series("all", index=images.index, name=attribute)
    counts = pd.crosstab(groups, images[class_column].map(canonical))
    for value in classes:
        if value not in counts.columns:
            counts[value] = 0
    counts = counts[list(classes)]
    table = counts.assign(total=counts.sum(axis=1))
    table["percent"] = (100 * table["total"] / table["total"].sum()).round(1)
    table = table.reset_index()[[attribute, "total", "percent", *classes]]
    return table.sort_values("total", ascending=False, kind="stable").reset_index(drop=True)


def tpr_halfwidth(n_positive: int, tpr: float = 0.92, z: float = 1.959964) -> float:
    """Half-width of a 95% normal interval for a TPR estimated from n positives."""
    if n_positive <= 0:
        return float("inf")
    return float(z * np.sqrt(tpr * (1 - tpr) / n_positive))


def split_summary(cohort: pd.DataFrame, attributes: list[str], expected_tpr: float = 0.92) -> pd.DataFrame:
    """Images and patients per subgroup and split, with the interval a test TPR can have.

    ``tpr_halfwidth_patients`` treats each positive patient as one observation (the
    conservative end: a patient's images are nearly copies of one density);
    ``tpr_halfwidth_images`` treats images as independent (the optimistic end).
    """
    rows = []
    for attribute in attributes:
        for (subgroup, split), group in cohort.groupby([attribute, "split"], sort=True):
            positive = group[group["label"] == 1]
            rows.append(
                {
                    "attribute": attribute,
                    "subgroup": subgroup,
                    "split": split,
                    "images": len(group),
                    "patients": group["patient_id"].nunique(),
                    "positive_images": len(positive),
                    "positive_patients": positive["patient_id"].nunique(),
                    "negative_images": int((group["label"] == 0).sum()),
                    "tpr_halfwidth_images": round(tpr_halfwidth(len(positive), expected_tpr), 4),
                    "tpr_halfwidth_patients": round(
                        tpr_halfwidth(positive["patient_id"].nunique(), expected_tpr), 4
                    ),
                }
            )
    return pd.DataFrame(rows)
