"""Benchmark: training throughput against the raw network, and peak memory against dataset size.

1. Raw: forward + backward + Adam step of the same ResNet-18, batch, image size and
   threads on tensors already in memory.
2. Pipeline: `labelbias.train.fit` on a memory-mapped cache (class-balanced
   batches read from the map, batched augmentation), the same number of batches.
   The ratio pipeline / raw is the share of the hardware's speed training gets.
3. Memory: the pipeline run (training batches plus a full validation pass) in a
   fresh process on a cache of N images and on one of 10 x N, reporting the peak
   resident set (VmHWM) and the peak anonymous memory (sampled RssAnon). Pages of
   the memory map count in VmHWM but are page cache the kernel can drop; anonymous
   memory is what a job really holds.

    .venv/bin/python bench/train_throughput.py [--images 9000] [--height 32 --width 24] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))


def make_cache(path: Path, n: int, height: int, width: int) -> None:
    """A cache of half-disc images with noise, written in chunks (never all in memory)."""
    if path.exists() and np.load(path, mmap_mode="r").shape == (n, height, width):
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(n, height, width))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    disc = (((yy - height / 2) / (0.42 * height)) ** 2 + (xx / (0.75 * width)) ** 2) < 1
    for start in range(0, n, 4096):
        stop = min(n, start + 4096)
        noise = rng.random((stop - start, height, width)) * 30000 + 20000
        out[start:stop] = (noise * disc).astype(np.uint16)
    out.flush()


def raw_throughput(height: int, width: int, threads: int, batches: int) -> float:
    import torch
    import torch.nn.functional as F

    from labelbias.model import build_resnet18

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_resnet18(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(32, 1, height, width)
    y = torch.arange(32) % 2
    for _ in range(5):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    started = time.perf_counter()
    for _ in range(batches):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return 32 * batches / (time.perf_counter() - started)


def pipeline(cache_path: str, threads: int, batches: int, val_images: int) -> dict[str, float]:
    """One epoch of `fit` limited to `batches` batches, plus a validation pass."""
    from labelbias.cache import open_cache
    from labelbias.train import TrainSettings, fit

    peak_anon = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cache = open_cache(cache_path)
    n = len(cache)
    rows = np.arange(n)
    targets = rows % 2
    val_rows = rows[-min(val_images, n // 5):] if val_images else rows[-(n // 5):]
    train_rows = rows[: n - len(val_rows)]
    settings = TrainSettings(epochs=1, batch_size=32, lr=1e-3, seed=0, threads=threads, max_batches_per_epoch=batches)
    result = fit(cache, train_rows, targets[train_rows], val_rows, targets[val_rows], 2, settings)
    stop.set()
    sampler.join()
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return {
        "images_per_second": result.history[0]["images_per_second"],
        "val_images": float(len(val_rows)),
        "peak_rss_mb": hwm / 1024,
        "peak_anon_mb": peak_anon[0] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9000, help="cache size N of the default dataset")
    parser.add_argument("--height", type=int, default=32)
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--child", nargs=2, metavar=("CACHE", "VAL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(pipeline(args.child[0], args.threads, args.batches, int(args.child[1]))))
        return

    out = ROOT / "bench" / "out" / "train"
    out.mkdir(parents=True, exist_ok=True)
    small, large = out / f"cache_{args.images}.npy", out / f"cache_{10 * args.images}.npy"
    make_cache(small, args.images, args.height, args.width)
    make_cache(large, 10 * args.images, args.height, args.width)

    def child(cache: Path) -> dict[str, float]:
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(cache), "0", "--threads", str(args.threads),
             "--batches", str(args.batches)],
            capture_output=True, text=True, check=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    raw = raw_throughput(args.height, args.width, args.threads, args.batches)
    runs = {"N": child(small), "10N": child(large)}
    print(f"ResNet-18, batch 32, {args.height}x{args.width}, {args.threads} thread(s), {args.batches} batches")
    print(f"raw forward+backward on in-memory tensors: {raw:7.1f} images/s")
    pipe = runs["N"]["images_per_second"]
    print(f"training pipeline on the memory-mapped cache: {pipe:7.1f} images/s  (ratio {pipe / raw:.3f})")
    print(f"{'cache':>6} {'images':>8} {'cache MB':>9} {'val pass':>9} {'peak RSS MB':>12} {'peak anon MB':>13}")
    for name, path in (("N", small), ("10N", large)):
        run = runs[name]
        size = path.stat().st_size / 2**20
        n = np.load(path, mmap_mode="r").shape[0]
        print(f"{name:>6} {n:>8} {size:>9.0f} {int(run['val_images']):>9} {run['peak_rss_mb']:>12.0f} {run['peak_anon_mb']:>13.0f}")


if __name__ == "__main__":
    main()
