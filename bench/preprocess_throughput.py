"""Benchmark: preprocessing throughput (images per second) with 1 and 2 parallel jobs.

Generates a synthetic EMBED-format dataset once (under bench/out/), then times the
real Snakemake preprocessing stage (all shards plus the merge) with --cores 1 and
--cores 2, forcing the shards to rerun each time. Prints wall-clock throughput and
the in-job throughput each shard logged.

    .venv/bin/python bench/preprocess_throughput.py [--patients 500] [--shards 4]

With --matrix-scale 1 the synthetic DICOMs have the vendors' full detector matrices
(e.g. 4096x3328 JPEG 2000 for HOLO), which gives the per-image cost on real EMBED:

    .venv/bin/python bench/preprocess_throughput.py --patients 8 --shards 2 --matrix-scale 1 --height 256 --width 192
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(workdir: Path, *args: str) -> None:
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), *args], cwd=workdir, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--matrix-scale", type=float, default=0.04, help="share of the real detector matrix")
    args = parser.parse_args()

    workdir = ROOT / "bench" / "out" / f"preprocess-{args.matrix_scale:g}"
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "data": {
            "source": "synthetic",
            "synthetic": {
                "patients": args.patients,
                "matrix_scale": args.matrix_scale,
                # The dataset this benchmark has always measured: every HOLO file JPEG 2000
                # compressed, the vendor mix and density spread it was written with.
                "jpeg2000_share": 1.0,
                "vendor_mix": {"HOLOGIC, Inc.": 0.55, "GE MEDICAL SYSTEMS": 0.25, "FUJIFILM Corporation": 0.20},
                "density_spread": 0.075,
            },
        },
        "preprocess": {"shards": args.shards, "height": args.height, "width": args.width},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--cores", "2", "--until", "select_images")
    n_images = sum(1 for _ in open(workdir / "results/data/images.tsv")) - 1

    print(f"preprocessing {n_images} synthetic DICOMs (matrix scale {args.matrix_scale:g}) into {args.height}x{args.width}, {args.shards} shards")
    print(f"{'jobs':>4} {'wall s':>8} {'images/s (wall)':>16} {'images/s per job (in-job)':>26}")
    for jobs in (1, 2):
        shutil.rmtree(workdir / "results" / "cache", ignore_errors=True)
        started = time.perf_counter()
        snakemake(workdir, "--cores", str(jobs), "--until", "merge_cache", "--forcerun", "preprocess_shard")
        wall = time.perf_counter() - started
        in_job = []
        for log in sorted((workdir / "logs" / "preprocess").glob("*.log")):
            match = re.search(r"\(([\d.]+) images/s\)", log.read_text())
            if match:
                in_job.append(float(match.group(1)))
        per_job = sum(in_job) / max(len(in_job), 1)
        print(f"{jobs:>4} {wall:>8.1f} {n_images / wall:>16.1f} {per_job:>26.1f}")


if __name__ == "__main__":
    main()
