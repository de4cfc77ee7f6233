"""docs/configuration.md is what the schema gives, and the schema describes every key."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

from labelbias.config import check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
_spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "scripts" / "config_reference.py")
reference = importlib.util.module_from_spec(_spec)
sys.modules["config_reference"] = reference  # its dataclasses look their module up there
_spec.loader.exec_module(reference)


def test_page_on_disk_is_what_the_schema_gives():
    problem = reference.check()
    assert problem is None, problem


def test_check_names_the_fix_when_the_page_differs(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(reference.render().replace("`train.epochs` | integer | `2`", "`train.epochs` | integer | `4`"))
    problem = reference.check(stale)
    assert problem and "config_reference.py" in problem and "`4`" in problem
    assert "is missing" in reference.check(tmp_path / "none.md")


def test_output_is_deterministic_and_follows_the_schema():
    assert reference.render() == reference.render()
    schema = reference.load_schema()
    edited = copy.deepcopy(schema)
    edited["properties"]["train"]["properties"]["epochs"]["description"] = "Changed."
    assert "| Changed. |" in reference.render(edited) and "| Changed. |" not in reference.render(schema)


def schema_keys(node: dict, path: str = ""):
    """Every key the schema names through properties, list items and map entries."""
    for name, child in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        yield key
        yield from schema_keys(child, key)
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict):
        yield from schema_keys(items, path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in extra:
        entry = f"{path}.<name>"
        yield entry
        yield from schema_keys(extra, entry)


def test_every_key_has_a_row_or_section_with_a_description():
    schema = reference.load_schema()
    rows = {row.key: row.description for row in reference.leaf_rows(schema)}
    headings = {section.key: section.description for section in reference.sections(schema)}
    missing = [key for key in schema_keys(schema) if key not in rows and key not in headings]
    assert not missing, missing
    assert {"scenarios.<name>.attribute", "perturbation.list.kind", "data.table.join.keys",
            "cohort.attributes.<name>.bins", "cohort.split.test"} <= set(rows)
    assert {"data", "data.synthetic", "train"} <= set(headings)
    undescribed = [key for key, text in {**headings, **rows}.items() if not text.strip()]
    assert not undescribed, f"keys without a description in {SCHEMA_PATH.name}: {undescribed}"


def test_the_example_errors_are_what_a_run_prints():
    page = reference.render()
    assert ("config: unknown key 'sede' at the top level (did you mean 'seed'?)\n"
            "config: train.epochs = 0 must be at least 1\n") in page


def test_the_scenario_example_is_a_valid_config():
    page = reference.render()
    section = page[page.index("## Scenario names and syntax"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["scenarios"] = example["scenarios"]
    # config.yaml's remedies name its own scenarios; a config with others names its own (or none: all).
    config["remedies"]["scenarios"] = []
    validate(config, str(SCHEMA_PATH), set_default=True)
    check_config(config)
    assert len(config["scenarios"]) == 4
