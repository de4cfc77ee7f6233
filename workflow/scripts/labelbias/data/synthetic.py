"""A synthetic dataset that looks to the rest of the workflow exactly like EMBED.

It writes real DICOM files (pydicom; JPEG 2000 lossless for one vendor, as in
EMBED), EMBED's folder layout and id formats, and the two EMBED tables with their
column names, including the rows the study's filters must remove (men, density 5,
spot/magnification views, C-view and ROI images, exaggerated views, a fourth
vendor, patients with two density values).

Image content is a simple breast phantom:
- density: the fibroglandular (bright) share of the breast is the patient's latent
  dense fraction, drawn per BI-RADS class around ordinal centres, so A < B < C < D
  with B and C overlapping by a configurable spread;
- vendor: each vendor has its own transfer curve, heel-effect gradient, detector
  stripes, blur and noise, strong enough that a CNN tells vendors apart (the
  study's separable subgroups) while leaving the dense area equally readable;
- demographics: the fat-tissue level moves with ``demographic_signal`` per race
  group against patient-level noise, so separability is a tunable continuum.

Everything is drawn from one seed: the plan is sampled first, and each image is
rendered from its own seed, so parallel rendering gives identical files.
"""

from __future__ import annotations

import datetime as dt
import os
import zlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .dicom_encoding import Element, Encapsulated, encode_file

if TYPE_CHECKING:
    from pydicom.dataset import FileDataset

DENSITY_CLASSES = ("A", "B", "C", "D")
MAIN_VENDORS = ("HOLOGIC, Inc.", "GE MEDICAL SYSTEMS", "FUJIFILM Corporation")
OTHER_VENDOR = "GE HEALTHCARE"
UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's registered root; ids below it are ours


# Fixed parts of the generator, once settings that no study varied: the spread of a
# patient's views around its dense fraction, the share of second exams made on another
# vendor (patients EMBED has too), and the strength of the vendors' looks (1: full).
VIEW_JITTER = 0.02
VENDOR_SWITCH_SHARE = 0.05
VENDOR_SIGNAL = 1.0


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


VENDOR_LOOKS: dict[str, VendorLook] = {
    "HOLOGIC, Inc.": VendorLook("Selenia Dimensions", 4096, 3328, 0.065, 12, "MONOCHROME2", True,
                                gamma=1.0, heel=0.0, stripes=0.0, stripe_cycles=0.0, blur=0.0, noise=0.012,
                                edge_falloff=0.0, rim=0.35),
    "GE MEDICAL SYSTEMS": VendorLook("Senographe Essential", 3062, 2394, 0.1, 14, "MONOCHROME2", False,
                                     gamma=0.8, heel=0.55, stripes=0.0, stripe_cycles=0.0, blur=0.004,
                                     noise=0.02, edge_falloff=0.55),
    "FUJIFILM Corporation": VendorLook("FDR MS-3500", 5928, 4728, 0.05, 12, "MONOCHROME1", False,
                                       gamma=1.0, heel=-0.4, stripes=0.15, stripe_cycles=4.0, blur=0.0,
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
        density = _choice(rng, settings.density_mix)
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


def smooth_field(coarse: np.ndarray, rows: int, cols: int, max_rows: int = 512) -> np.ndarray:
    """A coarse grid interpolated to rows x cols and blurred with sigma rows / 40.

    The field varies on the scale of rows / 40, so above ``max_rows`` it is built on a
    grid of at most max_rows rows and interpolated up, which changes nothing a reader
    can see at full size; small matrices (the default's) are built as always.
    """
    from scipy import ndimage  # here: every job reads this module's constants; only rendering needs SciPy
    step = -(-rows // max_rows)
    if step <= 1:
        field = ndimage.zoom(coarse, (rows / coarse.shape[0], cols / coarse.shape[1]), order=1)[:rows, :cols]
        return ndimage.gaussian_filter(field, sigma=rows / 40)
    small = smooth_field(coarse, -(-rows // step), -(-cols // step), max_rows)
    zoomed = ndimage.zoom(small, (rows / small.shape[0], cols / small.shape[1]), order=1, grid_mode=True, mode="nearest")
    return zoomed[:rows, :cols]


# Rows per block of the float64 part of rendering: a block's temporaries stay small
# enough for the allocator to reuse, where whole full-size arrays (224 MB for FUJI's
# 5928x4728) were mapped and faulted in afresh for every step.
RENDER_BLOCK_ROWS = 256


def render_display(job: ImageJob) -> np.ndarray:
    """Render the phantom as a display image in [0, 1] (dense tissue bright), chest wall on one side.

    Steps that need the whole image (the tissue field, its spread and quantile, the blur)
    run on whole arrays; the pixel-wise rest runs in blocks of rows. Each pixel's value and
    the order of the random draws are those of the whole-array computation, so the
    result does not depend on the block size (tests/test_synthetic.py).
    """
    from scipy import ndimage, special
    rng = np.random.default_rng(job.seed)
    rows, cols = job.rows, job.columns
    # A column and a row that broadcast: the same values as full coordinate grids, at a
    # fraction of the memory and time on full-size matrices.
    yy = np.arange(rows, dtype=np.float32)[:, None]
    yy /= rows
    xx = np.arange(cols, dtype=np.float32)[None, :]
    xx /= cols
    mlo = job.view in ("MLO", "XCCL")
    cy = (0.47 if mlo else 0.5) + rng.normal(0, 0.02)
    ay = job.breast_size * (0.45 if mlo else 0.40)
    ax = job.breast_size * 0.78
    r2 = ((yy - cy) / ay) ** 2 + (xx / ax) ** 2
    breast = r2 < 1.0
    pectoral = np.zeros_like(breast)
    if mlo:
        pectoral = (xx / (0.26 * job.breast_size) + yy / 0.55) < 1.0
    tissue_region = breast & ~pectoral

    coarse = rng.normal(size=(14, 11)).astype(np.float32)
    field = smooth_field(coarse, rows, cols)
    field /= field[tissue_region].std() + 1e-6
    # Glandular tissue gathers behind the nipple and thins out towards the skin.
    towards_skin = np.clip(r2, 0, 1)
    np.sqrt(towards_skin, out=towards_skin)
    np.subtract(1.0, towards_skin, out=towards_skin)
    towards_skin *= 1.6
    field += towards_skin
    del towards_skin
    threshold = float(np.quantile(field[tissue_region], 1.0 - job.dense_fraction))
    field -= threshold
    field /= 0.06
    dense = special.expit(field, out=field)

    look = VENDOR_LOOKS[job.manufacturer]
    s = VENDOR_SIGNAL
    # Vendors equalise breast thickness differently: how much the periphery darkens,
    # and whether its outer ring is enhanced, is part of each vendor's look.
    falloff = 0.38 + s * (look.edge_falloff - 0.38)
    fat = 0.30 + job.fat_shift
    exponent = 1.0 + s * (look.gamma - 1.0)
    heel = 1.0 + s * look.heel * (0.5 - yy)
    if look.stripes:
        stripes = s * look.stripes * np.sin(2 * np.pi * look.stripe_cycles * yy + rng.uniform(0, 2 * np.pi))
    image = np.empty((rows, cols), dtype=np.float64)
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = slice(top, top + RENDER_BLOCK_ROWS)
        r2_block, breast_block = r2[block], breast[block]
        thickness = (1.0 - falloff) + falloff * np.sqrt(np.clip(1.0 - r2_block, 0.0, 1.0))
        thickness = thickness + s * look.rim * ((r2_block > 0.8) & breast_block)
        tissue = np.where(tissue_region[block], (fat + 0.48 * dense[block]) * thickness, 0.0)
        tissue = np.where(pectoral[block] & breast_block, 0.80 * thickness, tissue)
        tissue = np.clip(tissue, 0, 1) ** exponent
        tissue = tissue * heel[block]
        if look.stripes:
            tissue = tissue + stripes[block]
        image[block] = np.where(breast_block, tissue, 0.0)
    del dense, field
    if look.blur:
        image = ndimage.gaussian_filter(image, sigma=s * look.blur * rows)
    # Quantum noise over the whole image first, then the background's: the draws come in
    # this order, block after block.
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = image[top : top + RENDER_BLOCK_ROWS]
        block += rng.normal(0, look.noise, size=block.shape)
    display = np.empty((rows, cols), dtype=np.float32)
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = slice(top, top + RENDER_BLOCK_ROWS)
        background = np.abs(rng.normal(0, 0.004, size=image[block].shape))
        display[block] = np.where(breast[block], image[block], background)
    # A lead marker in a far corner, as on real films: the breast mask must drop it.
    mr, mc = max(2, rows // 25), max(3, cols // 12)
    display[rows // 20 : rows // 20 + mr, cols - 2 * mc : cols - mc] = 0.92
    np.clip(display, 0.0, 1.0, out=display)
    # Right breasts with the chest wall on the left edge, left breasts on the right.
    return display if job.laterality == "R" else display[:, ::-1].copy()


def add_hard_features(display: np.ndarray, seed: int) -> np.ndarray:
    """What makes a breast mask hard, added to a rendered display image (a new array).

    A text label (a bright plate with dark letters) in a corner away from the chest
    wall, a thin bright skin line two pixels wide, and the breast shifted up so dense
    tissue touches the image edge. Used to check that preprocessing a reduced image
    gives the cache of the full-resolution pipeline (``bench/full_size.py``, tests).
    """
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    rows, cols = display.shape
    image = np.zeros_like(display)
    shift = rows // 8
    image[: rows - shift] = display[shift:]
    breast = image > 0.05
    chest_left = breast[:, : max(1, cols // 50)].sum() >= breast[:, -max(1, cols // 50) :].sum()
    # Dense tissue along the cut top edge.
    top = np.zeros_like(breast)
    top[: rows // 10] = True
    image = np.where(top & breast, np.maximum(image, 0.85 + rng.uniform(0, 0.05)), image)
    # Skin line: the outer two pixels of the breast.
    inner = ndimage.binary_erosion(breast, iterations=2)
    image = np.where(breast & ~inner, 0.7, image)
    # Label plate with letters, bottom corner on the side away from the chest wall.
    plate_rows, plate_cols = max(6, rows // 14), max(10, cols // 5)
    r0 = rows - plate_rows - rows // 30
    c0 = cols - plate_cols - cols // 30 if chest_left else cols // 30
    image[r0 : r0 + plate_rows, c0 : c0 + plate_cols] = 0.95
    letter = max(2, plate_cols // 12)
    for k in range(1, plate_cols // (2 * letter)):
        c = c0 + 2 * k * letter - letter // 2
        image[r0 + plate_rows // 4 : r0 + 3 * plate_rows // 4, c : c + max(1, letter // 2)] = 0.1
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def to_stored_pixels(display: np.ndarray, look: VendorLook, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Map display values to stored values and a VOI window that maps them back."""
    maxv = 2**look.bits_stored - 1
    width = maxv * rng.uniform(0.80, 0.88)
    center = maxv * rng.uniform(0.48, 0.52)
    stored = center - 0.5 + (display - 0.5) * (width - 1)
    stored = np.clip(np.round(stored), 0, maxv).astype(np.uint16)
    if look.photometric == "MONOCHROME1":
        return (maxv - stored).astype(np.uint16), maxv - center + 1, width
    return stored, center, width


MAMMOGRAPHY_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray, for presentation
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


def mammogram_elements(job: ImageJob, stored: np.ndarray, center: float, width: float) -> tuple[list[Element], list[Element]]:
    """The file meta and dataset elements of one synthetic mammogram with native pixel data."""
    from pydicom import __version__ as pydicom_version
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    look = VENDOR_LOOKS[job.manufacturer]
    file_meta: list[Element] = [
        (0x00020001, "OB", b"\0\1"),  # File Meta Information Version 1
        (0x00020002, "UI", MAMMOGRAPHY_SOP_CLASS),
        (0x00020003, "UI", job.sop_uid),
        (0x00020010, "UI", EXPLICIT_VR_LITTLE_ENDIAN),
        (0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID),
        # Byte for byte what pydicom writes for these elements (tests/test_synthetic.py).
        (0x00020013, "SH", f"PYDICOM {pydicom_version}"),
    ]
    if job.image_type == "2D":
        image_type = ["DERIVED", "PRIMARY"]
    else:
        image_type = ["DERIVED", "SECONDARY", job.image_type.upper().replace("-", "")]
    spacing = [round(job.pixel_spacing, 4)] * 2
    dataset: list[Element] = [
        (0x00080008, "CS", image_type),
        (0x00080016, "UI", MAMMOGRAPHY_SOP_CLASS),
        (0x00080018, "UI", job.sop_uid),
        (0x00080020, "DA", job.study_date),
        (0x00080060, "CS", "MG"),
        (0x00080068, "CS", "FOR PRESENTATION"),
        (0x00080070, "LO", job.manufacturer),
        (0x00081090, "LO", look.model),
        (0x00100020, "LO", job.patient_id),
        (0x00100040, "CS", job.patient_sex),
        (0x00181164, "DS", spacing),  # Imager Pixel Spacing
        (0x00185101, "CS", job.view),
        (0x0020000D, "UI", job.study_uid),
        (0x0020000E, "UI", job.series_uid),
        (0x00200013, "IS", job.instance_number),
        (0x00200062, "CS", job.laterality),
        (0x00280002, "US", 1),  # Samples per Pixel
        (0x00280004, "CS", look.photometric),
        (0x00280010, "US", stored.shape[0]),
        (0x00280011, "US", stored.shape[1]),
        (0x00280030, "DS", spacing),
        (0x00280100, "US", 16),  # Bits Allocated
        (0x00280101, "US", look.bits_stored),
        (0x00280102, "US", look.bits_stored - 1),  # High Bit
        (0x00280103, "US", 0),  # Pixel Representation: unsigned
        (0x00281050, "DS", round(float(center), 2)),
        (0x00281051, "DS", round(float(width), 2)),
        (0x00281056, "CS", "LINEAR"),  # VOI LUT Function
        (0x7FE00010, "OW", np.ascontiguousarray(stored, dtype="<u2").tobytes()),
    ]
    return file_meta, dataset


def pydicom_file(file_meta: list[Element], dataset: list[Element], path: Path) -> FileDataset:
    """The same elements as a pydicom ``FileDataset``."""
    from pydicom.dataset import FileDataset, FileMetaDataset

    meta = FileMetaDataset()
    for tag, vr, value in file_meta:
        meta.add_new(tag, vr, value)
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    for tag, vr, value in dataset:
        ds.add_new(tag, vr, value)
    return ds


def jpeg2000_elements(
    file_meta: list[Element], dataset: list[Element], stored: np.ndarray, look: VendorLook
) -> tuple[list[Element], list[Element]]:
    """The same file with its pixel data JPEG 2000 (lossless) compressed and encapsulated,
    as pydicom's ``Dataset.compress`` makes it (the same encoder and options)."""
    from pydicom.encaps import encapsulate
    from pydicom.pixels.encoders import JPEG2000LosslessEncoder

    codestream = JPEG2000LosslessEncoder.encode(
        stored,
        encoding_plugin="pylibjpeg",
        rows=stored.shape[0],
        columns=stored.shape[1],
        samples_per_pixel=1,
        bits_allocated=16,
        bits_stored=look.bits_stored,
        pixel_representation=0,
        photometric_interpretation=look.photometric,
        number_of_frames=1,
    )
    file_meta = [(0x00020010, "UI", JPEG2000_LOSSLESS) if tag == 0x00020010 else (tag, vr, v) for tag, vr, v in file_meta]
    pixels = (0x7FE00010, "OB", Encapsulated(encapsulate([codestream])))
    dataset = [pixels if tag == 0x7FE00010 else (tag, vr, v) for tag, vr, v in dataset]
    return file_meta, dataset


def write_dicom(job: ImageJob, out_root: Path, display: np.ndarray | None = None, via_pydicom: bool = False) -> Path:
    """Render one image (or take ``display``) and write it as a DICOM mammogram under ``out_root``.

    Files are encoded directly (``dicom_encoding``) to the bytes pydicom writes for the
    same elements; ``via_pydicom`` writes them with pydicom instead (the reference the
    tests compare against).
    """
    look = VENDOR_LOOKS[job.manufacturer]
    rng = np.random.default_rng(job.seed + 1)
    stored, center, width = to_stored_pixels(render_display(job) if display is None else display, look, rng)
    file_meta, dataset = mammogram_elements(job, stored, center, width)
    path = out_root / job.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if via_pydicom:
        from pydicom.uid import JPEG2000Lossless

        ds = pydicom_file(file_meta, dataset, path)
        if job.jpeg2000:
            # Keep the planned SOP UID: the file name and the tables refer to it.
            ds.compress(JPEG2000Lossless, stored, encoding_plugin="pylibjpeg", generate_instance_uid=False)
        ds.save_as(path, enforce_file_format=True)
        return path
    if job.jpeg2000:
        file_meta, dataset = jpeg2000_elements(file_meta, dataset, stored, look)
    path.write_bytes(encode_file(file_meta, dataset))
    return path


def _write_chunk(args: tuple[list[ImageJob], str]) -> int:
    jobs, root = args
    for job in jobs:
        write_dicom(job, Path(root))
    return len(jobs)


def write_images(jobs: list[ImageJob], out_root: str | Path, workers: int = 1) -> int:
    """Write every DICOM; ``workers`` processes share the jobs (results do not depend on it)."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    if workers <= 1:
        return _write_chunk((jobs, str(out_root)))
    chunks = [(jobs[i::workers * 8], str(out_root)) for i in range(workers * 8)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(_write_chunk, chunks))


def oracle_summary(metadata: pd.DataFrame, clinical: pd.DataFrame, jobs: Iterable[ImageJob]) -> pd.DataFrame:
    """How readable density is in principle: the true dense fraction used as a score.

    Computed on female 2D CC/MLO images of the three study vendors with one density
    per patient; it bounds what a perfect density reader could reach.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fractions = pd.Series({j.path: j.dense_fraction for j in jobs}, name="dense_fraction")
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
    rows = [
        {
            "measure": "oracle_auc",
            "value": round(float(roc_auc_score(frame["label"], frame["dense_fraction"])), 4),
        },
        {"measure": "oracle_tpr_at_fpr_0.1", "value": round(float(tpr[np.argmin(np.abs(fpr - 0.1))]), 4)},
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
    return SyntheticSettings(**known)  # type: ignore[arg-type]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
