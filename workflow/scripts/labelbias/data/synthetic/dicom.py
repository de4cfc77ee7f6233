"""Writing synthetic mammograms as DICOM files: the bytes pydicom writes for the same
elements, native or JPEG 2000 lossless, in EMBED's folder layout."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..dicom_encoding import Element, Encapsulated, encode_file
from .plan import VENDOR_LOOKS, ImageJob, VendorLook
from .render import render_display, to_stored_pixels

if TYPE_CHECKING:
    from pydicom.dataset import FileDataset


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


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
