"""The schema's defaults are the default run's values: a key left out runs as config.yaml runs it."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())

# Keys config.yaml sets to something other than a schema default, and why.
EXCEPTIONS = {
    # Placeholders for the user's copy of EMBED, not defaults: the schema's "" makes a
    # run with data.source embed stop until they are set.
    "data.embed.metadata",
    "data.embed.clinical",
    "data.embed.image_root",
    # bias.classes and bias.densities are one setting under two names, and a config may
    # give only one of them: a schema default for densities would be filled in beside a
    # table's bias.classes and refused. Left out, EMBED's flips are [C] anyway
    # (labelbias.config.scenario_bias), which is what config.yaml writes.
    "bias.densities",
    # Left out, the subgroup classifiers follow the density models: train.epochs and
    # replicates.seeds (labelbias.config.train_settings, separability_runs). config.yaml
    # sets them apart; a default would cut that link for every other config.
    "separability.epochs",
    "separability.seeds",
    # Each remedy run trains a model: other configs (presets, a user's) ask for the stage, and
    # then get every bias scenario and every seed; the default caps its cost with its own
    # scenarios (names no schema default can know) and the first seed.
    "remedies.enabled",
    "remedies.scenarios",
    "remedies.seeds",
}


def schema_keys(node: dict, path: tuple[str, ...] = ()):
    """(dotted key, its schema node) for every key the schema names, sections and leaves."""
    for name, child in node.get("properties", {}).items():
        key = (*path, name)
        yield ".".join(key), child
        yield from schema_keys(child, key)


def config_value(config: dict, key: str):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def set_in_config() -> dict[str, object]:
    """Every key config.yaml sets, with its value (sections included)."""
    found = {}
    for key, _ in schema_keys(SCHEMA):
        try:
            found[key] = config_value(CONFIG, key)
        except KeyError:
            pass
    return found


def test_config_yaml_values_are_the_schema_defaults():
    nodes = dict(schema_keys(SCHEMA))
    differing = []
    for key, value in set_in_config().items():
        node = nodes[key]
        if "properties" in node and node.get("default") == {}:
            continue  # a section whose keys have their own defaults
        if key in EXCEPTIONS:
            continue
        if "default" not in node:
            differing.append(f"{key}: config.yaml sets {value!r}, the schema has no default")
        elif node["default"] != value:
            differing.append(f"{key}: config.yaml {value!r}, schema default {node['default']!r}")
    assert not differing, "\n".join(differing)


def test_every_leaf_config_yaml_sets_is_compared():
    nodes = dict(schema_keys(SCHEMA))
    leaves = [key for key in set_in_config() if "properties" not in nodes[key]]
    assert len(leaves) > 60 and "train.epochs" in leaves and "data.synthetic.vendor_mix" in leaves


def test_each_exception_is_still_one():
    nodes = dict(schema_keys(SCHEMA))
    values = set_in_config()
    for key in EXCEPTIONS:
        assert key in values, f"{key}: config.yaml no longer sets it; drop it from EXCEPTIONS"
        assert nodes[key].get("default", object()) != values[key], f"{key} now equals its default"


def test_split_shares_have_defaults_that_match_their_section():
    split = SCHEMA["properties"]["cohort"]["properties"]["split"]
    assert {name: leaf["default"] for name, leaf in split["properties"].items()} == split["default"]
