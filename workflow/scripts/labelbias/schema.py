"""The config's JSON schema, with one short line per problem instead of jsonschema's dump.

jsonschema reports a refused value with the whole (sub)schema and instance, and
names the key only as ``schema['properties']['train']...``. A person editing
config.yaml needs the key path, the value and what it must be, e.g.
``train.epochs = 0 must be at least 1``. Only the Snakefile imports this module
(jobs never validate the config), so jsonschema is needed only where Snakemake is.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "empty",
}

_BOUND_WORDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "above", "exclusiveMaximum": "below"}


def key_path(path: Iterable[Any]) -> str:
    """``train.epochs``, ``perturbation.list[0]``, ``data.synthetic.vendor_mix['HOLOGIC, Inc.']``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{str(part)!r}]"
    return text


def _value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: str) -> str:
    return f"in {path}" if path else "at the top level"


def _describe(error: jsonschema.ValidationError) -> list[str]:
    """One line per problem this error stands for (an unknown-key error may name several keys)."""
    path = key_path(error.absolute_path)
    kind, limit, value = error.validator, error.validator_value, error.instance
    subject = f"{path} = {_value(value)}" if path else f"the config ({_value(value)})"
    if kind == "additionalProperties" and limit is False and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        lines = []
        for key in sorted(set(value) - set(known), key=str):
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"
            lines.append(f"unknown key {str(key)!r} {_where(path)}{hint}")
        return lines
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        why = error.schema.get("description", f"names must match {error.schema.get('pattern', limit)}")
        return [f"{path or 'the top level'}: name {_value(value)} is not allowed: {why}"]
    if kind in _BOUND_WORDS:
        return [f"{subject} must be {_BOUND_WORDS[kind]} {limit}"]
    if kind == "type":
        wanted = [limit] if isinstance(limit, str) else list(limit)
        return [f"{subject} must be {' or '.join(_TYPE_WORDS.get(t, t) for t in wanted)}"]
    if kind == "enum":
        return [f"{subject} must be one of: {', '.join(str(option) for option in limit)}"]
    if kind == "minProperties":
        return [f"{path} is empty: give at least {limit} {'entry' if limit == 1 else 'entries'}"]
    if kind == "minItems":
        return [f"{path} has {len(value)} item(s): give at least {limit}"]
    if kind == "required" and isinstance(value, dict):
        missing = [key for key in limit if key not in value]
        return [f"{path or 'the config'}: missing key {key!r}" for key in missing]
    if kind == "pattern":
        return [f"{subject} must match the pattern {limit}"]
    message = str(error.message).splitlines()[0]
    if len(message) > 160:
        message = message[:157] + "..."
    return [f"{path or 'the config'}: {message}"]


def schema_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every problem the schema finds, one line each, in key order."""
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    errors = sorted(
        validator.iter_errors(config),
        key=lambda e: (key_path(e.absolute_path), str(e.validator), str(e.instance)),
    )
    lines: list[str] = []
    for error in errors:
        for line in _describe(error):
            if line not in lines:
                lines.append(line)
    return lines


SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def schema_defaults(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config an empty config.yaml becomes: every default of the schema, nested.

    The schema is where defaults live; code that needs settings without a config file
    (tests, benchmarks) starts from this, as a run starts from the validated config.
    """
    schema = load_schema() if schema is None else schema

    def filled(node: dict[str, Any]) -> Any:
        if "$ref" in node:  # the key's own default, else its definition's
            node = {**schema["definitions"][node["$ref"].rsplit("/", 1)[-1]], **node}
        value = copy.deepcopy(node.get("default"))
        if "properties" in node and (value is None or isinstance(value, dict)):
            value = value or {}
            for key, child in node["properties"].items():
                if key not in value and (default := filled(child)) is not None:
                    value[key] = default
            return value if value or "default" in node else None
        return value

    return filled(schema)


def check_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise ConfigError listing every schema problem of ``config``, one line each."""
    problems = schema_problems(config, load_schema(schema_path))
    if problems:
        raise ConfigError("\n".join(problems))


def config_error_text(error: ConfigError) -> str:
    """``config: `` before each problem, as the run prints them."""
    return "\n".join(f"config: {line}" for line in str(error).splitlines())
