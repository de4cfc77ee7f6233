"""The conda environments (`--sdm conda`) agree with requirements.txt and cover each rule's imports."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"

# Import name -> distribution name, where they differ.
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow"}
# pydicom decodes JPEG 2000 (OpenJPEG), JPEG Lossless and JPEG-LS (GDCM) pixel data through these
# plug-ins, which it never imports by name.
RUNTIME_PLUGINS = {"pydicom": {"pylibjpeg", "pylibjpeg-openjpeg", "python-gdcm"}}


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def env_pins(path: Path) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())
    pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    return {name.lower(): version for name, version in (line.split("==") for line in pip)}


def rules() -> dict[str, dict[str, str]]:
    """Rule name -> its `conda:` and `script:` paths, read from the .smk files."""
    found = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"(?m)^(?=rule )", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            if not name:
                continue
            fields = {}
            for key in ("conda", "script"):
                value = re.search(rf"(?m)^    {key}:\n\s+\"([^\"]+)\"", block)
                if value:
                    fields[key] = str((smk.parent / value.group(1)).resolve())
            found[name.group(1)] = fields
    return found


def _module_file(name: str) -> Path | None:
    """The file of a labelbias module or package (its __init__), or None."""
    base = SCRIPTS / name.rstrip(".").replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(script: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level modules a script needs, following imports of the labelbias package."""
    seen = set() if seen is None else seen
    needed: set[str] = set()
    package = script.parent.relative_to(SCRIPTS).parts if SCRIPTS in script.parents else ()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # "from package import module" imports a module too
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "labelbias":
                module_file = _module_file(name)
                if module_file is not None and module_file not in seen:
                    seen.add(module_file)
                    needed |= third_party_imports(module_file, seen)
            elif top not in sys.stdlib_module_names and top != "__future__":
                needed.add(top)
    return needed


ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env", ENV_FILES, ids=lambda path: path.name)
def test_env_pins_equal_requirements(env):
    pins = requirement_pins()
    for name, version in env_pins(env).items():
        assert name in pins, f"{env.name} pins {name}, which requirements.txt does not"
        assert version == pins[name], f"{env.name}: {name}=={version}, requirements.txt has {pins[name]}"


def test_every_rule_with_a_script_has_an_env_covering_its_imports():
    found = rules()
    assert {"train_density", "preprocess_shard", "evaluate"} <= set(found)
    for name, fields in found.items():
        if "script" not in fields:
            continue
        assert "conda" in fields, f"rule {name} has no conda: environment"
        pins = env_pins(Path(fields["conda"]))
        for module in third_party_imports(Path(fields["script"])):
            distribution = DISTRIBUTION.get(module, module).lower()
            assert distribution in pins, f"rule {name} imports {module}, missing from {Path(fields['conda']).name}"
            for plugin in RUNTIME_PLUGINS.get(distribution, ()):
                assert plugin in pins, f"rule {name} reads DICOM, {Path(fields['conda']).name} lacks {plugin}"


def test_import_scan_follows_the_package():
    # The training script reaches torch only through labelbias.models.train and model.
    assert {"torch", "torchvision", "pandas"} <= third_party_imports(SCRIPTS / "train.py")
