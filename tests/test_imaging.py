"""Reading and preprocessing real DICOM (and PNG) files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dicom_factory import phantom, write_mammogram
from workflow_helpers import synthetic_settings
from labelbias.errors import ImageReadError
from labelbias.data.imaging import (
    PreprocessSettings,
    box_reduce,
    breast_mask,
    cache_agreement,
    load_for_cache,
    preprocess,
    read_dicom,
    read_png16,
    reduction_factor,
    stored_pixels,
)

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


@pytest.mark.parametrize("bits_stored", [12, 16])
def test_jpeg_lossless_process_14_decodes_to_the_same_pixels(tmp_path, bits_stored):
    # Mammography archives often store JPEG Lossless; pydicom decodes it through GDCM (python-gdcm).
    plain = read_dicom_written(tmp_path / "plain.dcm", bits_stored=bits_stored)
    lossless = read_dicom_written(tmp_path / "jpeg_lossless.dcm", jpeg_lossless=True, bits_stored=bits_stored)
    np.testing.assert_array_equal(plain, lossless)
    reduced = PreprocessSettings(height=24, width=18, working_scale=1)
    np.testing.assert_array_equal(
        read_dicom(tmp_path / "plain.dcm", reduce_for=reduced), read_dicom(tmp_path / "jpeg_lossless.dcm", reduce_for=reduced)
    )


def test_jpeg_ls_lossless_decodes_to_the_same_pixels():
    from pydicom.data import get_testdata_file

    # pydicom's own pair: one image, uncompressed and JPEG-LS lossless (no installed package writes JPEG-LS).
    plain = read_dicom(get_testdata_file("MR_small.dcm"))
    jpeg_ls = read_dicom(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    assert plain.shape == (64, 64) and plain.max() > plain.min()
    np.testing.assert_array_equal(plain, jpeg_ls)


def test_a_transfer_syntax_no_plugin_decodes_names_the_file_and_the_syntax(tmp_path):
    import pydicom
    from pydicom.encaps import encapsulate

    path = tmp_path / "video.dcm"
    write_mammogram(path)
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG-2: video, read by no plug-in
    dataset.PixelData = encapsulate([bytes(64)])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path)
    with pytest.raises(ImageReadError, match=r"video\.dcm: cannot decode DICOM pixel data .*MPEG2 Main Profile"):
        read_dicom(path)


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


def test_reduction_factor_keeps_the_working_scale():
    study = PreprocessSettings(height=256, width=192)
    assert reduction_factor((4096, 3328), study) == 4  # 1024x832: 4 x 256x192
    assert reduction_factor((5928, 4728), study) == 6  # 988x788: 3.9x
    assert reduction_factor((3062, 2394), study) == 3  # 1020x798: 3.99x
    assert reduction_factor((82, 67), PreprocessSettings(32, 24)) == 1  # the default's small files
    assert reduction_factor((4096, 3328), PreprocessSettings(256, 192, working_scale=0)) == 1
    assert reduction_factor((4096, 3328), None) == 1


def test_box_reduce_averages_blocks_exactly():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 2**14, size=(19, 14)).astype(np.uint16)
    reduced = box_reduce(pixels, 3)
    assert reduced.shape == (6, 4) and reduced.dtype == np.float32
    expected = pixels[:18, :12].astype(np.float64).reshape(6, 3, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(reduced, expected, rtol=1e-6)
    np.testing.assert_array_equal(box_reduce(pixels, 1), pixels.astype(np.float32))


@pytest.mark.parametrize(
    "shape, factor, keep_bits",
    [
        ((600, 472), 6, 12),  # Fujifilm's reduction: four columns to a 64-bit word
        ((307, 242), 3, 14),  # GE's 14 bits, an even width: two to a word
        ((203, 151), 5, 12),  # an odd width: one to a word
        ((140, 96), 16, 12),  # the largest block whose column sums fit 16 bits
        ((140, 96), 17, 12),  # one more row and they do not: summed the plain way
        ((90, 64), 4, 16),  # all 16 bits used: the plain way
    ],
)
def test_box_reduce_packed_sums_equal_the_plain_mean(shape, factor, keep_bits):
    """Four pixels per word, high bits cleared: the same float32 values as masking and averaging in float64."""
    rng = np.random.default_rng(factor)
    pixels = rng.integers(0, 2**keep_bits, size=shape).astype(np.uint16)
    pixels[-3:] = 2**keep_bits - 1  # the largest values in the last blocks: no lane may carry
    if keep_bits < 16:
        pixels[::5] |= np.uint16(0xFFFF ^ (2**keep_bits - 1))  # garbage above BitsStored
    rows, cols = shape[0] // factor * factor, shape[1] // factor * factor
    clean = (pixels & np.uint16(2**keep_bits - 1))[:rows, :cols].astype(np.float64)
    expected = (clean.reshape(rows // factor, factor, cols // factor, factor).sum(axis=(1, 3)) / np.float32(factor**2))
    np.testing.assert_array_equal(box_reduce(pixels, factor, keep_bits), expected.astype(np.float32))


@pytest.mark.parametrize("bits_stored", [12, 14])
def test_jpeg2000_at_a_lower_resolution_level_matches_block_means(tmp_path, bits_stored):
    """Pillow returns every precision scaled to 16 bits; the stored values come back in their own units."""
    import pydicom

    display = np.clip(phantom(512, 384, 0.5) + np.linspace(0, 0.1, 384)[None, :], 0, 1)
    path = tmp_path / "j2k.dcm"
    write_mammogram(path, rows=512, columns=384, bits_stored=bits_stored, jpeg2000=True, display=display)
    dataset = pydicom.dcmread(path)
    reduced = stored_pixels(dataset, 4)  # two resolution levels skipped by the decoder
    assert reduced.shape == (128, 96)
    block_means = box_reduce(dataset.pixel_array, 4)
    inside = (slice(8, -8), slice(4, -8))  # away from the half disc's edge and the marker
    difference = np.abs(reduced - block_means)[inside] / 2**bits_stored
    assert np.median(difference) < 0.002 and reduced.max() <= 2**bits_stored


def hard_case(tmp_path, manufacturer, jpeg2000):
    """A generator image at a quarter of the real matrix, with a label, a skin line and an edge-cut breast."""
    from labelbias.data import synthetic

    settings = synthetic_settings(seed=3, patients=12, matrix_scale=0.25, jpeg2000_share=0.5)
    _, _, jobs = synthetic.plan_dataset(settings)
    job = next(
        j for j in jobs if j.manufacturer == manufacturer and j.jpeg2000 == jpeg2000 and j.image_type == "2D"
    )
    display = synthetic.add_hard_features(synthetic.render_display(job), job.seed)
    return synthetic.write_dicom(job, tmp_path, display), display


@pytest.mark.parametrize(
    "manufacturer, jpeg2000",
    [("HOLOGIC, Inc.", True), ("HOLOGIC, Inc.", False), ("FUJIFILM Corporation", False), ("GE MEDICAL SYSTEMS", False)],
)
def test_reduced_pipeline_gives_the_full_resolution_cache(tmp_path, manufacturer, jpeg2000):
    """The fidelity check: same flip, the same mask and nearly the same pixels (README: Preprocessing)."""
    path, display = hard_case(tmp_path, manufacturer, jpeg2000)
    # A 64x48 input from a quarter-size matrix reduces by 2-5, like full size at 256x192 (4-5).
    full = PreprocessSettings(64, 48, working_scale=0)
    fast = PreprocessSettings(64, 48)
    assert reduction_factor(display.shape, fast) >= 2
    reference, reference_flip = preprocess(*load_for_cache(path, "dicom", full)[:1], full)
    image, full_shape = load_for_cache(path, "dicom", fast)
    assert full_shape == display.shape and image.shape[0] < display.shape[0] // 2
    reduced, reduced_flip = preprocess(image, fast, full_shape=full_shape)
    agreement = cache_agreement(reference, reduced)
    assert reduced_flip == reference_flip
    assert agreement["mask_iou"] > 0.99
    assert agreement["mean_abs"] < 0.005
    assert agreement["p999_abs"] < 0.05
    # The label plate is dropped at both resolutions (kept, it would also cost about 3% of IoU).
    plate_rows, plate_cols = np.nonzero(display == np.float32(0.95))
    assert plate_rows.size > 100
    k = reduction_factor(display.shape, fast)
    for image, scale in ((read_dicom(path, full), 1), (read_dicom(path, fast), k)):
        mask = breast_mask(image, fast.mask_threshold)
        inside = mask[plate_rows.min() // scale + 1 : plate_rows.max() // scale, plate_cols.min() // scale + 1 : plate_cols.max() // scale]
        assert inside.size and not inside.any()


def test_cache_agreement_sees_a_shifted_mask():
    a = np.zeros((40, 30), np.uint16)
    a[5:35, :20] = 30000
    b = np.roll(a, 3, axis=1)
    same = cache_agreement(a, a)
    moved = cache_agreement(a, b)
    assert same == {"mean_abs": 0.0, "p999_abs": 0.0, "mask_iou": 1.0}
    assert moved["mask_iou"] == pytest.approx(17 / 23) and moved["mean_abs"] > 0.05


def test_native_pixel_data_reads_like_pydicom(tmp_path):
    """16-bit native pixel data is used in place; unused high bits are cleared as pydicom does."""
    import pydicom

    path = tmp_path / "garbage_bits.dcm"
    write_mammogram(path, rows=200, columns=150, bits_stored=12)
    dataset = pydicom.dcmread(path)
    garbage = dataset.pixel_array.copy()
    garbage[::7] |= 0xF000  # bits above BitsStored, as some old files carry
    dataset.PixelData = garbage.tobytes()
    dataset.save_as(path)
    dataset = pydicom.dcmread(path)
    expected = dataset.pixel_array
    assert expected.max() < 4096
    for factor in (1, 3):
        np.testing.assert_array_equal(stored_pixels(dataset, factor), box_reduce(expected, factor))
    np.testing.assert_array_equal(read_dicom(path), read_dicom_via_pydicom(path))


def read_dicom_via_pydicom(path):
    """The display image through pydicom's own decoder (no mapping)."""
    import pydicom

    from labelbias.data.imaging import display_from_stored

    dataset = pydicom.dcmread(path)
    return display_from_stored(dataset, dataset.pixel_array.astype(np.float32), path)


@pytest.mark.parametrize("layout", ["implicit VR", "explicit VR with a trailing element", "short pixel data"])
def test_mapped_pixel_data_reads_like_pydicom(tmp_path, layout):
    """The file's pixel data is mapped in place for both native syntaxes; anything unexpected goes to pydicom."""
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    from labelbias.data.imaging import _mapped_native_pixels, decode_dicom

    path = tmp_path / "native.dcm"
    write_mammogram(path, rows=120, columns=90, bits_stored=12)
    dataset = pydicom.dcmread(path)
    if layout == "implicit VR":
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        dataset.save_as(path, implicit_vr=True, little_endian=True)
    elif layout == "explicit VR with a trailing element":
        dataset.add_new(0xFFFCFFFC, "OB", b"\0" * 16)  # DataSetTrailingPadding after the pixel data
        dataset.save_as(path)
    else:
        dataset.PixelData = dataset.PixelData[:-2]  # one value missing: not the header's size
        dataset.save_as(path)
    with open(path, "rb") as handle:
        header = pydicom.dcmread(handle, stop_before_pixels=True)
        mapped = _mapped_native_pixels(header, handle)
    if layout == "short pixel data":
        assert mapped is None
        with pytest.raises(ImageReadError, match=r"native\.dcm: cannot decode DICOM"):
            decode_dicom(path)
        return
    assert mapped is not None and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, pydicom.dcmread(path).pixel_array)
    np.testing.assert_array_equal(read_dicom(path), read_dicom_via_pydicom(path))


def test_damaged_jpeg2000_names_its_path_on_the_reduced_path(tmp_path):
    path = tmp_path / "broken_j2k.dcm"
    write_mammogram(path, rows=512, columns=384, jpeg2000=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=r"broken_j2k\.dcm"):
        read_dicom(path, PreprocessSettings(64, 48))
