"""Running the real workflow from tests: a tiny synthetic config and a Snakemake runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# The tests write it as the run's whole config.yaml, so every key it leaves out takes
# the schema's default. The keys from vendor_mix on are the schema's defaults from
# before they became the default run's (config.yaml's): the tests keep running what
# they were written for.
# The generator the tests were written for (the schema's defaults before config.yaml's).
TEST_GENERATOR = {
    "vendor_mix": {"HOLOGIC, Inc.": 0.55, "GE MEDICAL SYSTEMS": 0.25, "FUJIFILM Corporation": 0.20},
    "density_spread": 0.075,
    "matrix_scale": 0.04,
    "jpeg2000_share": 1.0,
}
TINY = {
    "seed": 3,
    "data": {"source": "synthetic", "synthetic": {"patients": 60, "seed": 5, **TEST_GENERATOR}},
    "cohort": {"split": {"train": 0.5, "val": 0.2, "test": 0.3}},
    "preprocess": {"height": 32, "width": 24, "shards": 2},
    "train": {"epochs": 2, "batch_size": 16, "lr_schedule": "cosine", "lr": 0.001, "select_epoch": "best_val_auc"},
    "separability": {"bootstrap": 50, "images_per_epoch": 0},
    "evaluation": {"bootstrap": 50},
    "backbone": {"holdout": 0.25, "epochs": 5},
    "replicates": {"seeds": 1},
}
# The shared run (conftest's tiny_run) has the remedy stage too; configs built from TINY do not.
# Budgets 0 and 1 have exact answers (the scenario's model, the clean model's labels).
TINY_RUN = {
    **TINY,
    "remedies": {"enabled": True, "scenarios": ["HOLO"], "methods": ["relabel_random", "drop_flagged", "forward_correction"], "budgets": [0, 1]},
}


# Local runs need no cluster: see tests/data/no_cluster_slurm.conf (saves ~9 s per start
# where SLURM's client is installed without a running controller).
LOCAL_ENV = {**os.environ, "SLURM_CONF": str(Path(__file__).resolve().parent / "data" / "no_cluster_slurm.conf")}


# Set before each test from its markers (conftest.py): a Snakemake run that does jobs belongs
# to a test marked `workflow`, so that `pytest -m "not workflow"` stays a quick loop.
current_test_may_run_jobs = True
PLANNING_ONLY = {"-n", "--dry-run", "--lint", "--dag", "--rulegraph", "--list-rules", "--summary"}


def snakemake_command(*args: str) -> list[str]:
    if not current_test_may_run_jobs and not PLANNING_ONLY & set(args):
        raise AssertionError("this test runs workflow jobs: mark it @pytest.mark.workflow")
    return [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--cores", "2", *args]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_command(*args), cwd=workdir, capture_output=True, text=True, timeout=900, env=LOCAL_ENV
    )


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """``snakemake`` in the background; its output goes to workdir/snakemake.out (a pipe could fill and stall it)."""
    with open(workdir / "snakemake.out", "w") as out:
        return subprocess.Popen(
            snakemake_command(*args), cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=LOCAL_ENV
        )


def wait_ok(process: subprocess.Popen, workdir: Path) -> None:
    """Wait for a ``start_snakemake`` run and fail with the end of its output unless it succeeded."""
    returncode = process.wait(timeout=900)
    assert returncode == 0, (workdir / "snakemake.out").read_text()[-3000:]


def write_config(workdir: Path, config: dict) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def run_ok(workdir: Path, config: dict) -> Path:
    write_config(workdir, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def planned_rules(workdir: Path, *args: str) -> list[str]:
    """The rule of every job a dry run plans (with extra command-line ``args``), one entry per job."""
    result = snakemake(workdir, "-n", "--quiet", "rules", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout + result.stderr
    rules: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["total"]:
            break  # the job-stats table may be printed more than once
        if len(parts) == 2 and parts[1].isdigit():
            rules += [parts[0]] * int(parts[1])
    return rules


def synthetic_settings(**changes: object) -> "SyntheticSettings":  # noqa: F821
    """The generator's settings as a run builds them: the schema's defaults, TEST_GENERATOR, ``changes``."""
    from labelbias.data.synthetic import settings_from_config
    from labelbias.schema import schema_defaults

    return settings_from_config({**schema_defaults()["data"]["synthetic"], "patients": 2000, **TEST_GENERATOR, **changes})
