"""Benchmark: preprocessing full-size mammograms, the full-resolution pipeline against the reduced one.

Writes a few dozen DICOMs at the vendors' real detector matrices with the project's
generator (HOLO 4096x3328 uncompressed and JPEG 2000 lossless, GEMS 3062x2394 14-bit,
FUJI 5928x4728 MONOCHROME1) into bench/out/full/ (kept for the next run), each with
the features that make a breast mask hard (a text label, a thin skin line, dense
tissue cut by the image edge). For every file it times, on one thread:

- decode: reading the file and its stored pixel values (the reduced pipeline decodes
  JPEG 2000 at a lower resolution level, and averages blocks of the stored integers);
- preprocess: windowing, inversion, mask, flip, resize;

each the best of three runs, for ``working_scale: 0`` (every step at full resolution) and the default
``working_scale: 4``, prints images/s per core, how closely the two caches agree
(``labelbias.data.imaging.cache_agreement``), and the peak memory of a process that
preprocesses all of them as one shard job does.

    .venv/bin/python bench/full_size.py [--per-kind 6] [--height 256 --width 192]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

from labelbias.data import synthetic  # noqa: E402
from labelbias.schema import schema_defaults  # noqa: E402
from labelbias.data.imaging import (  # noqa: E402
    PreprocessSettings,
    cache_agreement,
    decode_dicom,
    display_from_stored,
    preprocess,
)

KINDS = (
    ("HOLO", "HOLOGIC, Inc.", False),
    ("HOLO-J2K", "HOLOGIC, Inc.", True),
    ("GEMS", "GE MEDICAL SYSTEMS", False),
    ("FUJI-MONO1", "FUJIFILM Corporation", False),
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_files(out: Path, per_kind: int) -> list[tuple[str, Path]]:
    """The benchmark's DICOMs, written once (the index lists them)."""
    index = out / "index.json"
    if index.exists():
        listed = [(kind, Path(path)) for kind, path in json.loads(index.read_text())]
        if len(listed) == per_kind * len(KINDS) and all(path.exists() for _, path in listed):
            return listed
    settings = synthetic.settings_from_config({
        **schema_defaults()["data"]["synthetic"], "seed": 11, "patients": 40 * per_kind, "matrix_scale": 1.0,
        "jpeg2000_share": 0.5, "vendor_mix": {"HOLOGIC, Inc.": 0.5, "GE MEDICAL SYSTEMS": 0.25, "FUJIFILM Corporation": 0.25},
    })
    _, _, jobs = synthetic.plan_dataset(settings)
    files: list[tuple[str, Path]] = []
    started = time.perf_counter()
    for kind, manufacturer, jpeg2000 in KINDS:
        chosen = [
            job for job in jobs
            if job.manufacturer == manufacturer and job.jpeg2000 == jpeg2000 and job.image_type == "2D"
        ][:per_kind]
        if len(chosen) < per_kind:
            sys.exit(f"the generator planned only {len(chosen)} {kind} images")
        for job in chosen:
            display = synthetic.add_hard_features(synthetic.render_display(job), job.seed)
            files.append((kind, synthetic.write_dicom(job, out, display)))
        print(f"  wrote {per_kind} {kind} files ({time.perf_counter() - started:.0f} s so far)", flush=True)
    index.write_text(json.dumps([(kind, str(path)) for kind, path in files]))
    return files


def time_one(path: Path, settings: PreprocessSettings, repeats: int = 3) -> tuple[float, float, np.ndarray, bool]:
    """(decode seconds, preprocess seconds, cache array, flipped) for one file, each the best of ``repeats``.

    Best of three as in the training benchmark: on a shared or virtual machine another
    process or the memory manager can only make a run slower.
    """
    decode, rest = np.inf, np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        dataset, pixels = decode_dicom(path, settings)
        decoded = time.perf_counter()
        full_shape = (int(dataset.Rows), int(dataset.Columns))
        array, flipped = preprocess(display_from_stored(dataset, pixels, path), settings, full_shape=full_shape)
        decode, rest = min(decode, decoded - started), min(rest, time.perf_counter() - decoded)
    return decode, rest, array, flipped


def shard_peak_memory(files: list[Path], settings: PreprocessSettings) -> float:
    """Peak resident memory (MiB) of a fresh process that preprocesses every file, one at a time."""
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(ROOT / 'workflow' / 'scripts')!r})\n"
        "from labelbias.data.imaging import PreprocessSettings, preprocess, read_dicom\n"
        "import numpy as np\n"
        "settings = PreprocessSettings(**json.loads(sys.argv[1]))\n"
        "arrays = [preprocess(read_dicom(p, settings), settings)[0] for p in sys.argv[2:]]\n"
        "np.stack(arrays)\n"
        # VmHWM starts again at exec; ru_maxrss would carry the parent's peak over.
        "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    )
    payload = json.dumps(
        {"height": settings.height, "width": settings.width, "working_scale": settings.working_scale}
    )
    result = subprocess.run(
        [sys.executable, "-c", code, payload, *map(str, files)], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=6, help="files of each kind (4 kinds)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=192)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    print(f"CPU: {cpu_model()}; torch's CPU capability: {torch.backends.cpu.get_cpu_capability()}; one thread")
    out = ROOT / "bench" / "out" / "full"
    out.mkdir(parents=True, exist_ok=True)
    print(f"writing or reusing {args.per_kind * len(KINDS)} full-size DICOMs under {out}", flush=True)
    files = write_files(out, args.per_kind)

    full = PreprocessSettings(args.height, args.width, working_scale=0)
    reduced = PreprocessSettings(args.height, args.width)
    print(f"\nper image, seconds (mean over files), model input {args.height}x{args.width}")
    header = f"{'kind':<11} {'matrix':>10} {'pipeline':<14} {'decode':>7} {'preprocess':>10} {'total':>7} {'images/s':>9}"
    print(header)
    totals: dict[str, list[float]] = {"full resolution": [], "reduced": []}
    agreement: dict[str, list[dict[str, float]]] = {}
    for kind, _, _ in KINDS:
        paths = [path for k, path in files if k == kind]
        results = {}
        for name, settings in (("full resolution", full), ("reduced", reduced)):
            timed = [time_one(path, settings) for path in paths]
            decode = float(np.mean([t[0] for t in timed]))
            rest = float(np.mean([t[1] for t in timed]))
            totals[name] += [t[0] + t[1] for t in timed]
            results[name] = timed
            header_ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
            matrix = f"{header_ds.Rows}x{header_ds.Columns}"
            print(
                f"{kind:<11} {matrix:>10} {name:<14} {decode:>7.3f} {rest:>10.3f} {decode + rest:>7.3f} "
                f"{1 / (decode + rest):>9.2f}",
                flush=True,
            )
        agreement[kind] = [
            cache_agreement(a[2], b[2]) | {"same_flip": float(a[3] == b[3])}
            for a, b in zip(results["full resolution"], results["reduced"], strict=True)
        ]
    for name, values in totals.items():
        print(f"all files, {name}: {len(values) / sum(values):.2f} images/s per core ({np.mean(values):.3f} s per image)")

    print("\nreduced against full resolution, cache arrays in display units [0, 1] (worst file of each kind)")
    print(f"{'kind':<11} {'mean |diff|':>12} {'99.9th pct |diff|':>18} {'mask IoU':>9} {'same flip':>10}")
    for kind, rows in agreement.items():
        print(
            f"{kind:<11} {max(r['mean_abs'] for r in rows):>12.4f} {max(r['p999_abs'] for r in rows):>18.4f} "
            f"{min(r['mask_iou'] for r in rows):>9.4f} {int(sum(r['same_flip'] for r in rows))}/{len(rows):>8}"
        )

    paths = [path for _, path in files]
    print(f"\npeak memory of one process preprocessing all {len(paths)} files (a shard job's):")
    for name, settings in (("full resolution", full), ("reduced", reduced)):
        print(f"  {name}: {shard_peak_memory(paths, settings):.0f} MiB")


if __name__ == "__main__":
    main()
