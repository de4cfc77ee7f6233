"""What produced this run: the resolved config, package versions and the workflow's commit."""

import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from labelbias.smk import run

PACKAGES = ["snakemake", "torch", "torchvision", "numpy", "pandas", "scikit-learn", "cleanlab", "scipy", "pydicom",
            "pylibjpeg-openjpeg", "matplotlib", "pillow"]


def _version(package: str) -> str:
    # Under `--sdm conda` this job's environment holds only the analysis packages.
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not in this job's environment"


def main(snakemake):
    try:
        commit = subprocess.run(["git", "-C", snakemake.params.repo, "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", snakemake.params.repo, "status", "--porcelain"], capture_output=True,
                               text=True, check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    versions = "".join(f"<tr><td>{name}</td><td>{_version(name)}</td></tr>" for name in PACKAGES)
    config = yaml.safe_dump(dict(snakemake.params.config), sort_keys=False)
    Path(snakemake.output.html).write_text(
        "<html><head><meta charset='utf-8'></head><body>"
        f"<h3>Workflow commit</h3><p><code>{commit}</code></p>"
        f"<h3>Packages</h3><table>{versions}</table>"
        f"<h3>Configuration (after defaults)</h3><pre>{config}</pre></body></html>"
    )


run(main, snakemake)  # noqa: F821
