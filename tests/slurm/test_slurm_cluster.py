"""The workflow on a real single-node SLURM cluster, through the unchanged profile in slurm/.

`make test-slurm` starts the cluster (tests/slurm/local_cluster.sh), runs this module and
stops the cluster again; `make test` calls it when run as root. Nothing here is mocked:
jobs go through sbatch, SLURM's accounting records them, and scancel kills a real job.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from workflow_helpers import ROOT, SNAKEMAKE, TINY, planned_rules, start_snakemake, wait_ok, write_config

pytestmark = pytest.mark.workflow  # every test here runs Snakemake jobs

# The rules the workflow keeps on the submit host (localrules in common.smk).
LOCAL_RULES = {
    "all", "labels", "detection_folds", "detect", "detection_summary", "image_review", "separability_table",
    "perturbation_table", "table2", "findings", "dose_response", "figures", "provenance", "audit", "audit_summary",
    "front_page",
}
# Training and feature extraction: the backbone, a density model per scenario, two subgroup classifiers.
GPU_RULES = {"pretrain_backbone", "train_density", "train_separability", "backbone_features"}
# The tiny config with two scenarios (the clean baseline and a biased vendor) and fewer
# cross-fitting folds: fewer small jobs to queue, every rule still runs.
SCENARIOS = ["clean", "FUJI"]
CONFIG = {
    **TINY,
    "detection": {"folds": 3},
    "scenarios": {"clean": {}, "FUJI": {"attribute": "manufacturer", "subgroup": "FUJI"}},
}
# Outputs that must not depend on where a job ran (history.tsv holds timings, so it is left out).
COMPARED = [
    "results/data/cohort.tsv",
    "results/data/held_out.tsv",
    "results/data/table1.tsv",
    "results/cache/index.tsv",
    "results/cache/images.npy",
    "results/backbone/predictions.tsv",
    *[f"results/labels/{s}.tsv" for s in SCENARIOS],
    *[f"results/models/{s}/predictions.tsv" for s in SCENARIOS],
    *[f"results/probe/{s}.tsv" for s in SCENARIOS],
    *[f"results/detection/{s}.tsv" for s in SCENARIOS],
    "results/detection/summary.tsv",
    "results/separability/manufacturer.tsv",
    "results/separability/pseudo_subgroup.tsv",
    "results/eval/table2.tsv",
    "results/eval/findings.tsv",
]


def profile_command(workdir: Path, *args: str) -> list[str]:
    # Run from the repository root, so `--profile slurm` finds slurm/ exactly as a user's
    # command does. The only addition is a shorter wait before the first status check.
    return [
        SNAKEMAKE,
        "--profile",
        "slurm",
        "--directory",
        str(workdir),
        "--slurm-init-seconds-before-status-checks",
        "2",
        *args,
    ]


def run_on_cluster(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(profile_command(workdir, *args), cwd=ROOT, capture_output=True, text=True, timeout=1800)


def slurm_jobs(since: str) -> pd.DataFrame:
    """Allocations SLURM's accounting recorded since ``since``: id, state, TRES, rule and wildcards."""
    listing = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", since, "--format=JobID,State,AllocTRES,Comment"],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = []
    for line in listing.splitlines():
        job_id, state, tres, comment = line.split("|", 3)
        match = re.fullmatch(r"rule_(.+?)(?:_wildcards_(.*))?", comment)
        if match:
            rows.append({"job_id": job_id, "state": state.split()[0], "tres": tres,
                         "rule": match.group(1), "wildcards": match.group(2) or ""})
    return pd.DataFrame(rows, columns=["job_id", "state", "tres", "rule", "wildcards"])


def sacct_time() -> str:
    # sacct's -S has a resolution of one second; step back one so nothing is missed.
    return (dt.datetime.now() - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    """The tiny config run once locally and once through the SLURM profile."""
    base = tmp_path_factory.mktemp("slurm")
    local, remote = base / "local", base / "remote"
    write_config(remote, CONFIG)
    expected = Counter(planned_rules(remote))
    # The local reference runs beside the cluster run: most of the cluster run's time is
    # spent waiting for status checks, and neither run's results depend on the other's load.
    write_config(local, CONFIG)
    local_run = start_snakemake(local)
    since = sacct_time()
    result = run_on_cluster(remote)
    if result.returncode != 0:
        local_run.kill()  # no run left behind by a failed test
    assert result.returncode == 0, result.stderr[-4000:]
    wait_ok(local_run, local)
    return {"local": local, "remote": remote, "expected": expected, "jobs": slurm_jobs(since)}


def test_every_non_local_job_went_through_sbatch(cluster_run):
    jobs = cluster_run["jobs"]
    expected = Counter({rule: n for rule, n in cluster_run["expected"].items() if rule not in LOCAL_RULES})
    assert expected["preprocess_shard"] == 2 and expected["evaluate"] == 2 * len(SCENARIOS)
    assert expected["crossfit"] == len(SCENARIOS)
    assert Counter(jobs["rule"]) == expected
    assert set(jobs["state"]) == {"COMPLETED"}
    assert not set(jobs["rule"]) & LOCAL_RULES


def test_training_jobs_and_only_they_got_a_gpu(cluster_run):
    jobs = cluster_run["jobs"]
    has_gpu = jobs["tres"].str.contains("gres/gpu=1")
    assert has_gpu[jobs["rule"].isin(GPU_RULES)].all()
    assert not has_gpu[~jobs["rule"].isin(GPU_RULES)].any()
    # the backbone, a model per scenario, two subgroup classifiers, the backbone's features
    assert jobs["rule"].isin(GPU_RULES).sum() == 1 + len(SCENARIOS) + 2 + 1


def test_cluster_results_equal_a_local_run(cluster_run):
    for relative in COMPARED:
        local = (cluster_run["local"] / relative).read_bytes()
        remote = (cluster_run["remote"] / relative).read_bytes()
        assert local == remote, relative


def test_cancelled_training_job_is_resubmitted_and_resumes(cluster_run):
    """scancel a training job mid-run: the retry resumes from its checkpoint and gives the uninterrupted result."""
    remote, local = cluster_run["remote"], cluster_run["local"]
    longer = {**CONFIG, "train": {**CONFIG["train"], "epochs": 12}}
    target = "results/models/clean/predictions.tsv"
    write_config(remote, longer)
    write_config(local, longer)

    since = sacct_time()
    process = subprocess.Popen(profile_command(remote, target), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    train_log = remote / "logs/train/clean.log"
    job_id = None
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if train_log.exists() and "epoch 3/12" in train_log.read_text():
            queued = subprocess.run(["squeue", "-h", "-o", "%i|%k"], capture_output=True, text=True).stdout
            running = [line.split("|")[0] for line in queued.splitlines()
                       if line.endswith("|rule_train_density_wildcards_clean")]
            if running:
                job_id = running[0]
                break
        time.sleep(0.5)
    assert job_id, "the training job never reached epoch 3 on the cluster"
    subprocess.run(["scancel", job_id], check=True)
    # The uninterrupted reference trains locally while the cluster resubmits and resumes.
    reference = start_snakemake(local, target)
    output, _ = process.communicate(timeout=900)
    if process.returncode != 0:
        reference.kill()
    assert process.returncode == 0, output[-4000:]

    jobs = slurm_jobs(since)
    trained = jobs[jobs["rule"] == "train_density"]
    assert list(trained["state"]) == ["CANCELLED", "COMPLETED"], trained
    assert trained["job_id"].iloc[0] == job_id
    # The cancelled attempt says why in its SLURM log (kept because the job failed) ...
    cancelled_log = next((remote / ".snakemake/slurm_logs").rglob(f"{job_id}.log"))
    assert "stopped by SIGTERM" in cancelled_log.read_text()
    # ... and the retry carried on from a finished epoch instead of starting over (epoch 3 was
    # logged, so at least epoch 2's checkpoint was on disk when the job was cancelled).
    resumed = re.search(r"resuming from the checkpoint of epoch (\d+)", train_log.read_text())
    assert resumed and 2 <= int(resumed.group(1)) < 12
    assert not (remote / "results/models/clean/checkpoint.pt").exists()

    wait_ok(reference, local)
    for name in ["predictions.tsv", "features.tsv"]:
        assert (remote / f"results/models/clean/{name}").read_bytes() == (local / f"results/models/clean/{name}").read_bytes(), name
    history = [pd.read_csv(d / "results/models/clean/history.tsv", sep="\t") for d in (remote, local)]
    columns = [c for c in history[1].columns if c not in ("images_per_second", "train_seconds")]
    pd.testing.assert_frame_equal(history[0][columns], history[1][columns])

