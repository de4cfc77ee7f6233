"""The study configuration at its real sizes: full-size DICOMs into a 256x192 cache, through the whole DAG.

`config/study.yaml` with what a test cannot have replaced: synthetic EMBED-format data
at the vendors' real detector matrices (HOLO 4096x3328, some JPEG 2000; GEMS 3062x2394;
FUJI 5928x4728 MONOCHROME1) for a handful of patients instead of EMBED, random starting
weights instead of ImageNet's (no download; like the study's, this DAG has no backbone
job), detection by fine-tuned cross-fitting models (linear detection needs pretrained
features), one short epoch per model, and two of the five scenarios: the clean baseline
and FUJI's (MONOCHROME1, the largest matrix). Every rule runs; the other three would
only repeat the same jobs at 256x192 (about 2 minutes).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml

from workflow_helpers import ROOT, run_ok, snakemake

pytestmark = pytest.mark.workflow  # every test here runs Snakemake jobs

OVERRIDES = {
    "data": {
        "source": "synthetic",
        "synthetic": {
            "seed": 4, "patients": 12, "matrix_scale": 1.0, "jpeg2000_share": 0.15,
            # the generator's settings this test was written with (the schema's defaults before config.yaml's)
            "vendor_mix": {"HOLOGIC, Inc.": 0.55, "GE MEDICAL SYSTEMS": 0.25, "FUJIFILM Corporation": 0.20},
            "density_spread": 0.075,
        },
    },
    "cohort": {"split": {"train": 0.5, "val": 0.25, "test": 0.25}, "stratify": ["label"]},
    "preprocess": {"shards": 2},
    "backbone": {"init": "scratch", "holdout": 0.25, "epochs": 5},  # as written (the old schema defaults)
    "detection": {"model": "finetune", "folds": 2, "epochs": 1},
    "train": {"epochs": 1, "batch_size": 8, "threads": 1},
    "separability": {"bootstrap": 20},
    "evaluation": {"bootstrap": 20},
}

SCENARIOS = ("clean", "FUJI")


def merged(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def test_study_configuration_runs_on_full_size_files(tmp_path: Path) -> None:
    study = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
    config = merged(study, OVERRIDES)
    config["scenarios"] = {name: study["scenarios"][name] for name in SCENARIOS}
    assert config["preprocess"]["height"] == 256 and config["preprocess"]["width"] == 192
    workdir = run_ok(tmp_path / "run", config)
    results = workdir / "results"

    images = pd.read_csv(results / "data" / "images.tsv", sep="\t", dtype=str)
    headers = [pydicom.dcmread(results / "synthetic" / path, stop_before_pixels=True) for path in images["image_path"]]
    matrices = {(int(h.Rows), int(h.Columns)) for h in headers}
    assert (4096, 3328) in matrices and min(rows for rows, _ in matrices) >= 2394
    syntaxes = {str(h.file_meta.TransferSyntaxUID) for h in headers}
    assert "1.2.840.10008.1.2.4.90" in syntaxes  # some JPEG 2000 files, decoded at a lower level
    assert {str(h.PhotometricInterpretation) for h in headers} == {"MONOCHROME1", "MONOCHROME2"}

    cache = np.load(results / "cache" / "images.npy", mmap_mode="r")
    assert cache.shape[1:] == (256, 192)
    qc = pd.read_csv(results / "data" / "qc.tsv", sep="\t")
    assert (qc["status"] == "ok").all()
    # Every image has a breast: a non-empty, left-aligned mask in the cache.
    foreground = (np.asarray(cache) > 0).mean(axis=(1, 2))
    assert foreground.min() > 0.2
    assert (np.asarray(cache[:, :, :8]) > 0).mean() > (np.asarray(cache[:, :, -8:]) > 0).mean()

    table2 = pd.read_csv(results / "eval" / "table2.tsv", sep="\t")
    assert set(table2["scenario"]) == set(SCENARIOS)
    for run in SCENARIOS:
        history = pd.read_csv(results / "models" / run / "history.tsv", sep="\t")
        assert len(history) == 1
    findings = pd.read_csv(results / "eval" / "findings.tsv", sep="\t")
    assert list(findings["scenario"].unique()) == ["FUJI"]

    again = snakemake(workdir, "-n")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to be done" in again.stdout + again.stderr
