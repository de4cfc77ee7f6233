"""Small image tables in the exact layouts of public datasets, with generated images.

No dataset can be downloaded here, so each writer produces a table with the columns,
value conventions and path layout of the real release (CheXpert, MIMIC-CXR-JPG with
its label and patient tables, HAM10000, the subgroup-separability split files) and
one small image per row. The fine class shows in the image (a bright blob whose size
grows with the class), and one attribute shifts the brightness, so a model has
something to learn and a subgroup something to be told apart by.
"""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image
from snakemake.utils import validate

from labelbias.config import apply_source_defaults, check_config

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "config" / "presets"
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def checked(config: dict) -> dict:
    """The config as the workflow sees it: source defaults, schema defaults, semantic checks."""
    config = copy.deepcopy(config)
    apply_source_defaults(config)
    validate(config, SCHEMA, set_default=True)
    check_config(config)
    return config


def picture(rng: np.random.Generator, positive: bool, shift: float, size: tuple[int, int] = (48, 40),
            colour: bool = False) -> Image.Image:
    rows, cols = size
    yy, xx = np.mgrid[0:rows, 0:cols]
    image = 0.25 + shift + rng.normal(0, 0.05, size=size)
    cy, cx = rows * rng.uniform(0.35, 0.65), cols * rng.uniform(0.35, 0.65)
    radius = (0.28 if positive else 0.12) * min(rows, cols) * rng.uniform(0.8, 1.2)
    image += 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
    grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    if not colour:
        return Image.fromarray(grey, mode="L")
    tint = np.stack([grey, (grey * 0.7).astype(np.uint8), (grey * 0.55).astype(np.uint8)], axis=-1)
    return Image.fromarray(tint, mode="RGB")


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=92) if path.suffix == ".jpg" else image.save(path)


def write_chexpert(root: Path, patients: int = 100, seed: int = 1) -> dict[str, str]:
    """CheXpert-v1.0-small/train.csv and its JPEGs; returns the preset's paths."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(1, patients + 1):
        sex = "Female" if p % 2 else "Male"
        age = int(rng.integers(20, 90))
        for study in range(1, 1 + int(rng.integers(1, 3))):
            finding = str(rng.choice(["1.0", "0.0", "-1.0", ""], p=[0.42, 0.42, 0.08, 0.08]))
            for view, kind in ((1, "frontal"), (2, "lateral")):
                path = f"CheXpert-v1.0-small/train/patient{p:05d}/study{study}/view{view}_{kind}.jpg"
                positive = finding in ("1.0", "-1.0")
                _save(picture(rng, positive, 0.08 if sex == "Female" else 0.0), root / path)
                rows.append({"Path": path, "Sex": sex, "Age": age, "Frontal/Lateral": kind.capitalize(),
                             "AP/PA": "PA" if kind == "frontal" else "", "No Finding": "" if positive else "1.0",
                             "Cardiomegaly": "0.0", "Pleural Effusion": finding, "Support Devices": ""})
    table = root / "CheXpert-v1.0-small" / "train.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return {"path": str(table), "image_root": str(root)}


def write_mimic(root: Path, patients: int = 100, seed: int = 2) -> dict[str, object]:
    """MIMIC-CXR-JPG's metadata and CheXpert-label tables (gzipped) and MIMIC-IV's patients."""
    rng = np.random.default_rng(seed)
    metadata, labels, people = [], [], []
    for p in range(patients):
        subject = 10000032 + 7919 * p
        gender = "F" if p % 2 else "M"
        people.append({"subject_id": subject, "gender": gender, "anchor_age": int(rng.integers(20, 90)),
                       "anchor_year": 2150, "anchor_year_group": "2014 - 2016", "dod": ""})
        for s in range(int(rng.integers(1, 3))):
            study = 50000000 + 1000 * p + s
            finding = str(rng.choice(["1.0", "0.0", "-1.0", ""], p=[0.42, 0.42, 0.08, 0.08]))
            labels.append({"subject_id": subject, "study_id": study, "Atelectasis": "", "Cardiomegaly": "0.0",
                           "Pleural Effusion": finding, "No Finding": ""})
            for view in ("PA", "LATERAL"):
                dicom = f"{rng.integers(16**8):08x}-{rng.integers(16**8):08x}-{rng.integers(16**8):08x}"
                path = root / f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom}.jpg"
                _save(picture(rng, finding in ("1.0", "-1.0"), 0.08 if gender == "F" else 0.0), path)
                metadata.append({"dicom_id": dicom, "subject_id": subject, "study_id": study,
                                 "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": view,
                                 "Rows": 48, "Columns": 40, "StudyDate": 21800101, "StudyTime": 120000.0})
    # One study has labels but no images, one image a study without labels: the join drops the latter.
    metadata.append({**metadata[0], "dicom_id": "ffffffff-ffffffff-ffffffff", "study_id": 59999999})
    paths = {}
    for name, rows in (("mimic-cxr-2.0.0-metadata.csv.gz", metadata), ("mimic-cxr-2.0.0-chexpert.csv.gz", labels),
                       ("patients.csv.gz", people)):
        paths[name] = root / name
        with gzip.open(paths[name], "wt") as handle:
            pd.DataFrame(rows).to_csv(handle, index=False)
    return {
        "path": str(paths["mimic-cxr-2.0.0-metadata.csv.gz"]),
        "image_root": str(root),
        "join": [
            {"path": str(paths["mimic-cxr-2.0.0-chexpert.csv.gz"]), "keys": ["subject_id", "study_id"]},
            {"path": str(paths["patients.csv.gz"]), "keys": ["subject_id"]},
        ],
    }


def write_ham10000(root: Path, lesions: int = 100, seed: int = 3) -> dict[str, str]:
    """HAM10000_metadata.csv and colour JPEGs (one to three per lesion)."""
    rng = np.random.default_rng(seed)
    rows = []
    image_number = 24306
    for lesion in range(lesions):
        sex = str(rng.choice(["female", "male", "unknown"], p=[0.48, 0.48, 0.04]))
        age = "" if rng.random() < 0.05 else f"{5 * int(rng.integers(4, 17))}.0"
        dx = str(rng.choice(["nv", "bkl", "mel", "bcc", "akiec", "df"], p=[0.35, 0.15, 0.3, 0.1, 0.05, 0.05]))
        for _ in range(int(rng.integers(1, 4))):
            image_id = f"ISIC_{image_number:07d}"
            image_number += 1
            malignant = dx in ("mel", "bcc", "akiec")
            _save(picture(rng, malignant, 0.08 if sex == "female" else 0.0, colour=True), root / "images" / f"{image_id}.jpg")
            rows.append({"lesion_id": f"HAM_{lesion:07d}", "image_id": image_id, "dx": dx, "dx_type": "histo",
                         "age": age, "sex": sex, "localization": "back"})
    table = root / "HAM10000_metadata.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return {"path": str(table), "image_root": str(root)}


# An RGB offset with no luminance: 0.299 x 30 - 0.587 x 18 + 0.114 x 14 = 0 (ITU-R 601).
COLOUR_ONLY_TINT = np.array([30, -18, 14])


def write_colour_only_ham10000(root: Path, lesions: int = 160, seed: int = 5) -> dict[str, str]:
    """A HAM10000-layout table whose sexes differ only in colour: RGB PNGs, female tinted
    magenta and male green by :data:`COLOUR_ONLY_TINT`, so both have the same grey levels
    (Pillow's ``L``, to within one in 256 on a few pixels)."""
    rng = np.random.default_rng(seed)
    rows = []
    for lesion in range(lesions):
        sex = "female" if lesion % 2 else "male"
        dx = str(rng.choice(["nv", "bkl", "mel", "bcc"], p=[0.4, 0.2, 0.3, 0.1]))
        for number in range(int(rng.integers(1, 3))):
            image_id = f"ISIC_{1000000 + 10 * lesion + number:07d}"
            grey = np.asarray(picture(rng, dx in ("mel", "bcc"), 0.0), dtype=np.int16).clip(30, 225)
            sign = 1 if sex == "female" else -1
            rgb = (grey[..., None] + sign * COLOUR_ONLY_TINT).astype(np.uint8)
            _save(Image.fromarray(rgb, mode="RGB"), root / "images" / f"{image_id}.png")
            rows.append({"lesion_id": f"HAM_{lesion:07d}", "image_id": image_id, "dx": dx, "dx_type": "histo",
                         "age": f"{5 * int(rng.integers(4, 17))}.0", "sex": sex, "localization": "back"})
    table = root / "HAM10000_metadata.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return {"path": str(table), "image_root": str(root), "image_template": "images/{image_id}.png"}


def write_separability_split(root: Path, patients: int = 100, seed: int = 4) -> dict[str, str]:
    """A split file of the subgroup-separability study: Path, binaryLabel, Sex, Age, Race; 16-bit PNGs."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(1, patients + 1):
        sex = "F" if p % 2 else "M"
        race = str(rng.choice(["White", "Black", "Asian"], p=[0.5, 0.3, 0.2]))
        age = int(rng.integers(20, 90))
        for study in range(1, 1 + int(rng.integers(1, 3))):
            label = int(rng.random() < 0.5)
            path = f"train/patient{p:05d}/study{study}/view1_frontal.png"
            grey = np.asarray(picture(rng, bool(label), 0.08 if race == "Black" else 0.0), dtype=np.uint16) * 257
            (root / "images" / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(grey).save(root / "images" / path)
            rows.append({"Path": path, "Sex": sex, "Age": age, "Race": race, "binaryLabel": label})
    table = root / "chexpert.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return {"path": str(table), "image_root": str(root / "images")}


WRITERS = {
    "chexpert": write_chexpert,
    "mimic_cxr_jpg": write_mimic,
    "ham10000": write_ham10000,
    "separability_split": write_separability_split,
}


def preset_config(name: str, root: Path, overrides: dict | None = None) -> dict:
    """The preset as shipped, pointed at a generated dataset of its layout under ``root``."""
    config = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    config["data"]["table"].update(WRITERS[name](root))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
