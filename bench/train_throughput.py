"""Benchmark: the machine's reference figure, the training engine's levers, the pipeline, and memory.

Every figure is measured in a fresh process, one at a time, so one measurement's
allocator state or threads never flatter another's.

1. Machine: CPU model, cores, torch's CPU capability (AVX2 / AVX512 / AMX ...).
2. Reference figure: torchvision's ResNet-18 with a one-channel stem and stock Adam,
   32x24, batch 32, one thread, random tensors in memory, the best of three runs. It
   is the same code everywhere (the engine's levers are off), so it converts a time
   measured here to another machine: minutes there = minutes here x (reference here /
   reference there). The slow machine of this project (2-core AMD EPYC, AVX2) has
   about 55 images/s.
3. Levers, at the default input size, threads and frozen stages (config.yaml): the raw network with
   each of the engine's levers added in turn (kernel taps that only see padding
   left out, fused Adam, glibc keeping freed memory, convolutions on tiny inputs as one
   matrix product; then, where
   `train.fine_tune_from` or --fine-tune-from freezes the stages before one, that too),
   ending at the network the workflow trains.
4. Pipeline: `labelbias.models.train.fit` on a memory-mapped cache (class-balanced batches
   read from the map, augmentation, the learning-rate schedule): the best of three
   epochs of as many batches as the raw network's runs, after a warm-up epoch; its
   ratio to the raw network of step 3 is the share of the hardware's speed the
   workflow gets.
5. On a GPU (when torch finds one): the raw network there (channels-last, mixed
   precision) and the pipeline by each batch path (`train.loading`: device, prefetch,
   host), side by side.
6. Memory: the pipeline (training batches plus a full validation pass) on a cache of N
   images and on one of 10 x N: peak resident set (VmHWM) and peak anonymous memory
   (sampled RssAnon). Pages of the memory map count in VmHWM but are page cache the
   kernel can drop; anonymous memory is what a job really holds.
7. Start-up: what a training job spends before it trains, in a fresh process (importing
   torch and the training package, ``fit`` on two batches), and whether it loaded
   TorchDynamo, which ``torch.optim`` imports on first use (``labelbias.models.optim``).

    .venv/bin/python bench/train_throughput.py [--images 9000] [--height H --width W] [--threads T]
        [--fine-tune-from STAGE]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

SLOW_MACHINE_REFERENCE = 55.0  # images/s of the reference network on the project's slow machine
LEVERS = ("plain", "live_taps", "fused_adam", "allocator", "dense", "frozen")
LEVER_TEXT = {
    "plain": "torchvision's network, stock Adam",
    "live_taps": "+ kernel taps that only see padding left out (model.compact)",
    "fused_adam": "+ fused Adam (torch.optim.Adam(fused=True))",
    "allocator": "+ glibc keeps freed blocks (train.keep_freed_memory)",
    "dense": "+ convolutions that read every input position as one matrix product (model.DenseConv)",
    "frozen": "+ the stages before train.fine_tune_from kept at their starting weights (model.freeze_before)",
}


def settings_with(**changes: object) -> object:
    """A density model's training settings from the schema's defaults, with ``changes``."""
    from dataclasses import replace

    from labelbias.config import train_settings
    from labelbias.models.train import TrainSettings
    from labelbias.schema import schema_defaults

    return replace(TrainSettings(**train_settings(schema_defaults())), **{"init": "scratch", "seed": 0, **changes})


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_cache(path: Path, n: int, height: int, width: int, channels: int = 1) -> None:
    """A cache of half-disc images with noise, written in chunks (never all in memory);
    ``channels`` 3: the colour layout (n, 3, height, width), each plane its own noise."""
    shape = (n, height, width) if channels == 1 else (n, channels, height, width)
    if path.exists() and np.load(path, mmap_mode="r").shape == shape:
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=shape)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    disc = (((yy - height / 2) / (0.42 * height)) ** 2 + (xx / (0.75 * width)) ** 2) < 1
    for start in range(0, n, 4096):
        stop = min(n, start + 4096)
        noise = rng.random((stop - start, *shape[1:])) * 30000 + 20000
        out[start:stop] = (noise * disc).astype(np.uint16)
    out.flush()


def raw_throughput(
    height: int, width: int, threads: int, batches: int, levers: int, fine_tune_from: str = "stem"
) -> dict[str, float]:
    """Forward + backward + Adam step on random tensors, with the first ``levers`` of LEVERS[1:] on
    (``frozen``: the stages before ``fine_tune_from`` take no gradient, as the workflow trains them)."""
    import torch
    import torch.nn.functional as F
    from torchvision.models import resnet18

    from labelbias.models.cpu_engine import compact
    from labelbias.models.model import freeze_before, grey_stem
    from labelbias.models.train import keep_freed_memory

    on = set(LEVERS[1 : 1 + levers])
    if "allocator" in on:
        keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = resnet18(num_classes=2)
    model.conv1 = grey_stem(model.conv1, keep_weights=False)
    frozen = freeze_before(model, fine_tune_from) if "frozen" in on else []
    if "live_taps" in on:
        compact(model, height, width, dense="dense" in on)
    model.train()
    for module in frozen:
        module.eval()
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=1e-3, fused="fused_adam" in on or None)
    x = torch.rand(32, 1, height, width)
    y = torch.arange(32) % 2

    def step() -> None:
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(5):
        step()
    # Best of three: another process on the machine can only make a run slower.
    train = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(batches):
            step()
        train = max(train, 32 * batches / (time.perf_counter() - started))
    model.eval()
    evaluation = torch.rand(256, 1, height, width)
    with torch.inference_mode():
        model(evaluation)
        started = time.perf_counter()
        for _ in range(4):
            model(evaluation)
        inference = 256 * 4 / (time.perf_counter() - started)
    return {"train": train, "inference": inference}


def raw_on_gpu(height: int, width: int, batches: int) -> dict[str, float]:
    """The raw network on the GPU as the workflow runs it there: channels-last, mixed
    precision (bfloat16 where supported), fused Adam, data already on the device."""
    import torch
    import torch.nn.functional as F
    from torchvision.models import resnet18

    from labelbias.models.model import grey_stem
    from labelbias.models.train import amp_dtype

    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = resnet18(num_classes=2)
    model.conv1 = grey_stem(model.conv1, keep_weights=False)
    model = model.to(dev).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    dtype = amp_dtype(dev)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)
    x = torch.rand(32, 1, height, width, device=dev).to(memory_format=torch.channels_last)
    y = (torch.arange(32) % 2).to(dev)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(10):
        step()
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(batches):
            step()
        torch.cuda.synchronize()
        best = max(best, 32 * batches / (time.perf_counter() - started))
    return {"train": best, "dtype": str(dtype).removeprefix("torch.")}


def pipeline(
    cache_path: str, threads: int, batches: int, val_images: int, loading: str = "host", fine_tune_from: str = "stem"
) -> dict[str, float]:
    """A warm-up epoch and three timed epochs of `fit`, ``batches`` batches each, with validation passes."""
    from labelbias.data.cache import open_cache
    from labelbias.models.train import fit

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
    val_rows = rows[-min(val_images, n // 5) :] if val_images else rows[-(n // 5) :]
    train_rows = rows[: n - len(val_rows)]
    settings = settings_with(
        epochs=4, batch_size=32, lr=1e-3, lr_schedule="cosine", seed=0, threads=threads,
        max_batches_per_epoch=batches, loading=loading, fine_tune_from=fine_tune_from, select_epoch="best_val_auc",
    )
    # Frozen random stages cost what frozen backbone stages do: no backbone needed to time them.
    result = fit(cache, train_rows, targets[train_rows], val_rows, targets[val_rows], 2, settings)
    stop.set()
    sampler.join()
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return {
        # Best of the epochs after the first (warm-up), as for the raw network.
        "images_per_second": max(epoch["images_per_second"] for epoch in result.history[1:]),
        "val_images": float(len(val_rows)),
        "peak_rss_mb": hwm / 1024,
        "peak_anon_mb": peak_anon[0] / 1024,
    }


def startup(height: int, width: int, threads: int) -> dict[str, float]:
    """What a training job spends before its first epoch's worth of work, in this fresh
    process: importing torch, importing the training package, and ``fit`` on two
    batches (its set-up, two steps, the last epoch's weights) with nothing to validate."""
    started = time.perf_counter()
    import torch

    imported_torch = time.perf_counter()
    from labelbias.models.train import fit

    imported_package = time.perf_counter()
    rng = np.random.default_rng(0)
    cache = rng.integers(0, 60000, size=(64, height, width), dtype=np.uint16)
    targets = np.arange(64) % 2
    empty = np.zeros(0, dtype=np.int64)
    fit(cache, np.arange(64), targets, empty, empty, 2, settings_with(epochs=1, batch_size=32, threads=threads))
    done = time.perf_counter()
    return {
        "import_torch": imported_torch - started,
        "import_package": imported_package - imported_torch,
        "fit_two_batches": done - imported_package,
        "dynamo_loaded": float("torch._dynamo" in sys.modules),
    }


def child(*args: str) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"benchmark child {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def defaults() -> dict[str, int]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    return {
        "height": int(config["preprocess"]["height"]),
        "width": int(config["preprocess"]["width"]),
        "threads": int(config["train"]["threads"]),
        "fine_tune_from": str(config["train"].get("fine_tune_from", "stem")),
    }


def main() -> None:
    default = defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9000, help="cache size N of the default dataset")
    parser.add_argument("--height", type=int, default=default["height"])
    parser.add_argument("--width", type=int, default=default["width"])
    parser.add_argument("--threads", type=int, default=default["threads"])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--fine-tune-from", default=default["fine_tune_from"], metavar="STAGE",
                        help="the first stage that trains (train.fine_tune_from)")
    parser.add_argument("--raw", type=int, metavar="LEVERS", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", nargs=2, metavar=("CACHE", "VAL"), help=argparse.SUPPRESS)
    parser.add_argument("--loading", default="host", help=argparse.SUPPRESS)
    parser.add_argument("--raw-gpu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--startup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.startup:  # before anything imports torch: its import is one of the figures
        print(json.dumps(startup(args.height, args.width, args.threads)))
        return
    from labelbias.models.model import STAGES

    if args.fine_tune_from not in STAGES:
        parser.error(f"argument --fine-tune-from: invalid choice: {args.fine_tune_from!r} (choose from {', '.join(STAGES)})")
    if args.raw is not None:
        print(json.dumps(raw_throughput(args.height, args.width, args.threads, args.batches, args.raw, args.fine_tune_from)))
        return
    if args.raw_gpu:
        print(json.dumps(raw_on_gpu(args.height, args.width, args.batches)))
        return
    if args.pipeline:
        print(json.dumps(pipeline(
            args.pipeline[0], args.threads, args.batches, int(args.pipeline[1]), args.loading, args.fine_tune_from
        )))
        return

    import torch

    size = ["--height", str(args.height), "--width", str(args.width)]
    stage = ["--fine-tune-from", args.fine_tune_from]
    print(f"machine: {cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores; "
          f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    reference = child("--raw", "0", "--height", "32", "--width", "24", "--threads", "1", "--batches", str(args.batches))
    factor = reference["train"] / SLOW_MACHINE_REFERENCE
    print(f"reference figure (torchvision ResNet-18, 1-channel stem, stock Adam, 32x24, batch 32, 1 thread): "
          f"{reference['train']:.1f} images/s")
    print(f"  minutes on the slow machine ({SLOW_MACHINE_REFERENCE:g} images/s) = minutes here x {factor:.2f}")

    print(f"\nraw network, {args.height}x{args.width}, batch 32, {args.threads} thread(s), {args.batches} batches "
          "(each lever added to the ones above)")
    print(f"{'lever':<14} {'train images/s':>15} {'x plain':>8} {'inference images/s':>19}  what")
    raw = {}
    # Freezing is a design choice, not an engine lever: shown when the config (or
    # --fine-tune-from) freezes a stage, so the pipeline is compared with the same network.
    levers = LEVERS if args.fine_tune_from != "stem" else LEVERS[:-1]
    for count, lever in enumerate(levers):
        raw[lever] = child("--raw", str(count), *size, *stage, "--threads", str(args.threads), "--batches", str(args.batches))
        what = LEVER_TEXT[lever] + (f" ({args.fine_tune_from})" if lever == "frozen" else "")
        print(f"{lever:<14} {raw[lever]['train']:>15.1f} {raw[lever]['train'] / raw['plain']['train']:>8.2f} "
              f"{raw[lever]['inference']:>19.1f}  {what}")

    out = ROOT / "bench" / "out" / "train"
    out.mkdir(parents=True, exist_ok=True)
    small = out / f"cache_{args.images}_{args.height}x{args.width}.npy"
    large = out / f"cache_{10 * args.images}_{args.height}x{args.width}.npy"
    make_cache(small, args.images, args.height, args.width)
    make_cache(large, 10 * args.images, args.height, args.width)
    runs = {
        name: child("--pipeline", str(path), "0", *size, *stage, "--threads", str(args.threads), "--batches", str(args.batches))
        for name, path in (("N", small), ("10N", large))
    }
    engine = raw[levers[-1]]["train"]
    pipe = runs["N"]["images_per_second"]
    print(f"\ntraining pipeline on the memory-mapped cache (fit, augmentation on): {pipe:.1f} images/s "
          f"(ratio {pipe / engine:.3f} to the raw network with every lever)")
    # Colour (preprocess.channels 3): the same pipeline on three planes, through the RGB stem.
    colour = out / f"cache_{args.images}_3x{args.height}x{args.width}.npy"
    make_cache(colour, args.images, args.height, args.width, channels=3)
    colour_run = child("--pipeline", str(colour), "0", *size, *stage, "--threads", str(args.threads), "--batches",
                       str(args.batches))
    print(f"the same on a colour cache (3 planes, RGB stem): {colour_run['images_per_second']:.1f} images/s "
          f"(ratio {colour_run['images_per_second'] / pipe:.3f} to grey)")
    print(f"\n{'cache':>6} {'images':>8} {'cache MB':>9} {'val pass':>9} {'peak RSS MB':>12} {'peak anon MB':>13}")
    for name, path in (("N", small), ("10N", large)):
        run = runs[name]
        megabytes = path.stat().st_size / 2**20
        n = np.load(path, mmap_mode="r").shape[0]
        print(f"{name:>6} {n:>8} {megabytes:>9.0f} {int(run['val_images']):>9} {run['peak_rss_mb']:>12.0f} "
              f"{run['peak_anon_mb']:>13.0f}")

    # Every training job is a fresh process: what it spends before training is paid 13
    # times in the default run (backbone, ten density models, two subgroup classifiers).
    starts = [child("--startup", *size, "--threads", str(args.threads)) for _ in range(3)]
    best = {key: min(start[key] for start in starts) for key in starts[0]}
    print(f"\ntraining job start-up in a fresh process (best of 3): import torch {best['import_torch']:.2f} s, "
          f"the training package {best['import_package']:.2f} s, fit's set-up and two batches "
          f"{best['fit_two_batches']:.2f} s; TorchDynamo loaded: {'yes' if max(s['dynamo_loaded'] for s in starts) else 'no'}")

    if not torch.cuda.is_available():
        print("\nno GPU: the training device is this CPU (the figures above)")
        return
    # The training device the workflow would use: the raw network there, and the
    # pipeline by each batch path, so a user sees whether the GPU is fed.
    print(f"\nGPU: {torch.cuda.get_device_name(0)}, {args.height}x{args.width}, batch 32")
    gpu = child("--raw-gpu", *size, "--batches", str(4 * args.batches))
    print(f"raw network on the GPU ({gpu['dtype']}, channels-last, fused Adam): {gpu['train']:.1f} images/s")
    for loading in ("device", "prefetch", "host"):
        run = child(
            "--pipeline", str(small), "0", *size, "--threads", str(args.threads), "--batches",
            str(4 * args.batches), "--loading", loading, "--fine-tune-from", "stem",  # as the raw network there
        )
        print(f"pipeline, {loading:<8} path: {run['images_per_second']:.1f} images/s "
              f"(ratio {run['images_per_second'] / gpu['train']:.3f} to the raw network)")


if __name__ == "__main__":
    main()
