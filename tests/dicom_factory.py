"""Writes small DICOM mammograms for tests, independently of the synthetic generator.

The image is a half disc against one edge (the chest wall), a bright band whose
width is the dense fraction, and a small bright marker in a far corner.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLosslessSV1, generate_uid


def phantom(rows: int, columns: int, dense_fraction: float) -> np.ndarray:
    """Display image in [0, 1], chest wall on the left edge."""
    yy, xx = np.mgrid[0:rows, 0:columns]
    r2 = ((yy - rows / 2) / (0.42 * rows)) ** 2 + (xx / (0.75 * columns)) ** 2
    breast = r2 < 1
    image = np.where(breast, 0.3, 0.0)
    image = np.where(breast & (xx < dense_fraction * 0.75 * columns), 0.8, image)
    image[2:5, columns - 8 : columns - 3] = 0.95  # marker, not connected to the breast
    return image.astype(np.float32)


def jpeg_lossless_sv1(stored: np.ndarray, precision: int) -> bytes:
    """A JPEG Lossless (process 14, first-order prediction) codestream of ``stored``, per ITU-T T.81 Annex H.

    Written here because no installed package encodes this syntax; the decoder under test is
    pydicom's plug-in, so an error in either side shows as pixels that differ.
    """
    rows, columns = stored.shape
    values = stored.astype(np.int64)
    predicted = np.empty_like(values)
    predicted[:, 1:] = values[:, :-1]  # predictor 1: the sample to the left
    predicted[1:, 0] = values[:-1, 0]  # a row's first sample: the one above
    predicted[0, 0] = 1 << (precision - 1)
    differences = (values - predicted + 32768) % 65536 - 32768
    # One Huffman table: each category 0..16 (bits of the difference) a 5-bit code, in order.
    bits = []
    for difference in differences.ravel().tolist():
        category = abs(difference).bit_length()
        bits.append(format(category, "05b"))
        if 0 < category < 16:
            extra = difference if difference > 0 else difference + (1 << category) - 1
            bits.append(format(extra, f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    entropy = bytearray()
    for start in range(0, len(stream), 8):
        byte = int(stream[start : start + 8], 2)
        entropy.append(byte)
        if byte == 0xFF:
            entropy.append(0x00)  # byte stuffing
    counts = bytes([0, 0, 0, 0, 17] + [0] * 11)
    huffman = b"\xff\xc4" + (3 + 16 + 17).to_bytes(2, "big") + b"\x00" + counts + bytes(range(17))
    frame = b"\xff\xc3" + (11).to_bytes(2, "big") + bytes([precision]) + rows.to_bytes(2, "big")
    frame += columns.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    scan = b"\xff\xda" + (8).to_bytes(2, "big") + b"\x01\x01\x00" + bytes([1, 0, 0])
    return b"\xff\xd8" + huffman + frame + scan + bytes(entropy) + b"\xff\xd9"


def new_dataset(path: Path, sop_class: str, modality: str) -> FileDataset:
    """An explicit-VR little-endian dataset of ``sop_class`` with a new instance UID, no image yet."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    return ds


def write_mammogram(
    path: Path,
    rows: int = 96,
    columns: int = 72,
    laterality: str = "R",
    manufacturer: str = "HOLOGIC, Inc.",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    jpeg2000: bool = False,
    jpeg_lossless: bool = False,
    dense_fraction: float = 0.5,
    patient_id: str = "10000001",
    view: str = "CC",
    display: np.ndarray | None = None,
) -> np.ndarray:
    """Write a DICOM mammogram and return the display image it encodes (chest wall as written)."""
    image = phantom(rows, columns, dense_fraction) if display is None else display
    if laterality == "L":
        image = image[:, ::-1].copy()
    maxv = 2**bits_stored - 1
    stored = np.round(image * maxv).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (maxv - stored).astype(np.uint16)
    ds = new_dataset(path, "1.2.840.10008.5.1.4.1.1.1.2", "MG")  # digital mammography, for presentation
    ds.Manufacturer = manufacturer
    ds.PatientID = str(patient_id)
    ds.ViewPosition = view
    ds.ImageLaterality = laterality
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if jpeg2000:
        ds.compress(JPEG2000Lossless, stored, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    elif jpeg_lossless:
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        ds.PixelData = encapsulate([jpeg_lossless_sv1(stored, bits_stored)])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return image


def write_colour_dicom(path: Path, rgb: np.ndarray) -> None:
    """Write an uncompressed 8-bit RGB photograph (rows, cols, 3) as a DICOM secondary capture."""
    ds = new_dataset(path, "1.2.840.10008.5.1.4.1.1.7", "OT")  # secondary capture
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.Rows, ds.Columns = rgb.shape[:2]
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
