"""The plan of a synthetic EMBED dataset: patients, exams, images, the two EMBED tables'
rows and one render job per image, all drawn from one seed."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

DENSITY_CLASSES = ("A", "B", "C", "D")
MAIN_VENDORS = ("HOLOGIC, Inc.", "GE MEDICAL SYSTEMS", "FUJIFILM Corporation")
OTHER_VENDOR = "GE HEALTHCARE"
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's registered root; ids below it are ours


# Fixed parts of the generator, once settings that no study varied: the spread of a
# patient's views around its dense fraction and the share of second exams made on
# another vendor (patients EMBED has too).
VIEW_JITTER = 0.02
VENDOR_SWITCH_SHARE = 0.05


@dataclass(frozen=True)
class VendorLook:
    """DICOM properties and image appearance of one vendor."""

    model: str
    rows: int  # full-resolution detector matrix of the real device
    columns: int
    pixel_spacing_mm: float
    bits_stored: int
    photometric: str
    jpeg2000: bool
    gamma: float
    heel: float  # relative brightness change from top to bottom (anode heel effect)
    stripes: float  # amplitude of horizontal detector stripes
    stripe_cycles: float  # stripes per image height
    blur: float  # Gaussian blur sigma as a share of the image height
    noise: float  # quantum noise sigma in display units
    edge_falloff: float = 0.38  # darkening towards the skin line (thickness equalisation differs by vendor)
    rim: float = 0.0  # brightening of the outer ring of the breast (peripheral enhancement)
    # Spread of the dense fraction an image shows around the one its label was drawn from
    # (per image, from a stream of its own): how loosely this vendor's images show the
    # density readers saw. The study's model separates GEMS's classes least (docs/design.md).
    fraction_spread: float = 0.0


VENDOR_LOOKS: dict[str, VendorLook] = {
    "HOLOGIC, Inc.": VendorLook("Selenia Dimensions", 4096, 3328, 0.065, 12, "MONOCHROME2", True,
                                gamma=1.0, heel=0.0, stripes=0.0, stripe_cycles=0.0, blur=0.0, noise=0.012,
                                edge_falloff=0.0, rim=0.35),
    "GE MEDICAL SYSTEMS": VendorLook("Senographe Essential", 3062, 2394, 0.1, 14, "MONOCHROME2", False,
                                     gamma=0.8, heel=0.3, stripes=0.0, stripe_cycles=0.0, blur=0.004,
                                     noise=0.02, edge_falloff=0.55, rim=1.0, fraction_spread=0.05),
    "FUJIFILM Corporation": VendorLook("FDR MS-3500", 5928, 4728, 0.05, 12, "MONOCHROME1", False,
                                       gamma=1.0, heel=-0.4, stripes=0.15, stripe_cycles=8.0, blur=0.0,
                                       noise=0.008, edge_falloff=0.25),
    "GE HEALTHCARE": VendorLook("Senographe Pristina", 2850, 2394, 0.1, 12, "MONOCHROME2", False,
                                gamma=0.85, heel=0.15, stripes=0.0, stripe_cycles=0.0, blur=0.004, noise=0.018),
}

RACE_SHIFT = {
    "Caucasian or White": 0.0,
    "African American  or Black": 1.0,
    "Asian": -1.0,
    "Unknown, not reported": 0.0,
}


@dataclass(frozen=True)
class SyntheticSettings:
    """The ``data.synthetic`` config section (the schema has each key's default and meaning)."""

    seed: int
    patients: int
    vendor_mix: dict[str, float]
    other_vendor_share: float
    density_mix: dict[str, float]
    # Per vendor, a density mix of its own in place of ``density_mix`` (EMBED's vendors
    # differ: Table 1 of the study).
    vendor_density_mix: dict[str, dict[str, float]]
    density_centres: tuple[float, float, float, float]
    density_spread: float
    # Per vendor and density class, a shift of the dense fraction: a vendor whose B images
    # look denser than their label says.
    vendor_class_shift: dict[str, dict[str, float]]
    race_mix: dict[str, float]
    demographic_signal: float
    second_exam_share: float
    two_density_share: float
    male_share: float
    spot_mag_share: float
    cview_share: float
    extra_view_share: float
    roi_share: float
    matrix_scale: float
    jpeg2000: bool
    jpeg2000_share: float


@dataclass(frozen=True)
class ImageJob:
    """Everything needed to render and write one DICOM file."""

    path: str
    seed: int
    manufacturer: str
    view: str
    laterality: str
    dense_fraction: float
    breast_size: float
    fat_shift: float
    patient_id: str
    patient_sex: str
    study_uid: str
    series_uid: str
    sop_uid: str
    instance_number: int
    study_date: str
    image_type: str
    rows: int
    columns: int
    pixel_spacing: float
    jpeg2000: bool


def _uid(*parts: object) -> str:
    digest = zlib.crc32(repr(parts).encode()) | (zlib.adler32(repr(parts[::-1]).encode()) << 32)
    return f"{UID_ROOT}{digest}"


def _choice(rng: np.random.Generator, mix: dict[str, float]) -> str:
    keys = list(mix)
    weights = np.array([mix[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _matrix(look: VendorLook, scale: float) -> tuple[int, int, float]:
    rows = max(32, int(round(look.rows * scale)))
    cols = max(24, int(round(look.columns * scale)))
    return rows, cols, look.pixel_spacing_mm / scale


def plan_dataset(settings: SyntheticSettings) -> tuple[pd.DataFrame, pd.DataFrame, list[ImageJob]]:
    """Sample patients, exams, findings and images: the two EMBED tables and the render jobs."""
    rng = np.random.default_rng(settings.seed)
    n = settings.patients
    empis = 10_000_000 + rng.choice(89_999_999, size=n, replace=False)
    metadata: list[dict[str, object]] = []
    clinical: list[dict[str, object]] = []
    jobs: list[ImageJob] = []
    used_acc: set[int] = set()
    # Its own stream: the share of compressed files never changes any other draw.
    compression_rng = np.random.default_rng([settings.seed, 2000])
    epoch = dt.date(2012, 1, 1)
    centres = dict(zip(DENSITY_CLASSES, settings.density_centres, strict=True))

    for p in range(n):
        empi = int(empis[p])
        male = rng.random() < settings.male_share
        vendor = OTHER_VENDOR if rng.random() < settings.other_vendor_share else _choice(rng, settings.vendor_mix)
        density = _choice(rng, settings.vendor_density_mix.get(vendor, settings.density_mix))
        centre = centres[density] + settings.vendor_class_shift.get(vendor, {}).get(density, 0.0)
        dense_fraction = float(np.clip(rng.normal(centre, settings.density_spread), 0.02, 0.98))
        race = _choice(rng, settings.race_mix)
        fat_shift = settings.demographic_signal * 0.05 * RACE_SHIFT.get(race, 0.0) + rng.normal(0, 0.03)
        age = int(rng.integers(40, 80))
        size = float(rng.uniform(0.78, 1.0))
        two_density = (not male) and rng.random() < settings.two_density_share
        n_exams = 2 if (two_density or rng.random() < settings.second_exam_share) else 1
        first_day = int(rng.integers(0, 3000))
        for e in range(n_exams):
            while True:
                acc = int(rng.integers(10**15, 10**16))
                if acc not in used_acc:
                    used_acc.add(acc)
                    break
            exam_vendor = vendor
            if e > 0 and rng.random() < VENDOR_SWITCH_SHARE:
                exam_vendor = _choice(rng, settings.vendor_mix)
            if male:
                tissueden = 5
            elif two_density and e == 1:
                k = DENSITY_CLASSES.index(density)
                tissueden = (k + 2) if k < 3 else k  # a neighbouring class, 1-based
            else:
                tissueden = DENSITY_CLASSES.index(density) + 1
            date = (epoch + dt.timedelta(days=first_day + 400 * e)).strftime("%Y-%m-%d")
            n_findings = 1 + int(rng.poisson(0.4))
            for f in range(n_findings):
                clinical.append(
                    {
                        "empi_anon": empi,
                        "acc_anon": acc,
                        "study_date_anon": date,
                        "desc": "MG Screening Bilateral" if f == 0 else "MG Diagnostic Bilateral",
                        "tissueden": float(tissueden),
                        "asses": "N" if f == 0 else str(rng.choice(["B", "A", "N"])),
                        "numfind": f + 1,
                        "side": str(rng.choice(["L", "R", "B"])),
                        "bside": "",
                        "path_severity": "",
                        "RACE_DESC": race,
                        "ETHNIC_GROUP_DESC": "Non-Hispanic or Latino",
                        "age_at_study": float(age + e),
                        "GENDER_DESC": "Male" if male else "Female",
                    }
                )
            look = VENDOR_LOOKS[exam_vendor]
            rows, cols, spacing = _matrix(look, settings.matrix_scale)
            study_uid = _uid(settings.seed, empi, acc)
            views: list[tuple[str, str, str, float | None]] = [
                (lat, view, "2D", None) for lat in ("L", "R") for view in ("CC", "MLO")
            ]
            if exam_vendor == "HOLOGIC, Inc." and rng.random() < settings.cview_share:
                views += [(lat, view, "C-view", None) for lat in ("L", "R") for view in ("CC", "MLO")]
            if rng.random() < settings.spot_mag_share:
                views.append((str(rng.choice(["L", "R"])), "CC", "2D", 1.0))
            if rng.random() < settings.extra_view_share:
                views.append((str(rng.choice(["L", "R"])), "XCCL", "2D", None))
            if rng.random() < settings.roi_share:
                views.append((str(rng.choice(["L", "R"])), "CC", "ROI_SSC", None))
            for i, (laterality, view, image_type, spot) in enumerate(views):
                series_uid = _uid(settings.seed, empi, acc, i, "series")
                sop_uid = _uid(settings.seed, empi, acc, i, "sop")
                relative = f"./images/cohort_1/{empi}/{study_uid}/{series_uid}/{sop_uid}.dcm"
                image_fraction = float(np.clip(dense_fraction + rng.normal(0, VIEW_JITTER), 0.01, 0.99))
                jobs.append(
                    ImageJob(
                        path=relative,
                        seed=int(rng.integers(0, 2**31)),
                        manufacturer=exam_vendor,
                        view=view,
                        laterality=laterality,
                        dense_fraction=image_fraction,
                        breast_size=float(np.clip(size + rng.normal(0, 0.02), 0.7, 1.05)),
                        fat_shift=float(fat_shift),
                        patient_id=str(empi),
                        patient_sex="M" if male else "F",
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=sop_uid,
                        instance_number=i + 1,
                        study_date=date.replace("-", ""),
                        image_type=image_type,
                        rows=rows,
                        columns=cols,
                        pixel_spacing=spacing,
                        jpeg2000=bool(
                            settings.jpeg2000 and look.jpeg2000 and compression_rng.random() < settings.jpeg2000_share
                        ),
                    )
                )
                png = f"/images/png/cohort_1/{empi}/{study_uid}/{sop_uid}.png"
                metadata.append(
                    {
                        "empi_anon": empi,
                        "acc_anon": acc,
                        "anon_dicom_path": relative,
                        "png_path": png,
                        "png_filename": f"{sop_uid}.png",
                        "study_date_anon": date,
                        "StudyDescription": "MG Screening Bilateral",
                        "SeriesDescription": f"{laterality} {view}",
                        "FinalImageType": image_type,
                        "ImageLateralityFinal": laterality,
                        "ViewPosition": view,
                        "spot_mag": spot,
                        "num_roi": 1 if image_type == "ROI_SSC" else 0,
                        "ROI_coords": "",
                        "SRC_DST": "",
                        "match_level": 1,
                        "Manufacturer": exam_vendor,
                        "ManufacturerModelName": look.model,
                        "PatientSex": "M" if male else "F",
                        "InstanceNumber": i + 1,
                        "PixelSpacing": f"[{spacing:.4f}, {spacing:.4f}]",
                        "ImagerPixelSpacing": f"[{spacing:.4f}, {spacing:.4f}]",
                        "Rows": rows,
                        "Columns": cols,
                    }
                )
    return pd.DataFrame(metadata), pd.DataFrame(clinical), jobs


def oracle_summary(metadata: pd.DataFrame, clinical: pd.DataFrame, jobs: Iterable[ImageJob]) -> pd.DataFrame:
    """How readable density is in principle: the dense fraction each image shows, used as a score.

    Computed on female 2D CC/MLO images of the three study vendors with one density
    per patient; it bounds what a perfect density reader could reach.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    from .render import shown_fraction  # render imports this module

    fractions = pd.Series({j.path: shown_fraction(j) for j in jobs}, name="dense_fraction")
    frame = metadata.merge(
        clinical.drop_duplicates(["empi_anon", "acc_anon"]), on=["empi_anon", "acc_anon"]
    )
    frame = frame[
        (frame["FinalImageType"] == "2D")
        & frame["ViewPosition"].isin(["CC", "MLO"])
        & frame["spot_mag"].isna()
        & frame["tissueden"].between(1, 4)
        & frame["Manufacturer"].isin(MAIN_VENDORS)
    ].copy()
    single = frame.groupby("empi_anon")["tissueden"].transform("nunique") == 1
    frame = frame[single]
    frame["dense_fraction"] = frame["anon_dicom_path"].map(fractions)
    frame["label"] = (frame["tissueden"] >= 3).astype(int)
    fpr, tpr, _ = roc_curve(frame["label"], frame["dense_fraction"])
    gap = np.abs(fpr - 0.1)
    rows = [
        {
            "measure": "oracle_auc",
            "value": round(float(roc_auc_score(frame["label"], frame["dense_fraction"])), 4),
        },
        # The ROC point closest to 10% FPR; of tied points (a vertical step) the highest TPR, so a
        # perfect score reads 1, not the 0 of the step's foot.
        {"measure": "oracle_tpr_at_fpr_0.1", "value": round(float(tpr[gap == gap.min()].max()), 4)},
    ]
    for density, group in frame.groupby("tissueden"):
        rows.append(
            {
                "measure": f"mean_dense_fraction_{DENSITY_CLASSES[int(density) - 1]}",
                "value": round(float(group["dense_fraction"].mean()), 4),
            }
        )
    return pd.DataFrame(rows)


def canonical_order(mix: dict[str, float], order: tuple[str, ...]) -> dict[str, float]:
    """``mix`` with the keys of ``order`` first, in that order, then any others sorted."""
    return {key: mix[key] for key in [*(k for k in order if k in mix), *sorted(set(mix) - set(order))]}


def settings_from_config(config: dict[str, object]) -> SyntheticSettings:
    """Settings from the validated ``data.synthetic`` config section (every key present)."""
    missing = sorted(set(SyntheticSettings.__dataclass_fields__) - set(config))
    if missing:
        raise ValueError(f"data.synthetic lacks {', '.join(missing)}: pass the validated config")
    known = {k: config[k] for k in SyntheticSettings.__dataclass_fields__}
    known["density_centres"] = tuple(known["density_centres"])  # type: ignore[arg-type]
    # The draws follow a mix's order, so it is fixed here: the same shares written in
    # another order (a YAML writer that sorts keys, say) make the same dataset.
    for key, order in (("vendor_mix", MAIN_VENDORS), ("density_mix", DENSITY_CLASSES), ("race_mix", tuple(RACE_SHIFT))):
        known[key] = canonical_order(known[key], order)  # type: ignore[arg-type]
    known["vendor_density_mix"] = {
        vendor: canonical_order(mix, DENSITY_CLASSES)
        for vendor, mix in known["vendor_density_mix"].items()  # type: ignore[attr-defined]
    }
    return SyntheticSettings(**known)  # type: ignore[arg-type]
