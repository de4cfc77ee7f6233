"""``data.source: table``: the shipped presets on tables in each dataset's exact layout, and bad input.

Each preset is loaded as shipped (config/presets/), pointed at a generated dataset of
its layout, checked like any config, and run through the whole workflow.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from labelbias.config import class_params, scenario_bias
from labelbias.data.imaging import PreprocessSettings, load_for_cache, preprocess
from labelbias.data.table import canonical, read_source_table, select_table_images, table_source
from labelbias.errors import ConfigError, DataQualityError, InputTableError
from table_factory import WRITERS, checked, preset_config
from workflow_helpers import ROOT, planned_rules, snakemake, write_config

FAST = {
    "seed": 3,
    "cohort": {"split": {"train": 0.5, "val": 0.2, "test": 0.3}},
    "preprocess": {"height": 32, "width": 32, "shards": 2},
    "train": {"epochs": 2, "batch_size": 16, "lr_schedule": "cosine"},
    "separability": {"bootstrap": 50},
    "evaluation": {"bootstrap": 50},
}


def selected(config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    source = table_source(config["data"]["table"], config["cohort"]["attributes"])
    return select_table_images(read_source_table(source), source)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("presets")
    return {name: preset_config(name, root / name, FAST) for name in WRITERS}


@pytest.mark.parametrize("name", list(WRITERS))
def test_preset_selects_images_in_its_layout(datasets, name):
    config = checked(datasets[name])
    images, log = selected(config)
    classes = class_params(config)
    # Every row has a label from the class map, a patient, and a file that exists.
    assert set(images[classes["name"]]) <= set(classes["labels"])
    assert (images["label"] == images[classes["name"]].map(classes["labels"])).all()
    assert images["image_id"].is_unique and images["patient_id"].notna().all()
    root = Path(config["data"]["table"]["image_root"])
    assert all((root / path).is_file() for path in images["image_path"])
    for attribute, spec in config["cohort"]["attributes"].items():
        named = set(spec.get("labels") or spec["values"].values()) | {spec.get("other", "Other")}
        assert set(images[attribute]) <= named and images[attribute].nunique() >= 2
    # Defaults that name EMBED's vendor are the table's attributes instead.
    assert config["evaluation"]["attributes"] == [*config["cohort"]["attributes"], "pseudo_subgroup"]
    assert config["backbone"]["target"] == classes["name"]
    assert log["rows"].iloc[-1] == len(images)
    flips = scenario_bias(config, [s for s in config["scenarios"] if config["scenarios"][s]][-1])
    assert flips["class_column"] == classes["name"] and set(flips["classes"]) <= set(classes["labels"])


def test_chexpert_drops_uncertain_and_lateral_rows_and_names_patients_from_the_path(datasets):
    config = checked(datasets["chexpert"])
    images, log = selected(config)
    raw = pd.read_csv(config["data"]["table"]["path"], dtype=str, keep_default_na=False)
    frontal = raw[(raw["Frontal/Lateral"] == "Frontal") & raw["Pleural Effusion"].isin(["1.0", "0.0"])]
    assert len(images) == len(frontal)
    assert set(images["patient_id"]) == set(frontal["Path"].str.extract(r"(patient\d+)")[0])
    assert images["exam_id"].str.fullmatch(r"patient\d+/study\d+").all()
    # view1_frontal.jpg repeats in every study: the id keeps the path.
    assert images["image_id"].str.startswith("CheXpert-v1.0-small/train/patient").all()
    dropped = log.loc[log["step"].str.startswith("Pleural Effusion in 0, 1"), "step"].item()
    assert "'-1'" in dropped and "''" in dropped
    # Mapping the uncertain label instead keeps those rows as positives.
    config["data"]["table"]["classes"]["labels"]["-1.0"] = 1
    more, _ = selected(config)
    uncertain = ((raw["Frontal/Lateral"] == "Frontal") & (raw["Pleural Effusion"] == "-1.0")).sum()
    assert (more["effusion"] == "-1").sum() == uncertain > 0 and (more.loc[more["effusion"] == "-1", "label"] == 1).all()


def test_mimic_joins_labels_per_study_and_patients_per_subject(datasets):
    config = checked(datasets["mimic_cxr_jpg"])
    images, log = selected(config)
    assert set(images["view"]) <= {"PA", "AP"}
    # The image whose study has no label row is dropped by the join, and the log says so.
    assert not images["image_path"].str.contains("ffffffff").any()
    steps = list(log["step"])
    assert steps[0].startswith("rows of mimic-cxr-2.0.0-metadata") and "subject_id, study_id" in steps[1]
    assert log["rows"].iloc[1] == log["rows"].iloc[0] - 1
    assert images["image_path"].str.fullmatch(r"files/p\d\d/p\d+/s\d+/[0-9a-f-]+\.jpg").all()
    assert set(images["sex"]) == {"F", "M"}


def test_ham10000_images_are_read_in_colour_and_lesions_are_patients(datasets):
    config = checked(datasets["ham10000"])
    images, _ = selected(config)
    raw = pd.read_csv(config["data"]["table"]["path"], dtype=str, keep_default_na=False)
    assert images["patient_id"].nunique() == raw["lesion_id"].nunique()
    assert set(images["dx"]) == set(raw["dx"]) and images.loc[images["dx"] == "mel", "label"].eq(1).all()
    # Blank ages fall into 'other' (Other), not an error.
    assert "Other" in set(images["age"]) or (raw["age"] != "").all()
    path = Path(config["data"]["table"]["image_root"]) / images["image_path"].iloc[0]
    assert config["preprocess"]["channels"] == 3
    settings = PreprocessSettings(height=48, width=64, mammogram=False, channels=3)
    display, shape = load_for_cache(path, "auto", settings)
    assert display.shape == (3, 48, 40) and shape == (48, 40) and 0 <= display.min() < display.max() <= 1
    cached, flipped = preprocess(display, settings, source=str(path), full_shape=shape)
    assert cached.shape == (3, 48, 64) and not flipped
    # The writer's tint: red above green above blue, kept.
    assert cached[0].mean() > cached[1].mean() > cached[2].mean()
    # Kept whole: resized, not masked: the background next to the lesion is not zeroed.
    assert (cached[:, :, : cached.shape[2] // 2] > 0).mean() > 0.9


def test_separability_split_reads_16_bit_png_and_three_attributes(datasets):
    config = checked(datasets["separability_split"])
    images, _ = selected(config)
    assert {"sex", "age", "race"} <= set(images.columns)
    path = Path(config["data"]["table"]["image_root"]) / images["image_path"].iloc[0]
    display, _ = load_for_cache(path, "auto", PreprocessSettings(height=32, width=32, mammogram=False))
    assert display.dtype == np.float32 and display.max() > 0.5


def test_canonical_classes_match_across_spellings():
    assert canonical("1.0") == canonical(1) == canonical(" 1 ") == "1"
    assert canonical("-1.0") == "-1" and canonical("") == "" and canonical("mel") == "mel"
    assert canonical(0.5) == "0.5"


@pytest.mark.parametrize(
    "edit,error,message",
    [
        (lambda c: c["data"]["table"]["classes"].update(column="Effusion"), InputTableError,
         "no column 'Effusion' (config key data.table.classes.column)"),
        (lambda c: c["cohort"]["attributes"]["sex"].update(column="Gender"), InputTableError,
         "no column 'Gender' (config key cohort.attributes.sex.column)"),
        (lambda c: c["data"]["table"]["classes"].update(labels={"2": 0, "3": 1}), DataQualityError,
         "data.table.classes.labels maps '2', '3' but column 'Pleural Effusion' has none of them"),
        (lambda c: c["cohort"]["attributes"]["sex"].update(values={"Female": "F"}, other="F"), DataQualityError,
         "cohort.attributes.sex: column 'Sex' leaves a single subgroup ('F')"),
        (lambda c: c["data"]["table"].update(patient_pattern="(pat\\d+)"), InputTableError,
         "does not match data.table.patient_pattern '(pat\\\\d+)'"),
    ],
)
def test_bad_mapping_names_the_key_and_the_column(datasets, edit, error, message):
    config = checked(datasets["chexpert"])
    edit(config)
    with pytest.raises(error) as raised:
        selected(config)
    assert message in str(raised.value) and config["data"]["table"]["path"] in str(raised.value)
    if "no column" in message:  # the columns a user can pick from, not the workflow's own line counter
        assert "the table has Path, Sex, Age" in str(raised.value) and "_line" not in str(raised.value)


def test_non_numeric_age_names_file_line_and_key(tmp_path, datasets):
    config = checked(datasets["chexpert"])
    raw = pd.read_csv(config["data"]["table"]["path"], dtype=str, keep_default_na=False)
    kept = raw.index[(raw["Frontal/Lateral"] == "Frontal") & (raw["Pleural Effusion"] == "1.0")][2]
    raw.loc[kept, "Age"] = "forty"
    bad = tmp_path / "train.csv"
    raw.to_csv(bad, index=False)
    config["data"]["table"]["path"] = str(bad)
    line = kept + 2  # the header is line 1
    with pytest.raises(InputTableError, match=rf"column 'Age' \(cohort.attributes.age\) has a non-numeric value 'forty' on line {line}"):
        selected(config)


def test_duplicate_join_key_is_refused(tmp_path, datasets):
    config = checked(datasets["mimic_cxr_jpg"])
    labels_path = config["data"]["table"]["join"][0]["path"]
    labels = pd.read_csv(labels_path, dtype=str, keep_default_na=False)
    doubled = tmp_path / "chexpert.csv"
    pd.concat([labels, labels.head(1)]).to_csv(doubled, index=False)
    config["data"]["table"]["join"][0]["path"] = str(doubled)
    with pytest.raises(InputTableError, match="appears on several lines; a joined table needs one row per key"):
        selected(config)


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda c: c["data"]["table"].update(image_template="x/{Path}"), "data.table: give exactly one of image_column"),
        (lambda c: c["data"]["table"].update(patient_column=""), "data.table.patient_column: required"),
        (lambda c: c["data"]["table"]["classes"].update(labels={"0": 0, "0.0": 1}), "two keys are the same class"),
        (lambda c: c["data"]["table"]["classes"].update(labels={"0": 0}), "map at least one class to 0 and one to 1"),
        (lambda c: c["bias"].update(classes=["2"]), "bias.classes: '2' is not a fine class of this data (0, 1)"),
        (lambda c: c["scenarios"].update(X={"attribute": "sex", "subgroup": "W"}), "scenarios.X.subgroup: 'W' is not a value"),
        (lambda c: c["scenarios"].update(X={"attribute": "manufacturer", "subgroup": "HOLO"}),
         "scenarios.X.attribute: unknown attribute 'manufacturer'"),
        (lambda c: c["cohort"]["attributes"]["age"].update(labels=["young"]), "cohort.attributes.age.labels: 4 bins need 4 labels"),
        (lambda c: c["data"]["table"].update(path="/nonexistent/train.csv"), "data.table.path: table '/nonexistent/train.csv'"),
    ],
)
def test_table_config_errors_name_the_key(datasets, edit, key):
    config = copy.deepcopy(datasets["chexpert"])
    edit(config)
    with pytest.raises(ConfigError) as raised:
        checked(config)
    assert key in str(raised.value)


def test_table_source_needs_its_own_scenarios(datasets):
    config = copy.deepcopy(datasets["chexpert"])
    del config["scenarios"]
    with pytest.raises(ConfigError, match="scenarios: a table source needs its own scenarios"):
        checked(config)


def two_scenarios(config: dict) -> tuple[dict, str]:
    """The preset with the clean baseline and its first real subgroup: every rule, half the jobs."""
    config = copy.deepcopy(config)
    first = next(s for s, spec in config["scenarios"].items() if spec and spec["attribute"] != "pseudo_subgroup")
    config["scenarios"] = {"clean": {}, first: config["scenarios"][first]}
    return config, first


# The layouts differ in how their files are read (JPEG, gzipped tables, colour, 16-bit PNG):
# each runs its data stage for real; one of them runs the whole workflow, the others plan it.
# The full run is the colour one: every later stage then runs on three channels, while the
# synthetic default's runs cover grey.
FULL_RUN = "ham10000"
DATA_STAGE = ["results/data/qc.tsv", "results/data/table1.tsv"]


@pytest.mark.workflow
@pytest.mark.parametrize("name", list(WRITERS))
def test_preset_runs_through_the_workflow(datasets, name, tmp_path):
    config, first = two_scenarios(datasets[name])
    raw = {p: p.read_bytes() for p in Path(config["data"]["table"]["path"]).parent.glob("*.csv*")}
    workdir = tmp_path / name
    write_config(workdir, config)
    targets = [] if name == FULL_RUN else [*DATA_STAGE, *(f"results/labels/{s}.tsv" for s in config["scenarios"])]
    result = snakemake(workdir, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    # As the workflow read it: the written YAML's key order is the class order.
    classes = class_params(checked(yaml.safe_load((workdir / "config.yaml").read_text())))
    cohort = pd.read_csv(workdir / "results/data/cohort.tsv", sep="\t", dtype={classes["name"]: str})
    assert {"image_id", "patient_id", classes["name"], "label", "split", "pseudo_subgroup"} <= set(cohort.columns)
    assert cohort.groupby("patient_id")["split"].nunique().max() == 1
    qc = pd.read_csv(workdir / "results/data/qc.tsv", sep="\t")
    assert (qc["status"] == "ok").all() and (qc["flipped"] == 0).all()  # every file read, none mirrored
    table1 = pd.read_csv(workdir / "results/data/table1.tsv", sep="\t")
    assert list(table1.columns[3:]) == list(classes["labels"])
    for scenario in config["scenarios"]:
        labels = pd.read_csv(workdir / f"results/labels/{scenario}.tsv", sep="\t")
        assert (labels["flipped"] == (labels["label_clean"] != labels["label_biased"])).all()
    flipped = pd.read_csv(workdir / f"results/labels/{first}.tsv", sep="\t").merge(cohort, on="image_id")
    flipped = flipped[flipped["flipped"] == 1]
    target = config["scenarios"][first]
    assert len(flipped) and (flipped[target["attribute"]] == target["subgroup"]).all()
    assert set(flipped[classes["name"]].map(canonical)) <= {canonical(c) for c in config["bias"]["classes"]}
    assert (flipped["label_clean"] == 1).all()
    # raw inputs are never modified
    assert {p: p.read_bytes() for p in raw} == raw
    if name != FULL_RUN:
        # What is left to do is the rest of the DAG the full run does, and the data stage is cached.
        reference, _ = two_scenarios(datasets[FULL_RUN])
        write_config(tmp_path / "reference", reference)
        left = set(planned_rules(workdir))
        assert left == set(planned_rules(tmp_path / "reference")) - {"select_images", "preprocess_shard", "merge_cache", "cohort", "labels"}
        return
    # The full run: Table 2, Fig. 1's shifts, detection, the front page,
    # and a subgroup classifier per attribute with one AUC per subgroup.
    table2 = pd.read_csv(workdir / "results/eval/table2.tsv", sep="\t")
    attributes = [*config["cohort"]["attributes"], "pseudo_subgroup"]
    assert set(table2["attribute"]) == {"all", *attributes}
    assert set(table2["scenario"]) == set(config["scenarios"])
    shift = pd.read_csv(workdir / "results/eval/pc1_shift.tsv", sep="\t")
    assert classes["name"] in shift.columns
    assert (workdir / "results/front_page.rst").is_file() and (workdir / "results/detection/summary.tsv").is_file()
    assert np.load(workdir / "results/cache/images.npy", mmap_mode="r").shape[1:] == (3, 32, 32)
    # The image grids show the colour the models saw.
    with Image.open(workdir / f"results/figures/images/{first}.png") as grid:
        pixels = np.asarray(grid.convert("RGB")).astype(int)
    red, green, blue = np.moveaxis(pixels, -1, 0)
    # The writer's tint (green 0.7 and blue 0.55 of red), not the red frames of flipped images.
    tinted = (red - blue > 20) & (green > 0.5 * red) & (green > blue)
    assert tinted.mean() > 0.05
    for attribute in attributes:
        separability = pd.read_csv(workdir / f"results/separability/{attribute}.tsv", sep="\t")
        assert len(separability) >= 2 and separability["auc"].between(0, 1).all()
    # The report's captions speak of the table's class and subgroups, never EMBED's.
    report = snakemake(workdir, "--report", "results/report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    page = (workdir / "results/report.html").read_text()
    captions = re.findall(r'"caption": "((?:[^"\\]|\\.)*)"', page)
    assert len(captions) >= 20 and "{%" not in page and "{{" not in page
    assert sum(f"{classes['name']} model" in caption for caption in captions) >= 3
    assert not [c for c in captions if re.search(r"densit|vendor|HOLO|FUJI|GEMS", c.replace("study found vendors", ""))]


@pytest.mark.workflow
def test_bad_table_stops_before_any_output(datasets, tmp_path):
    config = copy.deepcopy(datasets["chexpert"])
    config["cohort"]["attributes"]["sex"]["column"] = "Gender"
    workdir = tmp_path / "bad"
    write_config(workdir, config)
    result = snakemake(workdir)
    assert result.returncode != 0
    assert "no column 'Gender' (config key cohort.attributes.sex.column)" in result.stderr
    assert not (workdir / "results/data/images.tsv").exists()


def test_rows_without_a_patient_are_dropped_and_counted(tmp_path, datasets):
    config = checked(datasets["ham10000"])
    raw = pd.read_csv(config["data"]["table"]["path"], dtype=str, keep_default_na=False)
    raw.loc[0, "lesion_id"] = ""
    table = tmp_path / "HAM10000_metadata.csv"
    raw.to_csv(table, index=False)
    config["data"]["table"]["path"] = str(table)
    images, log = selected(config)
    assert raw.loc[0, "image_id"] not in set(images["image_path"].str.extract(r"(ISIC_\d+)")[0])
    present = log.set_index("step")["rows"]
    assert present["image path and patient present"] == present["rows"] - 1 == len(images)


def test_the_readmes_chexpert_example_selects_images(datasets):
    """The README's CheXpert snippet, with its paths pointed at a CheXpert-layout table, is a working config."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("For a CheXpert-layout table"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    preset = datasets["chexpert"]
    for key in ["path", "image_root"]:
        example["data"]["table"][key] = preset["data"]["table"][key]
    config = checked({**copy.deepcopy(FAST), **example})
    images, _ = selected(config)
    assert len(images) > 20 and set(images["sex"]) <= {"F", "M", "Unknown"}
    assert images["patient_id"].str.fullmatch(r"patient\d+").all()
    # Its mapping is the preset's: the README teaches what the preset does.
    for key, value in example["data"]["table"].items():
        if key not in ("path", "image_root"):
            assert preset["data"]["table"][key] == value, key


def test_datasets_page_describes_every_preset():
    page = (ROOT / "docs" / "datasets.md").read_text()
    linked = set(re.findall(r"\(\.\./config/presets/(\w+)\.yaml\)", page))
    assert linked == set(WRITERS) == {p.stem for p in (ROOT / "config" / "presets").glob("*.yaml")}


def test_a_study_file_merged_into_config_yaml_says_how_to_replace_it(datasets, tmp_path):
    # The trap a new user falls in: config.yaml's vendor scenarios come along with --configfile.
    workdir = tmp_path / "study"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    (workdir / "my-study.yaml").write_text(yaml.safe_dump(datasets["chexpert"]))
    merged = snakemake(workdir, "-n", "--configfile", "my-study.yaml")
    assert merged.returncode != 0
    assert "unknown attribute 'manufacturer'" in merged.stderr and "--replace-workflow-config" in merged.stderr
    replaced = snakemake(workdir, "-n", "--configfile", "my-study.yaml", "--replace-workflow-config")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
