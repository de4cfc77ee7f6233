"""Config validation: the schema (with defaults) and the checks a schema cannot express."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from labelbias.config import (
    backbone_settings,
    check_config,
    crossfit_settings,
    holdout_share,
    scenario_bias,
    separability_runs,
    train_settings,
)
from labelbias.runs import plan_runs
from labelbias.errors import ConfigError
from labelbias.schema import check_schema, config_error_text, load_schema, schema_problems

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def load_default() -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, SCHEMA, set_default=True)
    return config


def test_default_config_is_valid_and_defaults_are_filled():
    config = load_default()
    check_config(config)
    assert config["preprocess"]["mask_threshold"] == 0.05  # from the schema
    assert config["data"]["synthetic"]["jpeg2000"] is True


def test_minimal_config_gets_every_default():
    config: dict = {}
    validate(config, SCHEMA, set_default=True)
    check_config(config)
    assert list(config["scenarios"]) == ["clean", "PS1", "FUJI", "GEMS", "HOLO"]
    assert config["cohort"]["split"] == {"train": 0.32, "val": 0.18, "test": 0.5}  # config.yaml's


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c["bias"].update(rate=1.5), "1.5"),
        (lambda c: c["preprocess"].update(shard=3), "shard"),
        (lambda c: c["scenarios"].update(bad={"attribute": "manufacturer", "subgroup": "X", "rate": -0.1}), "-0.1"),
        (lambda c: c["bias"].update(densities=[["E"]]), "'E'"),
        (lambda c: c["cluster"].update(gpus=-1), "gpus"),
        (lambda c: c["cluster"].update(gpu_model="a100 --wrap=x"), "gpu_model"),
        (lambda c: c["cluster"].update(queue="gpu"), "queue"),
        (lambda c: c["train"].update(lr_schedule="linear"), "linear"),
        (lambda c: c["train"].update(pretrained=True), "pretrained"),
        (lambda c: c["backbone"].update(init="resnet50"), "resnet50"),
        (lambda c: c["backbone"].update(holdout=1.0), "1.0"),
        (lambda c: c["detection"].update(folds=1), "folds"),
        (lambda c: c["detection"].update(filter_by="vote"), "vote"),
        (lambda c: c["image_review"].update(per_cell=0), "per_cell"),
        (lambda c: c["train"].update(fine_tune_from="layer5"), "layer5"),
        (lambda c: c["separability"].update(seeds=0), "seeds"),
        (lambda c: c["data"]["synthetic"].update(vendor_density_mix={"GE MEDICAL SYSTEMS": {"A": 0.5, "B": 0.5}}), "'C' is a required property"),
    ],
)
def test_schema_errors_name_the_value_or_key(edit, message):
    config = load_default()
    edit(config)
    with pytest.raises(WorkflowError, match=message):
        validate(config, SCHEMA, set_default=True)


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda c: c["cohort"].update(split={"train": 0.6, "val": 0.3, "test": 0.2}), "cohort.split: .* sum to 1"),
        (lambda c: c["scenarios"].update(X={"attribute": "manufacturer", "subgroup": "SIEMENS"}), "scenarios.X.subgroup: unknown vendor 'SIEMENS'"),
        (lambda c: c["scenarios"].update(X={"attribute": "pseudo_subgroup", "subgroup": "PS4"}), "scenarios.X.subgroup: unknown pseudo-group 'PS4'"),
        (lambda c: c["scenarios"].update(X={"attribute": "scanner", "subgroup": "A"}), "scenarios.X.attribute: unknown attribute 'scanner'"),
        (lambda c: c["scenarios"].update(X={"attribute": "manufacturer", "subgroup": " "}), "scenarios.X.subgroup: empty subgroup"),
        (lambda c: c["scenarios"].update(X={"attribute": "race"}), "scenarios.X: give both"),
        (lambda c: c["scenarios"].update(X={"attribute": "race", "subgroup": "Martian"}), "scenarios.X.subgroup: 'Martian' is not a value of attribute 'race'"),
        (lambda c: c.update(baseline_scenario="none"), "baseline_scenario: 'none'"),
        (lambda c: c.update(baseline_scenario="HOLO"), "baseline_scenario: 'HOLO' must be a clean scenario"),
        (lambda c: c["data"]["synthetic"]["vendor_mix"].update({"SIEMENS": 0.1}), "data.synthetic.vendor_mix: unknown vendor 'SIEMENS'"),
        (lambda c: c["data"]["synthetic"].update(vendor_class_shift={"GEMS": {"B": 0.05}}),
         "data.synthetic.vendor_class_shift: unknown vendor 'GEMS'"),
        (lambda c: c["data"]["synthetic"].update(vendor_density_mix={"GEMS": {"A": 0.1, "B": 0.4, "C": 0.4, "D": 0.1}}),
         "data.synthetic.vendor_density_mix: unknown vendor 'GEMS'"),
        (lambda c: c["data"]["synthetic"].update(vendor_density_mix={"GE MEDICAL SYSTEMS": {"A": 0, "B": 0, "C": 0, "D": 0}}),
         "data.synthetic.vendor_density_mix.GE MEDICAL SYSTEMS: shares must not all be 0"),
        (lambda c: c["cohort"]["vendors"].update({"GE HEALTHCARE": "GEMS"}), "cohort.vendors: two manufacturers map to the same name"),
        (lambda c: c["data"].update(source="embed"), "data.embed.metadata: table '/path/to/EMBED"),
        (lambda c: c["backbone"].update(init="scratch"), "detection.model: 'linear' reads frozen backbone features"),
        (lambda c: c["detection"].update(attributes=["scanner"]), "detection.attributes: unknown attribute 'scanner'"),
        (lambda c: c["bias"].update(densities=["E"]), "bias.densities: 'E' is not a fine class of this data \\(A, B, C, D\\)"),
        (lambda c: c["scenarios"].update(X={"attribute": "race", "subgroup": "Asian", "classes": ["C"], "densities": ["C"]}),
         "scenarios.X: give classes or densities"),
        (lambda c: c["cohort"].update(stratify=["manufacturer", "scanner"]), "cohort.stratify: unknown column 'scanner'"),
        (lambda c: c["cohort"]["attributes"].update(age={"column": "age_at_study", "bins": [0, 50, 120], "labels": ["a", "b"]}),
         "cohort.attributes.age: on EMBED an attribute maps column values"),
        (lambda c: c["backbone"].update(target="density+scanner"), "backbone.target: 'density\\+scanner'"),
        (lambda c: (c["backbone"].update(init="scratch"), c["detection"].update(model="finetune"),
                    c["train"].update(fine_tune_from="layer4")), "train.fine_tune_from: 'layer4' keeps the stages"),
    ],
)
def test_semantic_errors_name_the_key(edit, key):
    config = load_default()
    edit(config)
    with pytest.raises(ConfigError, match=key):
        check_config(config)


def test_scenario_settings_merge_defaults_and_overrides():
    config = load_default()
    config["scenarios"]["HOLO_half"] = {"attribute": "manufacturer", "subgroup": "HOLO", "rate": 0.5}
    holo = scenario_bias(config, "HOLO")
    half = scenario_bias(config, "HOLO_half")
    assert holo["rate"] == 0.3 and half["rate"] == 0.5 and half["classes"] == ["C"]
    assert holo["seed"] != half["seed"]
    # adding a scenario leaves the others' settings, and so their jobs, untouched
    before = copy.deepcopy(scenario_bias(config, "FUJI"))
    config["scenarios"]["new"] = {"attribute": "race", "subgroup": "Asian"}
    assert scenario_bias(config, "FUJI") == before


def test_subgroup_classifiers_train_on_a_share_of_an_epoch_and_density_models_on_all_of_it():
    config = load_default()
    batch = config["train"]["batch_size"]
    assert train_settings(config).get("max_batches_per_epoch", 0) == 0
    assert train_settings(config, "separability")["max_batches_per_epoch"] == -(-config["separability"]["images_per_epoch"] // batch)
    config["separability"]["images_per_epoch"] = batch * 10 + 1  # rounded up to whole batches
    assert train_settings(config, "separability")["max_batches_per_epoch"] == 11
    config["separability"]["images_per_epoch"] = 0
    assert train_settings(config, "separability")["max_batches_per_epoch"] == 0


def test_models_start_from_the_backbone_and_held_out_share_follows_init():
    config = load_default()
    assert train_settings(config)["init"] == "backbone" and train_settings(config, "separability")["init"] == "backbone"
    assert backbone_settings(config)["init"] == "scratch"
    config["train"]["fine_tune_from"] = "layer4"
    assert backbone_settings(config)["fine_tune_from"] == "stem"  # from random weights everything trains
    assert train_settings(config, "separability")["fine_tune_from"] == "layer4"
    config["separability"]["fine_tune_from"] = "stem"
    assert train_settings(config, "separability")["fine_tune_from"] == "stem"
    config["train"]["fine_tune_from"] = "stem"
    assert holdout_share(config) == config["backbone"]["holdout"] > 0
    config["backbone"]["init"] = "imagenet"
    assert train_settings(config)["init"] == "imagenet" and holdout_share(config) == 0.0
    config["backbone"]["init"] = "scratch"
    config["detection"]["model"] = "finetune"
    check_config(config)  # fine-tuned cross-fitting needs no frozen features
    assert crossfit_settings(config)["train"]["init"] == "scratch"


def test_runs_grid_adds_seeds_and_rates_without_renaming_existing_runs():
    config = load_default()
    assert config["replicates"]["seeds"] == 2  # the default trains every scenario twice
    config["replicates"]["seeds"] = 1  # from one seed, the axes switched on below
    config["remedies"]["enabled"] = False  # remedy runs: tests/test_remedy.py
    assert list(plan_runs(config)) == ["clean", "PS1", "FUJI", "GEMS", "HOLO"]
    before = {name: (scenario_bias(config, name), train_settings(config, "density", run.replicate))
              for name, run in plan_runs(config).items()}
    config["replicates"]["seeds"] = 2
    config["dose_response"].update(enabled=True, rates=[0.1, 0.3, 0.5], scenarios=["FUJI"])
    runs = plan_runs(config)
    assert set(before) <= set(runs)
    # the scenarios' own runs keep their settings: switching the axes on reruns nothing
    for name, (bias, train) in before.items():
        assert scenario_bias(config, name) == bias and train_settings(config, "density", runs[name].replicate) == train
    assert {"clean@seed1", "FUJI@rate0.1", "FUJI@rate0.5", "FUJI@rate0.1@seed1", "HOLO@seed1"} <= set(runs)
    assert "FUJI@rate0.3" not in runs and "HOLO@rate0.1" not in runs  # 0.3 is FUJI's own rate; HOLO is not dosed
    assert len(runs) == 2 * (5 + 2)
    low, own = scenario_bias(config, "FUJI@rate0.1"), scenario_bias(config, "FUJI")
    assert low["rate"] == 0.1 and low["seed"] == own["seed"]  # nested flips: same draw, lower rate
    assert scenario_bias(config, "FUJI@seed1")["seed"] != own["seed"]
    assert train_settings(config, "density", 1)["seed"] != train_settings(config, "density", 0)["seed"]


def test_separability_runs_cover_perturbations_and_seeds():
    config = load_default()
    assert config["separability"]["seeds"] == 1 and config["replicates"]["seeds"] == 2
    assert set(separability_runs(config)) == {"manufacturer", "pseudo_subgroup"}
    del config["separability"]["seeds"]  # left out: as many seeds as the density models
    config["replicates"]["seeds"] = 1
    assert separability_runs(config) == {"manufacturer": ("manufacturer", "", 0), "pseudo_subgroup": ("pseudo_subgroup", "", 0)}
    config["perturbation"].update(enabled=True, attributes=["race"], list=[{"kind": "lowpass", "strength": 4}])
    config["replicates"]["seeds"] = 2
    runs = separability_runs(config)
    assert runs["race@lowpass4"] == ("race", "lowpass4", 0) and runs["race@seed1"] == ("race", "", 1)
    assert "race@lowpass4@seed1" not in runs  # perturbations use the first seed only
    assert len(runs) == 2 * (2 + 1) + 1
    # separability.seeds overrides the density models' count, for the classifiers alone
    config["separability"]["seeds"] = 3
    runs = separability_runs(config)
    assert runs["race@seed2"] == ("race", "", 2) and "race@lowpass4@seed1" not in runs
    assert len(runs) == 3 * (2 + 1) + 1 and len(plan_runs(config)) == len(plan_runs({**config, "separability": {}}))


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda c: c["dose_response"].update(scenarios=["clean"]), "dose_response.scenarios: 'clean' is not a bias scenario"),
        (lambda c: c["perturbation"].update(list=[{"kind": "crop", "strength": 1.5}]), r"perturbation.list\[0\]: crop keeps a share"),
        (lambda c: c["perturbation"].update(list=[{"kind": "noise", "strength": 0.1}, {"kind": "noise", "strength": 0.10}]), "listed twice"),
        (lambda c: c["perturbation"].update(attributes=["scanner"]), "perturbation.attributes: unknown attribute 'scanner'"),
    ],
)
def test_grid_errors_name_the_key(edit, key):
    config = load_default()
    edit(config)
    with pytest.raises(ConfigError, match=key):
        check_config(config)


def test_extended_config_turns_every_axis_on_over_the_default():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    extended = yaml.safe_load((ROOT / "config" / "extended.yaml").read_text())
    for key, value in extended.items():  # what --configfile does: top-level sections update the default's
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    validate(config, SCHEMA, set_default=True)
    check_config(config)
    assert config["detection"]["enabled"] and config["image_review"]["enabled"]
    assert config["replicates"]["seeds"] > 1 and config["dose_response"]["enabled"] and config["perturbation"]["enabled"]
    runs = plan_runs(config)
    assert "HOLO@rate0.5@seed2" in runs and "GEMS@rate0.1" not in runs
    assert "race@lowpass3" in separability_runs(config)
    assert "manufacturer@seed2" in separability_runs(config)  # seeds are an axis for the classifiers too


def test_study_config_is_valid_and_starts_from_imagenet():
    config = yaml.safe_load((ROOT / "config" / "study.yaml").read_text())
    validate(config, SCHEMA, set_default=True)
    assert config["backbone"]["init"] == "imagenet" and holdout_share(config) == 0.0
    assert train_settings(config)["init"] == "imagenet" and config["train"]["lr"] == 1e-5


# --- one readable line per schema problem, and names that stay in their folders ---

SCHEMA_DOC = load_schema(SCHEMA)


@pytest.mark.parametrize(
    "edit,line",
    [
        (lambda c: c.update(sede=3), "unknown key 'sede' at the top level (did you mean 'seed'?)"),
        (lambda c: c["train"].update(epoch=3), "unknown key 'epoch' in train (did you mean 'epochs'?)"),
        (lambda c: c["cluster"].update(queue="gpu"), "unknown key 'queue' in cluster (known keys: account, "),
        (lambda c: c["train"].update(epochs=0), "train.epochs = 0 must be at least 1"),
        (lambda c: c["train"].update(epochs="ten"), "train.epochs = 'ten' must be an integer"),
        (lambda c: c["bias"].update(rate=1.5), "bias.rate = 1.5 must be at most 1"),
        (lambda c: c["preprocess"].update(mask_threshold=0), "preprocess.mask_threshold = 0 must be above 0"),
        (lambda c: c.update(scenarios={}), "scenarios is empty: give at least 1 entry"),
        (lambda c: c["train"].update(lr_schedule="linear"), "train.lr_schedule = 'linear' must be one of: constant, cosine"),
        (lambda c: c["bias"].update(densities=[["E"]]), "bias.densities[0] = ['E'] must be a string or a number"),
        (lambda c: c["bias"].update(densities=[]), "bias.densities has 0 item(s): give at least 1"),
        (lambda c: c["cohort"].update(split={"train": 0.5, "val": 0.5}), "cohort.split: missing key 'test'"),
        (lambda c: c.update(train=3), "train = 3 must be a mapping (key: value)"),
        (lambda c: c["scenarios"].update(X=5), "scenarios.X = 5 must be a mapping (key: value) or empty"),
        (lambda c: c["data"]["synthetic"]["vendor_mix"].update({"HOLOGIC, Inc.": -1}),
         "data.synthetic.vendor_mix['HOLOGIC, Inc.'] = -1 must be at least 0"),
        (lambda c: c["cluster"].update(gpu_model="a100 --wrap=x"),
         "cluster.gpu_model = 'a100 --wrap=x' must match the pattern ^[A-Za-z0-9_.]*$"),
    ],
)
def test_each_schema_problem_is_one_line_naming_its_key(edit, line):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    edit(config)
    problems = schema_problems(config, SCHEMA_DOC)
    assert len(problems) == 1 and problems[0].startswith(line), problems
    assert "\n" not in problems[0] and len(problems[0]) < 200
    with pytest.raises(ConfigError) as error:
        check_schema(config, SCHEMA)
    assert config_error_text(error.value) == f"config: {problems[0]}"


def test_every_schema_problem_is_reported_at_once_in_key_order():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.update(sede=1)
    config["train"].update(epochs=0, batch_sise=8)
    config["bias"]["mode"] = "exam"
    problems = schema_problems(config, SCHEMA_DOC)
    assert problems == [
        "unknown key 'sede' at the top level (did you mean 'seed'?)",
        "bias.mode = 'exam' must be one of: patient, image",
        "unknown key 'batch_sise' in train (did you mean 'batch_size'?)",
        "train.epochs = 0 must be at least 1",
    ]
    assert schema_problems(yaml.safe_load((ROOT / "config.yaml").read_text()), SCHEMA_DOC) == []


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "x.summary", "-n", "FUJI@rate0.5", "with space", ""])
def test_scenario_names_that_could_leave_their_folder_are_refused(name):
    config = load_default()
    config["scenarios"][name] = {"attribute": "manufacturer", "subgroup": "FUJI"}
    problems = schema_problems(config, SCHEMA_DOC)
    assert problems == [
        f"scenarios: name {name!r} is not allowed: names become folder and file names (results/models/NAME/, "
        "results/labels/NAME.tsv): use letters, digits, '_' and '-', starting with a letter or digit"
    ]


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda c: c["scenarios"].update(summary={}), "scenarios.summary: the name is taken by results/detection/summary.tsv"),
        (lambda c: c["scenarios"].update(Features={}), "scenarios.Features: the name is taken by results/detection/features.tsv"),
        (lambda c: c["scenarios"].update(fuji={"attribute": "manufacturer", "subgroup": "FUJI"}),
         "scenarios: 'FUJI' and 'fuji' differ only in case"),
        (lambda c: c["cohort"]["attributes"].update(manufacturer={"column": "x", "values": {"a": "A"}}),
         "cohort.attributes.manufacturer: 'manufacturer' is a built-in attribute"),
    ],
)
def test_names_that_would_collide_on_disk_are_refused(edit, key):
    config = load_default()
    edit(config)
    assert schema_problems(config, SCHEMA_DOC) == []
    with pytest.raises(ConfigError, match=re.escape(key)):
        check_config(config)


def test_attribute_names_follow_their_pattern():
    config = load_default()
    config["cohort"]["attributes"]["Age.bin"] = {"column": "age", "values": {"1": "young"}}
    assert schema_problems(config, SCHEMA_DOC) == [
        "cohort.attributes: name 'Age.bin' is not allowed: attribute names become file names and table "
        "columns: use lower-case letters, digits and '_', starting with a letter"
    ]


def test_every_generated_run_and_classifier_name_is_one_safe_path_component():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    extended = yaml.safe_load((ROOT / "config" / "extended.yaml").read_text())
    for key, value in extended.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    config["scenarios"]["FUJI-low_2"] = {"attribute": "manufacturer", "subgroup": "FUJI", "rate": 0.05}
    config["dose_response"]["rates"] = [1e-05, 0.125, 0.5]
    config["dose_response"]["scenarios"] = ["FUJI", "FUJI-low_2"]
    validate(config, SCHEMA, set_default=True)
    check_config(config)
    names = [*plan_runs(config), *separability_runs(config)]
    assert "FUJI-low_2@rate1e-05@seed1" in names
    for name in names:
        assert "/" not in name and not name.startswith((".", "-")) and name not in {".", ".."}, name
    assert len({name.casefold() for name in names}) == len(names)
