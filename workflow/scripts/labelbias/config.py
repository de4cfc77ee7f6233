"""Checks a JSON schema cannot express, and the per-job settings derived from the config.

Called while the Snakefile is parsed, so a bad value stops the run before any job
starts, with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data.bias import BiasSpec, scenario_seed
from .errors import ConfigError
from .data.perturb import Perturbation
from .runs import classifier_runs, plan_runs, replicate_seed_key
from .data.synthetic import MAIN_VENDORS, RACE_SHIFT

BUILTIN_ATTRIBUTES = ("manufacturer", "pseudo_subgroup")


def pseudo_group_names(config: dict[str, Any]) -> list[str]:
    return [f"PS{i + 1}" for i in range(int(config["cohort"]["pseudo_groups"]))]


def attribute_names(config: dict[str, Any]) -> list[str]:
    return [*BUILTIN_ATTRIBUTES, *config["cohort"].get("attributes", {})]


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
        if name in BUILTIN_ATTRIBUTES:
            raise ConfigError(
                f"cohort.attributes.{name}: {name!r} is a built-in attribute "
                f"({', '.join(BUILTIN_ATTRIBUTES)}); choose another name"
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


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError naming the first invalid key of an already schema-valid config."""
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
            raise ConfigError(
                f"{key}.attribute: unknown attribute {attribute!r}; known: {', '.join(known_attributes)} "
                "(add others under cohort.attributes)"
            )
        if not str(subgroup).strip():
            raise ConfigError(f"{key}.subgroup: empty subgroup name")
        if attribute == "manufacturer" and subgroup not in vendor_names:
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
            spec_attr = config["cohort"]["attributes"][attribute]
            allowed = set(spec_attr["values"].values()) | {spec_attr.get("other", "Other")}
            if subgroup not in allowed:
                raise ConfigError(
                    f"{key}.subgroup: {subgroup!r} is not a value of attribute {attribute!r} "
                    f"(cohort.attributes.{attribute} gives {', '.join(sorted(allowed))})"
                )

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

    data = config["data"]
    if data["source"] == "synthetic":
        synthetic = data["synthetic"]
        for vendor in synthetic["vendor_mix"]:
            if vendor not in MAIN_VENDORS:
                raise ConfigError(
                    f"data.synthetic.vendor_mix: unknown vendor {vendor!r}; the generator knows "
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
    else:
        embed = data["embed"]
        for key in ("metadata", "clinical"):
            if not embed[key] or not Path(embed[key]).is_file():
                raise ConfigError(f"data.embed.{key}: table {embed[key]!r} does not exist")
        if not embed["image_root"] or not Path(embed["image_root"]).is_dir():
            raise ConfigError(f"data.embed.image_root: folder {embed['image_root']!r} does not exist")


def scenario_bias(config: dict[str, Any], run: str) -> dict[str, Any]:
    """All settings the label job of one run depends on (passed as Snakemake params).

    The flip seed depends on the scenario and the replicate, not on the rate, so the
    patients flipped at a lower rate are among those flipped at a higher one.
    """
    plan = plan_runs(config)[run]
    spec = {**config["bias"], **(config["scenarios"][plan.scenario] or {})}
    return {
        "attribute": spec.get("attribute"),
        "subgroup": spec.get("subgroup"),
        "rate": float(plan.rate if plan.rate is not None else spec["rate"]),
        "densities": list(spec["densities"]),
        "from_label": int(spec["from_label"]),
        "mode": spec["mode"],
        "per_split": bool(spec["per_split"]),
        "seed": scenario_seed(int(config["seed"]), replicate_seed_key(plan.scenario, plan.replicate)),
    }


def bias_spec(params: dict[str, Any]) -> BiasSpec:
    return BiasSpec(
        attribute=params["attribute"],
        subgroup=params["subgroup"],
        rate=params["rate"],
        densities=tuple(params["densities"]),
        from_label=params["from_label"],
        mode=params["mode"],
        seed=params["seed"],
        per_split=bool(params.get("per_split", True)),
    )


# backbone.init -> the init of every fine-tuned model (model.INITS)
MODEL_INIT = {"pretrain": "backbone", "imagenet": "imagenet", "scratch": "scratch"}


def uses_backbone(config: dict[str, Any]) -> bool:
    """True when the workflow pretrains its own backbone on held-out patients."""
    return config["backbone"]["init"] == "pretrain"


def holdout_share(config: dict[str, Any]) -> float:
    """Share of patients kept out of the cohort for the backbone (0 unless init is pretrain)."""
    return float(config["backbone"]["holdout"]) if uses_backbone(config) else 0.0


def train_settings(config: dict[str, Any], target: str = "density", replicate: int = 0) -> dict[str, Any]:
    """Training settings of a density model (``target="density"``) or a subgroup classifier.

    Every scenario of one replicate gets the same seed and the same starting weights:
    the same initialisation and data order, so scenarios differ only by their labels
    (paired comparisons). Replicates differ by their seed.
    """
    settings = {k: v for k, v in config["train"].items() if k != "threads"}
    if target != "density":
        for key in ("epochs", "lr", "fine_tune_from"):
            if key in config["separability"]:
                settings[key] = config["separability"][key]
    settings["init"] = MODEL_INIT[config["backbone"]["init"]]
    settings["seed"] = scenario_seed(int(config["seed"]), replicate_seed_key("train", replicate))
    return settings


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
    attributes, unperturbed and once per seed; the grid's attributes also under every
    perturbation, with the first seed only (the grid asks how AUC falls with the
    perturbation's strength, not how it varies between seeds).
    """
    replicates = int(config["replicates"]["seeds"])
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


def backbone_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Training settings of the backbone pretrained on held-out patients (from scratch)."""
    backbone = config["backbone"]
    settings = {k: v for k, v in config["train"].items() if k != "threads"}
    settings.update({key: backbone[key] for key in ("epochs", "lr", "lr_schedule")})
    settings["init"] = "scratch"
    settings["fine_tune_from"] = "stem"  # from random weights every stage trains
    settings["seed"] = scenario_seed(int(config["seed"]), "backbone")
    return settings
