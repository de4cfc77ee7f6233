"""The synthetic EMBED-format dataset: EMBED's tables, layout, DICOM tags and image content."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pydicom
import pytest

from labelbias.data.cohort import CohortFilters, select_images
from labelbias.data.embed import read_embed_tables
from labelbias.data.imaging import PreprocessSettings, preprocess
from labelbias.data import synthetic
from labelbias.data.synthetic import (
    oracle_summary,
    plan_dataset,
    render_display,
    write_dicom,
    write_images,
)
from workflow_helpers import synthetic_settings

VENDORS = {"HOLOGIC, Inc.": "HOLO", "GE MEDICAL SYSTEMS": "GEMS", "FUJIFILM Corporation": "FUJI"}
SMALL = synthetic_settings(patients=150, seed=11, male_share=0.05, two_density_share=0.1, spot_mag_share=0.2,
                           cview_share=0.3, extra_view_share=0.2, roi_share=0.2, other_vendor_share=0.08)


@pytest.fixture(scope="module")
def planned():
    return plan_dataset(SMALL)


def test_tables_have_embed_columns_and_id_formats(planned):
    metadata, clinical, _ = planned
    for column in ["empi_anon", "acc_anon", "anon_dicom_path", "png_path", "FinalImageType", "ImageLateralityFinal",
                   "ViewPosition", "spot_mag", "Manufacturer", "ManufacturerModelName", "PixelSpacing", "Rows"]:
        assert column in metadata.columns
    for column in ["empi_anon", "acc_anon", "tissueden", "GENDER_DESC", "RACE_DESC", "numfind", "asses", "age_at_study"]:
        assert column in clinical.columns
    assert metadata["empi_anon"].astype(str).str.fullmatch(r"\d{8}").all()
    assert metadata["acc_anon"].astype(str).str.fullmatch(r"\d{16}").all()
    pattern = re.compile(r"\./images/cohort_1/(\d{8})/[\d.]+/[\d.]+/([\d.]+)\.dcm")
    for path, empi in zip(metadata["anon_dicom_path"], metadata["empi_anon"], strict=True):
        match = pattern.fullmatch(path)
        assert match and int(match.group(1)) == empi
    assert metadata["anon_dicom_path"].is_unique


def test_contains_every_row_kind_the_filters_must_remove(planned):
    metadata, clinical, _ = planned
    assert {"2D", "C-view", "ROI_SSC"} <= set(metadata["FinalImageType"])
    assert (clinical["GENDER_DESC"] == "Male").any() and (clinical["tissueden"] == 5).any()
    assert metadata["spot_mag"].notna().any()
    assert "GE HEALTHCARE" in set(metadata["Manufacturer"])
    assert "XCCL" in set(metadata["ViewPosition"])
    densities = clinical.groupby("empi_anon")["tissueden"].nunique()
    assert (densities > 1).any()
    # findings repeat exams, so images repeat after the merge
    assert clinical.duplicated(["empi_anon", "acc_anon"]).any()
    assert (metadata.groupby("empi_anon")["acc_anon"].nunique() > 1).any()  # several exams


def test_generated_tables_pass_through_ingestion(planned, tmp_path):
    metadata, clinical, _ = planned
    metadata.to_csv(tmp_path / "m.csv", index=False)
    clinical.to_csv(tmp_path / "c.csv", index=False)
    tables = read_embed_tables(tmp_path / "m.csv", tmp_path / "c.csv")
    images, log = select_images(tables, CohortFilters(vendors=VENDORS))
    assert set(images["manufacturer"]) == {"HOLO", "GEMS", "FUJI"}
    assert log["images"].iloc[-1] < log["images"].iloc[0]
    assert images.groupby("patient_id")["density"].nunique().max() == 1


def test_dicom_tags_per_vendor(planned, tmp_path):
    _, _, jobs = planned
    chosen = {}
    for job in jobs:
        if job.image_type == "2D" and job.manufacturer not in chosen:
            chosen[job.manufacturer] = job
    write_images(list(chosen.values()), tmp_path)
    seen = {}
    for vendor, job in chosen.items():
        ds = pydicom.dcmread(tmp_path / job.path)
        assert ds.Modality == "MG" and ds.Manufacturer == vendor
        assert ds.PatientID == job.patient_id and ds.ViewPosition == job.view and ds.ImageLaterality == job.laterality
        assert ds.SOPInstanceUID == job.sop_uid and ds.ManufacturerModelName
        seen[vendor] = (ds.PhotometricInterpretation, int(ds.BitsStored), ds.file_meta.TransferSyntaxUID.name,
                        tuple(ds.pixel_array.shape), float(ds.PixelSpacing[0]))
    assert seen["FUJIFILM Corporation"][0] == "MONOCHROME1"
    assert seen["HOLOGIC, Inc."][0] == "MONOCHROME2"
    assert "JPEG 2000" in seen["HOLOGIC, Inc."][2]
    assert "JPEG 2000" not in seen["GE MEDICAL SYSTEMS"][2]
    assert len({s[1] for s in seen.values()}) >= 2  # bit depths differ
    assert len({s[3] for s in seen.values()}) == len(seen)  # matrix sizes differ
    assert len({s[4] for s in seen.values()}) >= 3  # pixel spacings differ


def test_jpeg2000_share_compresses_that_share_of_holo_files_and_changes_nothing_else(planned):
    _, _, jobs = planned
    _, _, partly = plan_dataset(replace(SMALL, jpeg2000_share=0.3))
    _, _, none = plan_dataset(replace(SMALL, jpeg2000_share=0.0))
    holo = [j.manufacturer == "HOLOGIC, Inc." for j in jobs]
    assert all(j.jpeg2000 == h for j, h in zip(jobs, holo, strict=True))  # share 1: every HOLO file
    compressed = np.array([j.jpeg2000 for j in partly])
    assert not compressed[~np.array(holo)].any()
    assert 0.2 < compressed[np.array(holo)].mean() < 0.4
    assert not any(j.jpeg2000 for j in none)
    for a, b in zip(jobs, partly, strict=True):
        assert replace(a, jpeg2000=b.jpeg2000) == b


def test_vendor_class_shift_moves_one_vendors_class_and_changes_nothing_else(planned):
    _, clinical, jobs = planned
    _, _, shifted = plan_dataset(replace(SMALL, vendor_class_shift={"GE MEDICAL SYSTEMS": {"B": 0.05}}))
    densities = clinical.groupby("empi_anon")["tissueden"].agg(set)
    moved = 0
    for a, b in zip(jobs, shifted, strict=True):
        assert replace(a, dense_fraction=b.dense_fraction) == b
        if a.dense_fraction != b.dense_fraction:
            # BI-RADS B (2) in the table, or only the invalid density 5 the filters remove
            assert a.manufacturer == "GE MEDICAL SYSTEMS" and (2 in densities[int(a.patient_id)] or densities[int(a.patient_id)] == {5})
            assert b.dense_fraction - a.dense_fraction == pytest.approx(0.05)
            moved += 1
    assert moved > 10


def test_vendor_density_mix_draws_one_vendors_classes_and_moves_no_other_draw(planned):
    metadata, clinical, jobs = planned
    only_b = {"A": 0.0, "B": 1.0, "C": 0.0, "D": 0.0}
    metadata_mixed, clinical_mixed, mixed = plan_dataset(
        replace(SMALL, vendor_density_mix={"GE MEDICAL SYSTEMS": only_b}))
    pd.testing.assert_frame_equal(metadata_mixed, metadata)
    pd.testing.assert_frame_equal(clinical_mixed.drop(columns="tissueden"), clinical.drop(columns="tissueden"))
    # A patient's vendor is that of their first image (a later exam may switch vendor).
    vendor = {j.patient_id: j.manufacturer for j in reversed(jobs)}
    densities = clinical_mixed.groupby("empi_anon")["tissueden"].agg(set)
    gems = [p for p, v in vendor.items() if v == "GE MEDICAL SYSTEMS"]
    assert len(gems) > 10
    for patient in gems:
        # B (2), a second exam's neighbouring class C (3), or a man's invalid 5
        assert densities[int(patient)] <= {2.0, 3.0, 5.0}
    assert sum(densities[int(p)] == {2.0} for p in gems) > 0.8 * len(gems)
    for a, b in zip(jobs, mixed, strict=True):
        assert replace(a, dense_fraction=b.dense_fraction) == b
        if vendor[a.patient_id] != "GE MEDICAL SYSTEMS":
            assert a.dense_fraction == b.dense_fraction


def test_direct_encoding_writes_the_bytes_pydicom_writes(planned, tmp_path):
    """Every vendor, image type and photometry, native and JPEG 2000, full size too."""
    _, _, jobs = planned
    chosen = {}
    for job in jobs:
        chosen.setdefault((job.manufacturer, job.image_type, job.jpeg2000, job.laterality), job)
    assert len(chosen) > 12 and {k[2] for k in chosen} == {True, False}
    for job in chosen.values():
        direct = write_dicom(job, tmp_path / "direct").read_bytes()
        assert direct == write_dicom(job, tmp_path / "pydicom", via_pydicom=True).read_bytes(), job
    # A full-size matrix: Pixel Data's 4-byte length and a large codestream.
    holo = next(j for j in jobs if j.manufacturer == "HOLOGIC, Inc.")
    for compressed in (False, True):
        big = replace(holo, rows=4096, columns=3328, jpeg2000=compressed, path=f"big{int(compressed)}.dcm")
        display = np.linspace(0, 1, big.rows * big.columns, dtype=np.float32).reshape(big.rows, big.columns)
        direct = write_dicom(big, tmp_path / "direct", display)
        assert direct.read_bytes() == write_dicom(big, tmp_path / "pydicom", display, via_pydicom=True).read_bytes()
        ds = pydicom.dcmread(direct)
        assert ds.pixel_array.shape == (4096, 3328) and ds.pixel_array.min() < 1000 < 3000 < ds.pixel_array.max()


def test_same_seed_gives_identical_files(planned, tmp_path):
    _, _, jobs = planned
    subset = jobs[:12]
    write_images(subset, tmp_path / "a", workers=1)
    write_images(subset, tmp_path / "b", workers=2)
    for job in subset:
        assert (tmp_path / "a" / job.path).read_bytes() == (tmp_path / "b" / job.path).read_bytes()
    again = plan_dataset(SMALL)
    assert again[0].equals(planned[0]) and again[1].equals(planned[1])


def test_rendering_in_blocks_of_rows_gives_the_whole_image_result(planned, monkeypatch):
    """Full-size matrices are rendered in blocks of rows; the blocks must not show in the pixels."""
    _, _, jobs = planned
    chosen = [next(job for job in jobs if job.manufacturer == vendor and job.view == view)
              for vendor in [*VENDORS, "GE HEALTHCARE"] for view in ("CC", "MLO")]
    monkeypatch.setattr(synthetic.render, "RENDER_BLOCK_ROWS", 10_000)
    whole = [render_display(job) for job in chosen]
    monkeypatch.setattr(synthetic.render, "RENDER_BLOCK_ROWS", 7)
    for job, expected in zip(chosen, whole, strict=True):
        assert job.rows > 3 * 7
        np.testing.assert_array_equal(render_display(job), expected)


def test_density_is_ordinal_in_the_preprocessed_images(planned):
    _, _, jobs = planned
    base = next(j for j in jobs if j.manufacturer == "HOLOGIC, Inc." and j.view == "CC" and j.image_type == "2D")
    settings = PreprocessSettings(64, 48)
    brightness = []
    for fraction in (0.12, 0.36, 0.64, 0.86):
        values = []
        for seed in range(6):
            job = replace(base, dense_fraction=fraction, seed=seed)
            cached, _ = preprocess(render_display(job), settings)
            values.append(cached[cached > 0].mean())
        brightness.append(np.mean(values))
    assert brightness == sorted(brightness) and brightness[-1] > 1.3 * brightness[0]


def test_vendor_heel_effect_survives_preprocessing(planned):
    _, _, jobs = planned
    base = next(j for j in jobs if j.view == "CC" and j.image_type == "2D")
    settings = PreprocessSettings(64, 48)
    profiles = {}
    for vendor in ("HOLOGIC, Inc.", "GE MEDICAL SYSTEMS", "FUJIFILM Corporation"):
        rows = []
        for seed in range(8):
            job = replace(base, manufacturer=vendor, seed=seed, laterality="R")
            cached, _ = preprocess(render_display(job), settings)
            rows.append(cached.astype(float).mean(axis=1))  # top-to-bottom brightness profile
        profiles[vendor] = np.mean(rows, axis=0)
    holo, gems = profiles["HOLOGIC, Inc."], profiles["GE MEDICAL SYSTEMS"]
    # GE's heel effect: its top half is brighter relative to its bottom half than Hologic's
    assert gems[10:30].mean() / gems[34:54].mean() > holo[10:30].mean() / holo[34:54].mean() + 0.04


def test_fraction_spread_moves_each_gems_image_by_its_own_draw(planned, monkeypatch):
    """GEMS shows its label's dense fraction loosely: each image's tissue brightness moves with the
    draw of the image's own stream; HOLO's images do not depend on GEMS's spread."""
    _, _, jobs = planned
    base = next(j for j in jobs if j.view == "CC" and j.image_type == "2D")
    gems = synthetic.VENDOR_LOOKS["GE MEDICAL SYSTEMS"]
    assert gems.fraction_spread > 0 and synthetic.VENDOR_LOOKS["HOLOGIC, Inc."].fraction_spread == 0

    def tissue_mean(vendor: str, seed: int, spread: float) -> float:
        monkeypatch.setitem(synthetic.VENDOR_LOOKS, "GE MEDICAL SYSTEMS", replace(gems, fraction_spread=spread))
        image = render_display(replace(base, manufacturer=vendor, seed=seed, dense_fraction=0.5))
        return float(image[image > 0.05].mean())

    draws = [np.random.default_rng([seed, 2]).normal() for seed in range(12)]
    moves = [tissue_mean("GE MEDICAL SYSTEMS", seed, gems.fraction_spread) - tissue_mean("GE MEDICAL SYSTEMS", seed, 0.0)
             for seed in range(12)]
    assert np.corrcoef(draws, moves)[0, 1] > 0.9
    assert tissue_mean("HOLOGIC, Inc.", 3, 0.2) == tissue_mean("HOLOGIC, Inc.", 3, gems.fraction_spread)


def test_oracle_density_score_is_strong_but_not_perfect(planned):
    metadata, clinical, jobs = planned
    summary = oracle_summary(metadata, clinical, jobs).set_index("measure")["value"]
    assert 0.97 < summary["oracle_auc"] <= 1.0
    assert summary["oracle_tpr_at_fpr_0.1"] > 0.85


def test_a_perfect_oracle_reads_tpr_1_at_10_percent_fpr(monkeypatch):
    # Classes far apart and no per-image spread: the ROC curve is one vertical step at FPR 0,
    # whose top (TPR 1), not its foot, is the point closest to 10% FPR.
    gems = synthetic.VENDOR_LOOKS["GE MEDICAL SYSTEMS"]
    monkeypatch.setitem(synthetic.VENDOR_LOOKS, "GE MEDICAL SYSTEMS", replace(gems, fraction_spread=0.0))
    metadata, clinical, jobs = plan_dataset(replace(SMALL, density_spread=0.001))
    summary = oracle_summary(metadata, clinical, jobs).set_index("measure")["value"]
    assert summary["oracle_auc"] == 1.0 and summary["oracle_tpr_at_fpr_0.1"] == 1.0
    means = [summary[f"mean_dense_fraction_{c}"] for c in "ABCD"]
    assert means == sorted(means)


def test_the_oracle_reads_the_fraction_an_image_shows(planned, monkeypatch):
    metadata, clinical, jobs = planned
    gems = synthetic.VENDOR_LOOKS["GE MEDICAL SYSTEMS"]

    def oracle_auc(spread: float) -> float:
        monkeypatch.setitem(synthetic.VENDOR_LOOKS, "GE MEDICAL SYSTEMS", replace(gems, fraction_spread=spread))
        return oracle_summary(metadata, clinical, jobs).set_index("measure")["value"]["oracle_auc"]

    # GEMS's images show their label's fraction moved by a per-image draw: a perfect reader of the
    # image sees the moved fraction, so a wider spread must lower the ceiling.
    assert oracle_auc(0.3) < oracle_auc(gems.fraction_spread) <= oracle_auc(0.0)


def test_demographic_signal_is_tunable(planned):
    _, _, jobs = planned
    none = plan_dataset(replace(SMALL, demographic_signal=0.0))[2]
    strong = plan_dataset(replace(SMALL, demographic_signal=2.0))[2]
    _, clinical, _ = planned
    race = clinical.drop_duplicates("empi_anon").set_index("empi_anon")["RACE_DESC"].astype(str)

    def gap(job_list):
        shift = pd.Series({int(j.patient_id): j.fat_shift for j in job_list})
        black = shift[race[race == "African American  or Black"].index].mean()
        white = shift[race[race == "Caucasian or White"].index].mean()
        return black - white

    assert abs(gap(none)) < 0.015 and gap(strong) > 0.07


def test_the_same_mix_in_another_order_makes_the_same_dataset():
    # yaml.safe_dump sorts keys: a config written by a program must not change the data.
    mix = {"HOLOGIC, Inc.": 0.55, "GE MEDICAL SYSTEMS": 0.25, "FUJIFILM Corporation": 0.20}
    given = synthetic_settings(patients=60, seed=2, vendor_mix=mix)
    sorted_keys = synthetic_settings(patients=60, seed=2, vendor_mix=dict(sorted(mix.items())))
    assert list(sorted_keys.vendor_mix) == list(mix)
    first, second = plan_dataset(given), plan_dataset(sorted_keys)
    assert first[0].equals(second[0]) and first[2] == second[2]
