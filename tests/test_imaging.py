"""Reading and preprocessing real DICOM (and PNG) files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dicom_factory import phantom, write_mammogram
from labelbias.errors import ImageReadError
from labelbias.imaging import PreprocessSettings, breast_mask, preprocess, read_dicom, read_png16

SETTINGS = PreprocessSettings(height=64, width=48)


def test_monochrome1_is_inverted_to_match_monochrome2(tmp_path):
    mono2 = read_dicom_written(tmp_path / "m2.dcm", photometric="MONOCHROME2")
    mono1 = read_dicom_written(tmp_path / "m1.dcm", photometric="MONOCHROME1")
    np.testing.assert_allclose(mono1, mono2, atol=1e-3)
    assert mono1[48, 5] > mono1[48, 40] > mono1[0, 0]  # dense > fat > air after inversion


def read_dicom_written(path, **kwargs):
    write_mammogram(path, **kwargs)
    return read_dicom(path)


def test_jpeg2000_lossless_decodes_to_the_same_pixels(tmp_path):
    plain = read_dicom_written(tmp_path / "plain.dcm", jpeg2000=False, bits_stored=14)
    j2k = read_dicom_written(tmp_path / "j2k.dcm", jpeg2000=True, bits_stored=14)
    np.testing.assert_array_equal(plain, j2k)


def test_window_tags_are_applied(tmp_path):
    import pydicom

    path = tmp_path / "w.dcm"
    write_mammogram(path, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.save_as(path)
    image = read_dicom(path)
    # marker at 0.95 * 4095 stored maps to about 0.95 with a full-range window
    assert image[3, 66] == pytest.approx(0.95, abs=0.01)


def test_corrupt_dicom_names_its_path(tmp_path):
    path = tmp_path / "corrupt.dcm"
    path.write_bytes(b"this is not a dicom file" * 10)
    with pytest.raises(ImageReadError, match=r"corrupt\.dcm: cannot decode DICOM"):
        read_dicom(path)


def test_truncated_dicom_names_its_path(tmp_path):
    path = tmp_path / "truncated.dcm"
    write_mammogram(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"truncated\.dcm"):
        read_dicom(path)


def test_missing_file_names_its_path(tmp_path):
    with pytest.raises(ImageReadError, match=r"gone\.dcm: file not found"):
        read_dicom(tmp_path / "gone.dcm")


def test_mask_keeps_breast_and_drops_marker():
    image = phantom(96, 72, 0.5)
    mask = breast_mask(image, 0.05)
    assert mask[48, 10] and not mask[3, 66] and not mask[0, 0]


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_preprocess_puts_chest_wall_left_and_scales(tmp_path, laterality):
    path = tmp_path / f"{laterality}.dcm"
    write_mammogram(path, laterality=laterality, rows=120, columns=90, dense_fraction=0.4)
    cached, flipped = preprocess(read_dicom(path), SETTINGS, str(path))
    assert cached.shape == (64, 48) and cached.dtype == np.uint16
    assert flipped == (laterality == "L")
    left, right = cached[:, :4].mean(), cached[:, -4:].mean()
    assert left > right  # the breast touches the left edge
    # dense tissue (0.8 of the 0.95 marker level) is the brightest left: the marker is gone
    assert 0.8 * 65535 < cached.max() < 0.9 * 65535
    assert cached[0, -1] == 0


def test_denser_breast_gives_brighter_cache(tmp_path):
    means = []
    for fraction in (0.1, 0.4, 0.7):
        path = tmp_path / f"{fraction}.dcm"
        write_mammogram(path, dense_fraction=fraction)
        means.append(preprocess(read_dicom(path), SETTINGS)[0].mean())
    assert means[0] < means[1] < means[2]


def test_png16_reads_like_dicom(tmp_path):
    image = phantom(96, 72, 0.5)
    path = tmp_path / "img.png"
    Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(path)
    np.testing.assert_allclose(read_png16(path), image, atol=1e-4)


def test_empty_image_is_refused(tmp_path):
    with pytest.raises(ImageReadError, match="no breast found"):
        preprocess(np.zeros((80, 60), np.float32), SETTINGS, "blank.dcm")
