"""Colour images (preprocess.channels: 3): reading rules, the colour cache, a three-channel
network, colour-safe augmentation, the grey perturbation, and a subgroup that differs
only in colour, end to end through the workflow."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from labelbias.config import train_settings
from labelbias.data.cache import merge_shards, preprocess_shard
from labelbias.data.imaging import PreprocessSettings, load_for_cache, picture_pixels, preprocess
from labelbias.data.perturb import LUMA, Perturbation, perturb_images
from labelbias.errors import ConfigError, DataQualityError, ImageReadError
from labelbias.models.augment import AugmentSettings, augment_batch
from labelbias.models.model import build_resnet18, initial_model, load_backbone
from labelbias.models.train import TrainSettings, fit, image_channels, load_batch, predict
from labelbias.schema import schema_defaults
from dicom_factory import write_colour_dicom, write_mammogram
from table_factory import PRESETS, checked, write_colour_only_ham10000
from workflow_helpers import snakemake, write_config

COLOUR = PreprocessSettings(height=24, width=32, mammogram=False, channels=3)
GREY = PreprocessSettings(height=24, width=32, mammogram=False, channels=1)


def gradient_rgb(rows: int = 30, cols: int = 40) -> np.ndarray:
    """An RGB picture whose three planes differ (red rises left to right, blue top to bottom)."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    return np.stack([40 + 4 * xx, 60 + 2 * xx + yy, 30 + 5 * yy], axis=-1).astype(np.uint8)


def png48(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# --- reading rules ---------------------------------------------------------------------------


def test_colour_is_kept_with_three_channels_and_made_luminance_with_one(tmp_path):
    rgb = gradient_rgb()
    path = tmp_path / "lesion.png"
    Image.fromarray(rgb, mode="RGB").save(path)
    assert np.array_equal(picture_pixels(path, channels=3), rgb)
    grey = picture_pixels(path, channels=1)
    assert grey.shape == rgb.shape[:2]
    assert np.abs(grey.astype(float) - rgb @ LUMA).max() <= 1  # ITU-R 601, as Pillow's L rounds it


@pytest.mark.parametrize(
    "write,reason",
    [
        (lambda p: Image.fromarray(gradient_rgb()[..., 0], mode="L").save(p.with_suffix(".png")),
         "a grey-scale image (mode L) in a colour dataset (preprocess.channels: 3)"),
        (lambda p: Image.fromarray(gradient_rgb(), mode="RGB").convert("CMYK").save(p.with_suffix(".jpg")),
         "CMYK colour: its RGB depends on a colour profile"),
        (lambda p: Image.fromarray(np.dstack([gradient_rgb(), np.full((30, 40), 128, np.uint8)]), mode="RGBA")
         .save(p.with_suffix(".png")), "transparent pixels (mode RGBA, 100% of them)"),
    ],
    ids=["grey", "cmyk", "rgba"],
)
def test_files_a_colour_dataset_cannot_use_get_a_reason_naming_them(tmp_path, write, reason):
    write(tmp_path / "bad")
    path = next(tmp_path.glob("bad.*"))
    with pytest.raises(ImageReadError) as raised:
        load_for_cache(path, "auto", COLOUR)
    assert str(raised.value).startswith(f"{path}: ") and reason in str(raised.value)


def test_a_colour_dicom_reads_as_its_png_does(tmp_path):
    # Ophthalmic and dermatology archives store photographs as colour DICOM.
    rgb = gradient_rgb()
    write_colour_dicom(tmp_path / "fundus.dcm", rgb)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "fundus.png")
    for settings in (COLOUR, GREY):
        from_dicom, dicom_shape = load_for_cache(tmp_path / "fundus.dcm", "auto", settings)
        from_png, png_shape = load_for_cache(tmp_path / "fundus.png", "auto", settings)
        assert dicom_shape == png_shape == rgb.shape[:2]
        assert from_dicom.shape == from_png.shape == ((3,) if settings.channels == 3 else ()) + rgb.shape[:2]
        if settings.channels == 3:
            np.testing.assert_array_equal(from_dicom, from_png)
        else:  # ITU-R 601 luminance, which Pillow's L rounds to whole values
            assert np.abs(from_dicom - from_png).max() <= 1 / 255 + 1e-6


def test_a_ycbcr_jpeg_dicom_is_read_as_rgb():
    from pydicom.data import get_testdata_file

    # pydicom's own pair: one picture, RGB run-length coded and JPEG baseline in YCbCr (lossy).
    rgb, _ = load_for_cache(get_testdata_file("SC_rgb_rle.dcm"), "dicom", COLOUR)
    ycbcr, _ = load_for_cache(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"), "dicom", COLOUR)
    assert rgb.shape == ycbcr.shape == (3, 100, 100)
    assert np.abs(rgb[0] - rgb[2]).max() > 0.5  # colour, not grey
    assert np.abs(rgb - ycbcr).mean() < 0.02


def test_a_grey_dicom_in_a_colour_dataset_names_the_file(tmp_path):
    path = tmp_path / "grey.dcm"
    write_mammogram(path)
    with pytest.raises(ImageReadError, match=r"grey\.dcm: a grey-scale DICOM image in a colour dataset"):
        load_for_cache(path, "dicom", COLOUR)


def test_an_opaque_alpha_channel_is_dropped_and_a_palette_expanded(tmp_path):
    rgb = gradient_rgb()
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), mode="RGBA").save(tmp_path / "opaque.png")
    assert np.array_equal(picture_pixels(tmp_path / "opaque.png", 3), rgb)
    palette = Image.fromarray(rgb, mode="RGB").quantize(16)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(picture_pixels(tmp_path / "palette.png", 3), np.asarray(palette.convert("RGB")))


def test_16_bit_colour_is_read_at_its_top_8_bits(tmp_path):
    # Pillow has no 16-bit RGB mode: docs/datasets.md states the rule this checks.
    wide = (gradient_rgb().astype(np.uint16) << 8) | 0xAB
    png48(tmp_path / "wide.png", wide)
    assert np.array_equal(picture_pixels(tmp_path / "wide.png", 3), (wide >> 8).astype(np.uint8))


def test_a_colour_image_is_cached_as_three_planes_resized_alike(tmp_path):
    rgb = gradient_rgb()
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "lesion.png")
    display, shape = load_for_cache(tmp_path / "lesion.png", "auto", COLOUR)
    assert display.shape == (3, 30, 40) and shape == (30, 40)
    cached, flipped = preprocess(display, COLOUR, full_shape=shape)
    assert cached.shape == (3, 24, 32) and cached.dtype == np.uint16 and not flipped
    grey_display, _ = load_for_cache(tmp_path / "lesion.png", "auto", GREY)
    grey_cached, _ = preprocess(grey_display, GREY, full_shape=shape)
    # Each plane is what the grey pipeline makes of that plane alone.
    for plane in range(3):
        alone = preprocess(rgb[..., plane].astype(np.float32) / 255, GREY, full_shape=shape)[0]
        assert np.array_equal(cached[plane], alone)
    assert grey_cached.shape == (24, 32)
    with pytest.raises(ValueError, match="mammograms are grey"):
        PreprocessSettings(24, 32, mammogram=True, channels=3)


def test_a_table_mixing_grey_and_colour_files_lists_the_grey_ones_in_qc(tmp_path):
    rows = []
    for i in range(6):
        rgb = gradient_rgb()
        image = Image.fromarray(rgb, mode="RGB") if i % 3 else Image.fromarray(rgb[..., 1], mode="L")
        image.save(tmp_path / f"img{i}.png")
        rows.append({"image_id": f"img{i}", "image_path": f"img{i}.png"})
    images = pd.DataFrame(rows)
    shards = [preprocess_shard(images, tmp_path, "picture", COLOUR, shard, 2) for shard in range(2)]
    index, qc = merge_shards(images, [s[0] for s in shards], [s[1] for s in shards], tmp_path / "cache.npy")
    bad = qc[qc["status"] != "ok"]
    assert list(bad["image_id"]) == ["img0", "img3"]
    assert bad["reason"].str.startswith("a grey-scale image (mode L) in a colour dataset").all()
    cache = np.load(tmp_path / "cache.npy", mmap_mode="r")
    assert cache.shape == (4, 3, 24, 32) and list(index["image_id"]) == ["img1", "img2", "img4", "img5"]
    assert image_channels(cache) == 3 and load_batch(cache, np.array([2, 0])).shape == (2, 3, 24, 32)
    # A shard without one readable image still has the colour shape.
    empty, _, _ = preprocess_shard(images.iloc[[0]], tmp_path, "picture", COLOUR, 0, 1)
    assert empty.shape == (0, 3, 24, 32)


def test_a_dicom_table_caches_colour_dicoms_and_lists_the_grey_ones_in_qc(tmp_path):
    rows = []
    for i in range(4):
        path = tmp_path / f"img{i}.dcm"
        if i % 2:
            write_colour_dicom(path, gradient_rgb())
        else:
            write_mammogram(path, rows=30, columns=40)
        rows.append({"image_id": f"img{i}", "image_path": path.name})
    images = pd.DataFrame(rows)
    shard = preprocess_shard(images, tmp_path, "dicom", COLOUR, 0, 1)
    index, qc = merge_shards(images, [shard[0]], [shard[1]], tmp_path / "cache.npy")
    bad = qc[qc["status"] != "ok"]
    assert list(bad["image_id"]) == ["img0", "img2"]
    assert bad["reason"].str.startswith("a grey-scale DICOM image in a colour dataset").all()
    cache = np.load(tmp_path / "cache.npy", mmap_mode="r")
    assert cache.shape == (2, 3, 24, 32) and list(index["image_id"]) == ["img1", "img3"]
    # The same picture from a PNG gives the same cache row.
    Image.fromarray(gradient_rgb(), mode="RGB").save(tmp_path / "same.png")
    display, shape = load_for_cache(tmp_path / "same.png", "auto", COLOUR)
    assert np.array_equal(cache[0], preprocess(display, COLOUR, full_shape=shape)[0])


# --- the network, augmentation and the grey perturbation -------------------------------------


def test_a_colour_model_has_resnets_own_stem_and_a_backbone_must_match_it():
    colour = build_resnet18(2, channels=3)
    assert colour.conv1.in_channels == 3 and build_resnet18(2).conv1.in_channels == 1
    load_backbone(build_resnet18(4, channels=3), colour.state_dict())
    with pytest.raises(DataQualityError, match="the backbone takes 1-channel images and this model 3"):
        initial_model(2, "backbone", build_resnet18(2).state_dict(), channels=3)


def test_augmenting_a_grey_picture_in_three_channels_matches_augmenting_it_grey():
    grey = torch.rand(4, 1, 24, 32) * (torch.rand(4, 1, 24, 32) > 0.2)
    settings = AugmentSettings(affine_p=1.0)
    alone = augment_batch(grey, torch.Generator().manual_seed(7), settings)
    tripled = augment_batch(grey.repeat(1, 3, 1, 1), torch.Generator().manual_seed(7), settings)
    # One factor per image for every channel, and no step mixes them.
    assert torch.allclose(tripled, alone.repeat(1, 3, 1, 1), atol=1e-6)


def test_colour_jitter_is_off_by_default_and_keeps_luminance_when_on():
    images = torch.rand(6, 3, 16, 16) * 0.5 + 0.25
    still = AugmentSettings(gamma=(1, 1), brightness=0, contrast=0, affine_p=0)
    assert torch.allclose(augment_batch(images, torch.Generator().manual_seed(1), still), images, atol=1e-6)
    jittered = augment_batch(images, torch.Generator().manual_seed(1), AugmentSettings(
        gamma=(1, 1), brightness=0, contrast=0, affine_p=0, saturation=0.5, hue=0.5))
    luma = torch.tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)
    assert not torch.allclose(jittered, images, atol=1e-2)
    unclipped = (jittered > 0) & (jittered < 1)
    assert unclipped.all(dim=1).float().mean() > 0.5  # most pixels not clipped, so the check bites
    keep = unclipped.all(dim=1, keepdim=True)
    assert torch.allclose((jittered * luma).sum(1, keepdim=True)[keep], (images * luma).sum(1, keepdim=True)[keep], atol=1e-4)


def test_the_grey_perturbation_removes_a_share_of_colour_and_only_applies_to_colour():
    images = np.random.default_rng(0).random((3, 3, 8, 8))
    rows = np.arange(3)
    luminance = np.einsum("c,nchw->nhw", LUMA, images)
    grey = perturb_images(images, rows, Perturbation("grey", 1.0))
    assert np.allclose(grey, luminance[:, None].repeat(3, axis=1))
    half = perturb_images(images, rows, Perturbation("grey", 0.5))
    assert np.allclose(half, (images + grey) / 2)
    with pytest.raises(ValueError, match="needs colour images"):
        perturb_images(images[:, 0], rows, Perturbation("grey", 1.0))
    with pytest.raises(ValueError, match=r"grey removes a share of the colour in \(0, 1\]"):
        Perturbation("grey", 1.5)
    # The other kinds act on each plane; a crop cuts the same window from all three.
    same = np.repeat(images[:, :1], 3, axis=1)
    cropped = perturb_images(same, rows, Perturbation("crop", 0.5, seed=2))
    assert np.allclose(cropped, perturb_images(same[:, 0], rows, Perturbation("crop", 0.5, seed=2))[:, None])


def test_a_colour_cache_trains_and_predicts_through_the_cpu_engine():
    rng = np.random.default_rng(0)
    cache = (rng.random((40, 3, 24, 32)) * 65535).astype(np.uint16)
    targets = np.arange(40) % 2
    cache[targets == 1, 0] //= 2  # the class is in the red plane
    settings = TrainSettings(**{**train_settings(schema_defaults()), "epochs": 1, "init": "scratch", "seed": 0})
    result = fit(cache, np.arange(30), targets[:30], np.arange(30, 40), targets[30:], 2, settings)
    assert result.model.conv1.in_channels == 3
    probabilities, features = predict(result.model, cache, np.arange(40), with_features=True)
    assert probabilities.shape == (40, 2) and features.shape == (40, 512)


# --- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.clear() or c.update(preprocess={"channels": 3}),
         "preprocess.channels: 3 (colour) reads photographs from a table source; data.source 'synthetic'"),
        (lambda c: c["data"]["table"].update(mammograms=True), "with data.table.mammograms: true"),
        (lambda c: c["preprocess"].update(channels=1) or c["train"].update(hue_jitter=0.1),
         "train.hue_jitter: colour jitter needs colour images"),
        (lambda c: c["preprocess"].update(channels=1) or c.update(perturbation={"list": [{"kind": "grey", "strength": 1}]}),
         "perturbation.list[0]: the grey perturbation needs colour images"),
    ],
)
def test_colour_settings_that_cannot_apply_name_their_key(tmp_path, edit, message):
    config = yaml.safe_load((PRESETS / "ham10000.yaml").read_text())
    config["data"]["table"].update(write_colour_only_ham10000(tmp_path, lesions=6))
    checked(config)
    edit(config)
    with pytest.raises(ConfigError) as raised:
        checked(config)
    assert message in str(raised.value)


# --- a subgroup that differs only in colour, through the workflow --------------------------------


def colour_study(root: Path, channels: int) -> dict:
    """The HAM10000 preset on the colour-only dataset, at the size of a test: sex classifiers only."""
    config = yaml.safe_load((PRESETS / "ham10000.yaml").read_text())
    config["data"]["table"].update(write_colour_only_ham10000(root / "data"))
    config.update(
        seed=3,
        cohort={**config["cohort"], "split": {"train": 0.5, "val": 0.2, "test": 0.3}},
        preprocess={"height": 32, "width": 32, "shards": 2, "channels": channels},
        backbone={**config["backbone"], "epochs": 3},
        train={"epochs": 3, "batch_size": 16, "lr": 0.001, "lr_schedule": "constant", "select_epoch": "last"},
        separability={"attributes": ["sex"], "images_per_epoch": 0, "bootstrap": 50},
    )
    if channels == 3:
        config["perturbation"] = {"enabled": True, "attributes": ["sex"], "list": [{"kind": "grey", "strength": 1}]}
    return config


@pytest.mark.workflow
def test_a_subgroup_that_differs_only_in_colour_is_separable_in_colour_and_not_in_grey(tmp_path):
    colour_dir, grey_dir = tmp_path / "colour", tmp_path / "grey"
    write_config(colour_dir, colour_study(tmp_path, 3))
    write_config(grey_dir, colour_study(tmp_path, 1))
    result = snakemake(colour_dir, "results/perturbation/separability.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    result = snakemake(grey_dir, "results/separability/sex.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(colour_dir / "results/perturbation/separability.tsv", sep="\t")
    macro = table[table["subgroup"] == "all (macro)"].set_index("perturbation")["auc"]
    grey = pd.read_csv(grey_dir / "results/separability/sex.tsv", sep="\t").set_index("subgroup")["auc"]
    print(f"sex AUC: colour {macro['none']:.3f}, colour with grey1 {macro['grey1']:.3f}, channels 1 {grey['F']:.3f}")
    assert macro["none"] >= 0.9
    # About 75 test images: chance is 0.5 +- 0.07, so these bounds hold on any draw.
    assert abs(grey["F"] - 0.5) < 0.2 and macro["grey1"] < 0.75
    # The same files, read both ways: a colour cache of three planes, a grey one of one.
    assert np.load(colour_dir / "results/cache/images.npy", mmap_mode="r").shape[1:] == (3, 32, 32)
    assert np.load(grey_dir / "results/cache/images.npy", mmap_mode="r").shape[1:] == (32, 32)
