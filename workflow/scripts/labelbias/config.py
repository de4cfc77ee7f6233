"""Checks a JSON schema cannot express, and the per-job settings derived from the config.

Called while the Snakefile is parsed, so a bad value stops the run before any job
starts, with a message naming the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .data.bias import BiasSpec, scenario_seed
from .errors import ConfigError
from .data.perturb import Perturbation
from .detection.remedy import REMEDIES
from .runs import classifier_runs, plan_runs, replicate_seed_key
from .data.synthetic import MAIN_VENDORS, RACE_SHIFT
from .data.table import EMBED_CLASSES, canonical, template_columns

# The vendor comes with EMBED (and the synthetic data in its format); a table names
# its own attributes. Pseudo-groups are drawn for every source.
BUILTIN_ATTRIBUTES = ("manufacturer", "pseudo_subgroup")
TABLE_BUILTIN_ATTRIBUTES = ("pseudo_subgroup",)
# Keys whose schema defaults name EMBED's vendor: on a table their defaults name its attributes.
ATTRIBUTE_LIST_KEYS = ("separability", "evaluation", "probe", "detection", "perturbation")


def is_table(config: dict[str, Any]) -> bool:
    return config.get("data", {}).get("source") == "table"


def builtin_attributes(config: dict[str, Any]) -> tuple[str, ...]:
    return TABLE_BUILTIN_ATTRIBUTES if is_table(config) else BUILTIN_ATTRIBUTES


def pseudo_group_names(config: dict[str, Any]) -> list[str]:
    return [f"PS{i + 1}" for i in range(int(config["cohort"]["pseudo_groups"]))]


def attribute_names(config: dict[str, Any]) -> list[str]:
    return [*builtin_attributes(config), *config["cohort"].get("attributes", {})]


def apply_source_defaults(config: dict[str, Any]) -> None:
    """Fill, for a table source, the keys whose schema defaults are EMBED's (run before the schema's defaults).

    Only keys the config leaves out are filled: the subgroup attributes (none unless
    configured), the lists of attributes each stage looks at (the table's attributes
    and the pseudo-groups), stratification (label and the first attribute) and the
    backbone's target (the fine class). Scenarios name the table's own subgroups, so a
    table config must list them.
    """
    if not is_table(config):
        return
    if "scenarios" not in config:
        raise ConfigError(
            "scenarios: a table source needs its own scenarios (the default names EMBED's vendors); "
            "see config/presets/ for examples"
        )
    cohort = config.setdefault("cohort", {})
    attributes = list(cohort.setdefault("attributes", {}))
    cohort.setdefault("stratify", ["label", *attributes[:1]])
    for key in ATTRIBUTE_LIST_KEYS:
        section = config.setdefault(key, {})
        if "attributes" not in section:
            section["attributes"] = attributes[:1] if key == "perturbation" else [*attributes, "pseudo_subgroup"]
    name = config.get("data", {}).get("table", {}).get("classes", {}).get("name", "finding")
    config.setdefault("backbone", {}).setdefault("target", name)


def class_params(config: dict[str, Any]) -> dict[str, Any]:
    """The fine classes and their binary labels, as jobs get them (``table.class_spec`` reads it back)."""
    if is_table(config):
        classes = config["data"]["table"]["classes"]
        return {"name": classes["name"], "labels": {canonical(k): int(v) for k, v in classes["labels"].items()}}
    return {"name": EMBED_CLASSES.name, "labels": dict(EMBED_CLASSES.labels)}


def flipped_classes(spec: dict[str, Any]) -> list[str] | None:
    """A bias section's or scenario's classes to flip (``classes``, or EMBED's ``densities``)."""
    found = spec.get("classes", spec.get("densities"))
    return None if found is None else [canonical(value) for value in found]


def _check_table_files(config: dict[str, Any]) -> None:
    table = config["data"]["table"]
    if not table["path"] or not Path(table["path"]).is_file():
        raise ConfigError(f"data.table.path: table {table['path']!r} does not exist")
    for position, join in enumerate(table["join"]):
        if not Path(join["path"]).is_file():
            raise ConfigError(f"data.table.join[{position}].path: table {join['path']!r} does not exist")
    if not table["image_root"] or not Path(table["image_root"]).is_dir():
        raise ConfigError(f"data.table.image_root: folder {table['image_root']!r} does not exist")


def _check_table_mapping(config: dict[str, Any]) -> None:
    """The column mapping of a table source, checked before anything that uses its classes or attributes."""
    table = config["data"]["table"]
    if bool(table["image_column"]) == bool(table["image_template"]):
        raise ConfigError("data.table: give exactly one of image_column and image_template")
    if table["image_template"] and not template_columns(table["image_template"]):
        raise ConfigError(f"data.table.image_template: {table['image_template']!r} names no column")
    if not table["patient_column"]:
        raise ConfigError("data.table.patient_column: required (splits and label bias are per patient)")
    for key in ("patient_pattern", "exam_pattern"):
        if table[key]:
            try:
                re.compile(table[key])
            except re.error as error:
                raise ConfigError(f"data.table.{key}: not a regular expression ({error})") from None
    classes = table["classes"]
    if not classes["column"]:
        raise ConfigError("data.table.classes.column: required (the column with each image's fine class)")
    labels = {canonical(k): v for k, v in classes["labels"].items()}
    if len(labels) != len(classes["labels"]):
        raise ConfigError(f"data.table.classes.labels: two keys are the same class ({', '.join(map(str, classes['labels']))})")
    if set(labels.values()) != {0, 1}:
        raise ConfigError("data.table.classes.labels: map at least one class to 0 and one to 1")
    if classes["name"] in {"label", "split", "image_id", "patient_id", "exam_id", "view", "laterality", "image_path",
                           *attribute_names(config)}:
        raise ConfigError(f"data.table.classes.name: {classes['name']!r} is taken by another cohort column")
    for name, spec in config["cohort"]["attributes"].items():
        key = f"cohort.attributes.{name}"
        if ("values" in spec) == ("bins" in spec):
            raise ConfigError(f"{key}: give either values (categorical) or bins with labels (numeric)")
        if "bins" in spec:
            bins = list(spec["bins"])
            if bins != sorted(bins) or len(set(bins)) != len(bins):
                raise ConfigError(f"{key}.bins: edges must increase ({bins})")
            if len(spec.get("labels", [])) != len(bins) - 1:
                raise ConfigError(f"{key}.labels: {len(bins) - 1} bins need {len(bins) - 1} labels")


def attribute_subgroups(config: dict[str, Any], attribute: str) -> list[str] | None:
    """The subgroup names an attribute can take, in the order the config names them
    (None where they come from the data)."""
    if attribute == "pseudo_subgroup":
        return pseudo_group_names(config)
    if attribute == "manufacturer" and not is_table(config):
        return list(dict.fromkeys(config["cohort"]["vendors"].values()))
    spec = config["cohort"].get("attributes", {}).get(attribute)
    if spec is None:
        return None
    named = spec.get("labels") if "bins" in spec else spec.get("values", {}).values()
    return list(dict.fromkeys([*(named or []), spec.get("other", "Other")]))


def figure_panels(config: dict[str, Any]) -> dict[str, list[str] | None]:
    """Fig. 1's panels: each evaluated attribute's subgroups in config order (HOLO, GEMS, FUJI; PS1-PS3)."""
    return {attribute: attribute_subgroups(config, attribute) for attribute in config["evaluation"]["attributes"]}


# results/detection/ holds one table per scenario beside these; a scenario of the
# same name would overwrite them.
RESERVED_SCENARIO_NAMES = ("features", "folds", "summary")


def check_path_names(config: dict[str, Any]) -> None:
    """Refuse names that would share a folder or file with another once on disk.

    The schema already limits scenario and attribute names to characters that stay
    inside their folder; here, the collisions it cannot see: two names that differ
    only in case (one folder on macOS and Windows file systems) and names the
    workflow's own files use.
    """
    for name in config["scenarios"]:
        if str(name).casefold() in RESERVED_SCENARIO_NAMES:
            raise ConfigError(
                f"scenarios.{name}: the name is taken by results/detection/{str(name).casefold()}.tsv "
                f"(reserved: {', '.join(RESERVED_SCENARIO_NAMES)}); choose another"
            )
    custom = list(config["cohort"].get("attributes", {}))
    for name in custom:
        if name in builtin_attributes(config):
            raise ConfigError(
                f"cohort.attributes.{name}: {name!r} is a built-in attribute "
                f"({', '.join(builtin_attributes(config))}); choose another name"
            )
    for key, names in (("scenarios", list(config["scenarios"])), ("cohort.attributes", custom)):
        seen: dict[str, str] = {}
        for name in names:
            folded = str(name).casefold()
            if folded in seen:
                raise ConfigError(
                    f"{key}: {seen[folded]!r} and {name!r} differ only in case, so their files would be "
                    "the same on case-insensitive file systems (macOS, Windows); rename one"
                )
            seen[folded] = str(name)


def _check_cohort(config: dict[str, Any]) -> None:
    """cohort.split shares, vendor names, output path names and how attributes are read."""
    split = config["cohort"]["split"]
    total = sum(float(v) for v in split.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(
            f"cohort.split: train + val + test must sum to 1, got {total:g} "
            f"({', '.join(f'{k}={v}' for k, v in split.items())})"
        )
    if min(float(split["train"]), float(split["val"]), float(split["test"])) <= 0:
        raise ConfigError("cohort.split: every split (train, val, test) needs a share above 0")

    vendor_names = list(config["cohort"]["vendors"].values())
    if len(set(vendor_names)) != len(vendor_names):
        raise ConfigError(f"cohort.vendors: two manufacturers map to the same name ({vendor_names})")

    check_path_names(config)
    if is_table(config):
        _check_table_mapping(config)
    else:
        for name, spec in config["cohort"]["attributes"].items():
            if "values" not in spec or "bins" in spec:
                raise ConfigError(
                    f"cohort.attributes.{name}: on EMBED an attribute maps column values to subgroups "
                    "(values); numeric bins are read from a table source (data.source: table)"
                )


def _check_scenarios(config: dict[str, Any]) -> None:
    """Each scenario names a known attribute and one of its subgroups, or neither."""
    vendor_names = list(config["cohort"]["vendors"].values())
    known_attributes = attribute_names(config)
    scenarios = config["scenarios"]
    for name, raw in scenarios.items():
        spec = raw or {}
        key = f"scenarios.{name}"
        attribute, subgroup = spec.get("attribute"), spec.get("subgroup")
        if (attribute is None) != (subgroup is None):
            raise ConfigError(f"{key}: give both 'attribute' and 'subgroup', or neither for a clean scenario")
        if attribute is None:
            continue
        if attribute not in known_attributes:
            hint = "(add others under cohort.attributes)"
            if attribute == "manufacturer" and is_table(config):
                # The usual cause: config.yaml's vendor scenarios merged into a table study's own.
                hint = (
                    "(a --configfile is merged into config.yaml, scenarios included: run with "
                    "--replace-workflow-config, or make run CONFIG=..., to use only your file's scenarios)"
                )
            raise ConfigError(
                f"{key}.attribute: unknown attribute {attribute!r}; known: {', '.join(known_attributes)} {hint}"
            )
        if not str(subgroup).strip():
            raise ConfigError(f"{key}.subgroup: empty subgroup name")
        if attribute == "manufacturer" and not is_table(config) and subgroup not in vendor_names:
            raise ConfigError(
                f"{key}.subgroup: unknown vendor {subgroup!r}; cohort.vendors defines {', '.join(vendor_names)}"
            )
        if attribute == "pseudo_subgroup" and subgroup not in pseudo_group_names(config):
            raise ConfigError(
                f"{key}.subgroup: unknown pseudo-group {subgroup!r}; "
                f"cohort.pseudo_groups = {config['cohort']['pseudo_groups']} gives "
                f"{', '.join(pseudo_group_names(config))}"
            )
        if attribute in config["cohort"].get("attributes", {}):
            allowed = attribute_subgroups(config, attribute) or []
            if subgroup not in allowed:
                raise ConfigError(
                    f"{key}.subgroup: {subgroup!r} is not a value of attribute {attribute!r} "
                    f"(cohort.attributes.{attribute} gives {', '.join(sorted(allowed))})"
                )


def _check_classes(config: dict[str, Any]) -> None:
    """The fine classes a bias flips exist in the data."""
    scenarios = config["scenarios"]
    classes = class_params(config)
    default_classes = flipped_classes(config["bias"])
    if default_classes is None and is_table(config):
        raise ConfigError("bias.classes: required on a table source (the fine classes whose labels a scenario flips)")
    for key, spec in [("bias", config["bias"]), *((f"scenarios.{n}", s or {}) for n, s in scenarios.items())]:
        if "classes" in spec and "densities" in spec:
            raise ConfigError(f"{key}: give classes or densities (the same thing), not both")
        for value in flipped_classes(spec) or []:
            if value not in classes["labels"]:
                raise ConfigError(
                    f"{key}.{'classes' if 'classes' in spec else 'densities'}: {value!r} is not a fine class "
                    f"of this data ({', '.join(classes['labels'])})"
                )


def _check_columns(config: dict[str, Any]) -> None:
    """cohort.stratify and backbone.target name cohort columns."""
    classes = class_params(config)
    columns = {"label", classes["name"], *attribute_names(config)} - {"pseudo_subgroup"}
    for column in config["cohort"]["stratify"]:
        if column not in columns:
            raise ConfigError(f"cohort.stratify: unknown column {column!r}; known: {', '.join(sorted(columns))}")
    target = config["backbone"]["target"]
    if any(part not in columns for part in target.split("+")):
        raise ConfigError(
            f"backbone.target: {target!r} is not a cohort column or a '+' of them; known: {', '.join(sorted(columns))}"
        )


def _check_training(config: dict[str, Any]) -> None:
    """Fine-tuning and detection settings that need pretrained weights have them."""
    if config["backbone"]["init"] == "scratch":
        for key in ("train", "separability"):
            stage = config[key].get("fine_tune_from", "stem")
            if stage != "stem":
                raise ConfigError(
                    f"{key}.fine_tune_from: {stage!r} keeps the stages before it at their starting weights, "
                    "but backbone.init is 'scratch' (random weights); use 'stem' or a pretrained init"
                )

    if config["detection"]["enabled"] and config["detection"]["model"] == "linear":
        if config["backbone"]["init"] == "scratch":
            raise ConfigError(
                "detection.model: 'linear' reads frozen backbone features, but backbone.init is 'scratch' "
                "(random features); use backbone.init pretrain or imagenet, or detection.model finetune"
            )


def _check_channels(config: dict[str, Any]) -> None:
    """Colour (preprocess.channels 3) is for pictures, and colour-only settings need it."""
    colour = int(config["preprocess"]["channels"]) == 3
    if colour:
        if not is_table(config):
            raise ConfigError(
                f"preprocess.channels: 3 (colour) reads photographs from a table source; "
                f"data.source {config['data']['source']!r} holds mammograms, which are grey (use 1)"
            )
        if config["data"]["table"]["mammograms"]:
            raise ConfigError(
                "preprocess.channels: 3 (colour) with data.table.mammograms: true; mammograms are "
                "grey (use channels 1), or set mammograms false for photographs"
            )
        return
    for key in ("saturation_jitter", "hue_jitter"):
        if float(config["train"][key]) > 0:
            raise ConfigError(f"train.{key}: colour jitter needs colour images (preprocess.channels: 3)")
    for position, item in enumerate(config["perturbation"]["list"]):
        if item["kind"] == "grey":
            raise ConfigError(
                f"perturbation.list[{position}]: the grey perturbation needs colour images (preprocess.channels: 3)"
            )


def _check_grid(config: dict[str, Any]) -> None:
    """The grid axes (dose response, perturbations, analysed attributes, baseline) name what exists."""
    scenarios = config["scenarios"]
    known_attributes = attribute_names(config)
    biased = [name for name in scenarios if (scenarios[name] or {}).get("attribute")]
    for name in config["dose_response"]["scenarios"]:
        if name not in biased:
            raise ConfigError(
                f"dose_response.scenarios: {name!r} is not a bias scenario (bias scenarios: {', '.join(biased)})"
            )
    for position, item in enumerate(config["perturbation"]["list"]):
        try:
            Perturbation(item["kind"], float(item["strength"]))
        except ValueError as error:
            raise ConfigError(f"perturbation.list[{position}]: {error}") from None
    names = [f"{item['kind']}{float(item['strength']):g}" for item in config["perturbation"]["list"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"perturbation.list: a perturbation is listed twice ({', '.join(names)})")

    for key in ("separability", "probe", "evaluation", "detection", "perturbation"):
        for attribute in config[key]["attributes"]:
            if attribute not in known_attributes:
                raise ConfigError(
                    f"{key}.attributes: unknown attribute {attribute!r}; known: {', '.join(known_attributes)}"
                )

    baseline = config["baseline_scenario"]
    if baseline not in scenarios:
        raise ConfigError(f"baseline_scenario: {baseline!r} is not a key of scenarios ({', '.join(scenarios)})")
    if (scenarios[baseline] or {}).get("attribute"):
        raise ConfigError(f"baseline_scenario: {baseline!r} must be a clean scenario (no attribute)")


def _check_remedies(config: dict[str, Any]) -> None:
    """Remedies name bias scenarios, and the remedies that use detection's output have it."""
    remedies = config["remedies"]
    scenarios = config["scenarios"]
    biased = [name for name in scenarios if (scenarios[name] or {}).get("attribute")]
    for name in remedies["scenarios"]:
        if name not in biased:
            raise ConfigError(f"remedies.scenarios: {name!r} is not a bias scenario (bias scenarios: {', '.join(biased)})")
    if not remedies["enabled"] or config["detection"]["enabled"]:
        return
    uses_detection = [method for method in remedies["methods"] if REMEDIES[method].uses_detection]
    if uses_detection:
        raise ConfigError(
            f"remedies.methods: {', '.join(uses_detection)} rank or flag images by detection, which is off "
            "(set detection.enabled: true, keep only relabel_random, or set remedies.enabled: false)"
        )


def _check_data_source(config: dict[str, Any]) -> None:
    """The data source's own settings: the generator's vendors and shares, or the input files."""
    data = config["data"]
    if data["source"] == "synthetic":
        synthetic = data["synthetic"]
        for key in ("vendor_mix", "vendor_class_shift", "vendor_density_mix"):
            for vendor in synthetic.get(key, {}):
                if vendor not in MAIN_VENDORS:
                    raise ConfigError(
                        f"data.synthetic.{key}: unknown vendor {vendor!r}; the generator knows "
                        f"{', '.join(MAIN_VENDORS)}"
                    )
        if sum(synthetic["vendor_mix"].values()) <= 0:
            raise ConfigError("data.synthetic.vendor_mix: shares must not all be 0")
        for race in synthetic["race_mix"]:
            if race not in RACE_SHIFT:
                raise ConfigError(
                    f"data.synthetic.race_mix: unknown group {race!r}; the generator knows {', '.join(RACE_SHIFT)}"
                )
        centres = synthetic["density_centres"]
        if list(centres) != sorted(centres):
            raise ConfigError("data.synthetic.density_centres: centres of A, B, C, D must increase")
        if sum(synthetic["density_mix"].values()) <= 0:
            raise ConfigError("data.synthetic.density_mix: shares must not all be 0")
        for vendor, mix in synthetic.get("vendor_density_mix", {}).items():
            if sum(mix.values()) <= 0:
                raise ConfigError(f"data.synthetic.vendor_density_mix.{vendor}: shares must not all be 0")
    elif data["source"] == "table":
        _check_table_files(config)
    else:
        embed = data["embed"]
        for key in ("metadata", "clinical"):
            if not embed[key] or not Path(embed[key]).is_file():
                raise ConfigError(f"data.embed.{key}: table {embed[key]!r} does not exist")
        if not embed["image_root"] or not Path(embed["image_root"]).is_dir():
            raise ConfigError(f"data.embed.image_root: folder {embed['image_root']!r} does not exist")


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError naming the first invalid key of an already schema-valid config."""
    _check_cohort(config)
    _check_scenarios(config)
    _check_classes(config)
    _check_columns(config)
    _check_training(config)
    _check_channels(config)
    _check_grid(config)
    _check_remedies(config)
    _check_data_source(config)


def scenario_bias(config: dict[str, Any], run: str) -> dict[str, Any]:
    """All settings the label job of one run depends on (passed as Snakemake params).

    The flip seed depends on the scenario and the replicate, not on the rate, so the
    patients flipped at a lower rate are among those flipped at a higher one.
    """
    plan = plan_runs(config)[run]
    scenario = config["scenarios"][plan.scenario] or {}
    spec = {**config["bias"], **scenario}
    classes = flipped_classes(scenario) or flipped_classes(config["bias"]) or ["C"]
    return {
        "attribute": spec.get("attribute"),
        "subgroup": spec.get("subgroup"),
        "rate": float(plan.rate if plan.rate is not None else spec["rate"]),
        "classes": classes,
        "class_column": class_params(config)["name"],
        "from_label": int(spec["from_label"]),
        "mode": spec["mode"],
        "per_split": bool(spec["per_split"]),
        "seed": scenario_seed(int(config["seed"]), replicate_seed_key(plan.scenario, plan.replicate)),
    }


def remedy_settings(config: dict[str, Any], run: str) -> dict[str, Any]:
    """All settings the remedied labels of one remedy run depend on (passed as Snakemake params).

    The seed of the random audit depends on the run remedied, not on the budget, so a
    larger budget audits a superset of a smaller one's patients.
    """
    plan = plan_runs(config)[run]
    return {
        "remedy": plan.remedy,
        "budget": plan.budget,
        "seed": scenario_seed(int(config["seed"]), f"remedy/{plan.source_run}"),
        "attributes": list(config["detection"]["attributes"]) if REMEDIES[str(plan.remedy)].by_subgroup else [],
    }


# backbone.init -> the init of every fine-tuned model (model.INITS)
MODEL_INIT = {"pretrain": "backbone", "imagenet": "imagenet", "scratch": "scratch"}


def uses_backbone(config: dict[str, Any]) -> bool:
    """True when the workflow pretrains its own backbone on held-out patients."""
    return config["backbone"]["init"] == "pretrain"


def holdout_share(config: dict[str, Any]) -> float:
    """Share of patients kept out of the cohort for the backbone (0 unless init is pretrain)."""
    return float(config["backbone"]["holdout"]) if uses_backbone(config) else 0.0


def settings_params(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword settings as a Snakemake param, keys sorted.

    Snakemake compares params by their text, key order included, and merges a
    ``--configfile``'s keys in front of config.yaml's: unsorted, settings given in
    another file would rerun every job that reads that section, changed or not.
    """
    return dict(sorted(settings.items()))


def train_settings(config: dict[str, Any], target: str = "density", replicate: int = 0) -> dict[str, Any]:
    """Training settings of a density model (``target="density"``) or a subgroup classifier.

    Every scenario of one replicate gets the same seed and the same starting weights:
    the same initialisation and data order, so scenarios differ only by their labels
    (paired comparisons). Replicates differ by their seed.

    ``threads`` is a setting like the others, not only a share of ``--cores``: how
    torch splits a sum over threads changes its rounding, so a job given fewer cores
    than the config asks for would otherwise train another model.
    """
    settings = dict(config["train"])
    settings["max_batches_per_epoch"] = 0  # every epoch a pass over the training split
    if target != "density":
        for key in ("epochs", "lr", "fine_tune_from"):
            if key in config["separability"]:
                settings[key] = config["separability"][key]
        images_per_epoch = int(config["separability"].get("images_per_epoch", 0))
        if images_per_epoch:
            settings["max_batches_per_epoch"] = -(-images_per_epoch // int(settings["batch_size"]))
    settings["init"] = MODEL_INIT[config["backbone"]["init"]]
    settings["seed"] = scenario_seed(int(config["seed"]), replicate_seed_key("train", replicate))
    return settings_params(settings)


def perturbations(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Perturbation name (e.g. ``lowpass6``) -> its settings, when the perturbation grid is on."""
    if not config["perturbation"]["enabled"]:
        return {}
    found = {}
    for item in config["perturbation"]["list"]:
        spec = Perturbation(item["kind"], float(item["strength"]), scenario_seed(int(config["seed"]), "perturbation"))
        found[spec.name] = {"kind": spec.kind, "strength": spec.strength, "seed": spec.seed}
    return found


def separability_runs(config: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    """Subgroup-classifier run -> (attribute, perturbation name or "", replicate).

    Every attribute of separability.attributes, plus the perturbation grid's
    attributes, unperturbed and once per seed (``separability.seeds``, else
    ``replicates.seeds``); the grid's attributes also under every
    perturbation, with the first seed only (the grid asks how AUC falls with the
    perturbation's strength, not how it varies between seeds).
    """
    replicates = int(config["separability"].get("seeds", config["replicates"]["seeds"]))
    plain = list(dict.fromkeys(config["separability"]["attributes"] + perturbation_attributes(config)))
    runs = classifier_runs(plain, [], replicates)
    perturbed = classifier_runs(perturbation_attributes(config), list(perturbations(config)), 1)
    runs.update({name: run for name, run in perturbed.items() if run[1]})
    return runs


def perturbation_attributes(config: dict[str, Any]) -> list[str]:
    return list(config["perturbation"]["attributes"]) if config["perturbation"]["enabled"] else []


def crossfit_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What one cross-fitting job depends on: the linear model's strength, or the fine-tuning recipe."""
    detection = config["detection"]
    if detection["model"] == "linear":
        return {"model": "linear", "c": float(detection["c"])}
    train = train_settings(config)
    if "epochs" in detection:
        train["epochs"] = detection["epochs"]
    train["seed"] = scenario_seed(int(config["seed"]), "crossfit")
    return {"model": "finetune", "train": train}


def backbone_threads(config: dict[str, Any]) -> int:
    """The backbone trains alone (nothing else is ready to run): twice a model's threads."""
    return 2 * int(config["train"]["threads"])


def backbone_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Training settings of the backbone pretrained on held-out patients (from scratch)."""
    backbone = config["backbone"]
    settings = dict(config["train"])
    settings["threads"] = backbone_threads(config)
    settings.update({key: backbone[key] for key in ("epochs", "lr", "lr_schedule")})
    settings["init"] = "scratch"
    settings["fine_tune_from"] = "stem"  # from random weights every stage trains
    settings["max_batches_per_epoch"] = 0
    settings["seed"] = scenario_seed(int(config["seed"]), "backbone")
    return settings_params(settings)
