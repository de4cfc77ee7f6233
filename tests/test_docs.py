"""The README and docs/ stay true: links resolve, named targets, keys and outputs exist."""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from workflow_helpers import ROOT, LOCAL_ENV, SNAKEMAKE, TINY, write_config

SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
README = ROOT / "README.md"
PAGES = sorted([README, ROOT / "config" / "README.md", *(ROOT / "docs").rglob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FILE_SUFFIXES = {"smk", "py", "tsv", "csv", "yaml", "yml", "md", "png", "html", "json", "npy", "pt", "rst"}


def prose(path: Path) -> str:
    """The page without its fenced code blocks (a YAML example is no link)."""
    return FENCE.sub("", path.read_text())


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"`|\*\*|\*", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path).splitlines():
        match = re.match(r"^#{1,6}\s+(.*)$", line)
        if not match:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        found.add(anchor if count == 0 else f"{anchor}-{count}")
        seen[anchor] = count + 1
    return found


def test_pages_exist_and_the_readme_is_short():
    assert README.read_text().count("\n") <= 300
    for name in ["configuration", "datasets", "results", "performance", "design", "cluster", "design-log", "timings"]:
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
    readme = prose(README)
    for word in ["reference figure", "slow scale", "job-seconds", "draws"]:
        assert word not in readme.lower(), f"README.md uses the team's word {word!r}: it belongs in docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for match in LINK.finditer(prose(page)):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


def code_text(path: Path) -> str:
    """What the page shows as code: fenced blocks and `spans` (prose says "make a copy")."""
    text = path.read_text()
    return "\n".join(FENCE.findall(text) + CODE_SPAN.findall(prose(path)))


def test_every_make_target_named_exists():
    targets = make_targets()
    missing = []
    for page in PAGES:
        for target in re.findall(r"\bmake ([a-z][a-z0-9-]*)", code_text(page)):
            if target not in targets:
                missing.append(f"{page.relative_to(ROOT)}: make {target}")
    assert not missing, missing


def _schema_node(node: dict, parts: list[str]) -> bool:
    """Whether the dotted path ``parts`` names a key of the schema (``<name>`` for a map's entry)."""
    if "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if head in node.get("properties", {}):
        return _schema_node(node["properties"][head], rest)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return _schema_node(extra, rest)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        return _schema_node(node["items"], parts)
    return False


def named_config_keys(text: str) -> list[str]:
    """Dotted config keys in backticks: `train.epochs`, `train.epochs: 2`, `scenarios.<name>.rate`."""
    keys = []
    for span in CODE_SPAN.findall(text):
        key = re.split(r"[:= ,]", span.strip(), maxsplit=1)[0]
        parts = key.split(".")
        if parts[-1] in FILE_SUFFIXES:
            continue  # `data.smk`, `train.py`: a file, not a key
        if len(parts) > 1 and parts[0] in SCHEMA["properties"] and all(parts):
            keys.append(key)
    return keys


def test_named_config_keys_lookup_is_strict():
    assert _schema_node(SCHEMA, ["train", "epochs"])
    assert _schema_node(SCHEMA, ["scenarios", "<name>", "rate"])
    assert not _schema_node(SCHEMA, ["train", "epoch"])
    assert named_config_keys("set `train.epochs: 3` and `bias.rate`, not `results/x.tsv`") == ["train.epochs", "bias.rate"]
    assert named_config_keys("see `data.smk` and `train.py`") == []


def test_every_config_key_named_exists_in_the_schema():
    unknown = []
    for page in PAGES:
        for key in named_config_keys(page.read_text()):
            if not _schema_node(SCHEMA, key.split(".")):
                unknown.append(f"{page.relative_to(ROOT)}: {key}")
    assert not unknown, unknown


def outputs_table_paths() -> list[str]:
    """The paths in the first column of the README's outputs table, except rows of parts that are off by default."""
    text = README.read_text()
    section = text[text.index("## Outputs") :]
    section = section[: section.index("\n## ", 1)]
    paths = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`") or "off by default" in line:
            continue
        paths += [span for span in CODE_SPAN.findall(cells[0])]
    assert len(paths) > 20, paths
    return paths


def test_every_output_in_the_readme_is_written_by_a_default_run(tiny_run):
    """Each path of the README's table exists after a run with the default's parts switched on."""
    missing = []
    # The report is written by `snakemake --report` after the run (tests/test_report.py opens it).
    for path in [p for p in outputs_table_paths() if p != "results/report.html"]:
        pattern = re.sub(r"\{[^}]+\}", "*", path)
        if not glob.glob(str(tiny_run / pattern)):
            missing.append(path)
    assert not missing, f"the README's outputs table names paths the run did not write: {missing}"


# The paths of the contract the workflow keeps (shared/reference/outputs.md).
CONTRACT_PATHS = [
    "results/data/cohort.tsv",
    "results/data/table1.tsv",
    "results/labels/{scenario}.tsv",
    "results/models/{scenario}/predictions.tsv",
    "results/separability/{attribute}.tsv",
    "results/eval/table2.tsv",
    "results/detection/{scenario}.tsv",
    "results/detection/summary.tsv",
    "results/report.html",
]


def test_the_contract_paths_are_in_the_readme():
    listed = set(outputs_table_paths())
    assert set(CONTRACT_PATHS) <= listed, set(CONTRACT_PATHS) - listed


def test_make_help_lists_every_target():
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == make_targets(), listed ^ make_targets()


def test_citation_file_cites_the_study():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"].startswith("1.2")
    assert citation["license"] == "MIT" and "MIT License" in (ROOT / "LICENSE").read_text()
    study = [ref for ref in citation["references"] if "label bias" in ref["title"]]
    assert study and {a["family-names"] for a in study[0]["authors"]} >= {"Stanley", "Glocker"}
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["report"] is True


@pytest.mark.workflow
def test_the_workflow_runs_as_a_module_of_another_workflow(tmp_path):
    """A `module` statement pointing at a local clone plans the same jobs and runs them."""
    write_config(tmp_path, TINY)
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'module labelbias:\n    snakefile:\n        "{ROOT / "Snakefile"}"\n    config:\n        config\n\n\n'
        "use rule * from labelbias as labelbias_*\n"
    )

    def jobs(*args: str) -> dict[str, int]:
        result = subprocess.run(
            [SNAKEMAKE, "--cores", "2", "-n", "--quiet", "rules", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=LOCAL_ENV,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        table = {}
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                table[parts[0].removeprefix("labelbias_")] = int(parts[1])
        return table

    as_module = jobs()
    direct = jobs("-s", str(ROOT / "Snakefile"))
    assert as_module == direct and as_module["train_density"] >= 5
    # the module's scripts import the package from the clone: a real job through to the labels
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "results/labels/FUJI.tsv"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=LOCAL_ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    labels = (tmp_path / "results/labels/FUJI.tsv").read_text().splitlines()
    assert labels[0].split("\t")[:4] == ["image_id", "label_clean", "label_biased", "flipped"] and len(labels) > 50
