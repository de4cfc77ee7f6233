"""Training any target (binary density, vendor, pseudo-group, ...) on the memory-mapped cache.

One function, :func:`fit`, trains a ResNet-18 with class-balanced batches, batched
augmentation and model selection on validation AUC, checkpointing every epoch so a
killed job resumes where it stopped and ends with the same result. The random
state of epoch ``e`` is derived from (seed, e), never carried over, which is what
makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import functools
import hashlib
import json
import logging
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .augment import AugmentSettings, augment_batch
from ..errors import DataQualityError
from ..data.imaging import CACHE_MAX
from .metrics import auc, macro_ovr_auc
from .cpu_engine import compact, expand
from .model import freeze_before, initial_model, penultimate

log = logging.getLogger("labelbias")


@dataclass(frozen=True)
class TrainSettings:
    """How one model trains: the config's ``train`` section as :func:`labelbias.config.train_settings`
    resolves it for a target (the schema holds the defaults and what each key means)."""

    epochs: int
    batch_size: int
    lr: float
    lr_schedule: str  # "constant", or "cosine": decays to 0 over all steps
    weight_decay: float
    seed: int
    augment: bool
    init: str  # scratch, imagenet or backbone (see model.INITS)
    fine_tune_from: str  # the first stage that trains (model.STAGES); "stem": all of them
    threads: int
    eval_batch_size: int
    # 0 = as many images as the training set; subgroup classifiers may use fewer
    # (separability.images_per_epoch), as do benchmarks.
    max_batches_per_epoch: int
    select_epoch: str  # "best_val_auc" (the study's model selection) or "last"
    loading: str  # how batches reach the training device (see Feeder): auto, host, device or prefetch
    deterministic: bool  # deterministic kernels (bit-for-bit reruns); off lets cuDNN pick the fastest
    cpu_engine: bool  # the CPU engine (cpu_engine.py) on a CPU; off trains the plain network there too
    saturation_jitter: float  # colour images: saturation x 1 +- this when augmenting (0: off)
    hue_jitter: float  # colour images: hue rotated by up to this share of the wheel (0: off)


def learning_rate(settings: TrainSettings, step: int, total_steps: int) -> float:
    """The learning rate of a step (0-based). Cosine decay ends every model near a minimum,
    so models that differ only in their labels end up differing by less chance."""
    if settings.lr_schedule == "cosine":
        return settings.lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))
    return settings.lr


@dataclass
class TrainResult:
    model: torch.nn.Module
    best_epoch: int
    best_val_auc: float
    history: list[dict[str, float]]
    resumed_from_epoch: int
    # The best epoch's validation probabilities and features (None if that epoch ran before a resume).
    val_outputs: tuple[np.ndarray, np.ndarray] | None = None
    # The batch path training used; predictions after training reuse it (and its device copy).
    feeder: "Feeder | None" = None


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed blocks of up to 32 MB instead of returning them to the system.

    A training step frees and reallocates the same few-MB tensors (gradients,
    optimizer temporaries) every step; by default glibc hands blocks that large back
    to the kernel and the next step pays a page fault per 4 kB to get them again,
    which on virtual machines cost a fifth of a 32x24 step (measured on a 2-core AMD
    EPYC, AVX2). The peak memory is unchanged: freed blocks are reused, not added.
    Returns False where the C library is not glibc (nothing to tune).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


def image_channels(cache: np.ndarray) -> int:
    """1 for a grey cache (rows of height x width), 3 for a colour one (3 x height x width)."""
    return int(cache.shape[1]) if len(cache.shape) == 4 else 1


def _with_channel_axis(batch: torch.Tensor) -> torch.Tensor:
    return batch.unsqueeze(1) if batch.dim() == 3 else batch


def load_batch(cache: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """Read cache rows (any order) into a float batch (B, C, H, W) in [0, 1], C = 1 or 3.

    Rows are read in sorted order, which a memory map serves sequentially, then put
    back in the requested order.
    """
    order = np.argsort(rows, kind="stable")
    block = np.asarray(cache[rows[order]])
    batch = np.empty_like(block)
    batch[order] = block
    return _with_channel_axis(torch.from_numpy(batch.astype(np.float32) / CACHE_MAX))


LOADINGS = ("auto", "host", "device", "prefetch")


def resolve_loading(loading: str, dev: torch.device, cache_bytes: int) -> str:
    """The batch path ``auto`` stands for: the cache on a GPU when it takes at most half
    of the GPU's free memory, else prefetching; on the CPU, reads from the memory map."""
    if loading not in LOADINGS:
        raise ValueError(f"train.loading must be one of {', '.join(LOADINGS)}, not {loading!r}")
    if loading != "auto":
        return loading
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return "device" if cache_bytes <= free // 2 else "prefetch"
    return "host"


class Feeder:
    """Batches of cache rows as float images (B, 1, H, W) in [0, 1] on the training device.

    Three paths give the same tensors (bit for bit on the CPU, tested):

    - ``host``: read each batch from the memory map and copy it over (the CPU's path:
      the page cache already holds the array);
    - ``device``: copy the whole uint16 cache to the device once and index batches
      there, so a GPU step needs no host read and no copy (EMBED at 256x192 is 18.9 GB);
    - ``prefetch``: a background thread reads the next batches into pinned host
      buffers while the device computes, and copies them without blocking.
    """

    def __init__(self, cache: np.ndarray, dev: torch.device, loading: str = "host", depth: int = 3) -> None:
        self.cache, self.dev, self.depth = cache, dev, depth
        # Shape and dtype, not nbytes: a perturbed view of the cache (perturb.PerturbedCache) has no nbytes.
        cache_bytes = int(np.prod(cache.shape)) * np.dtype(cache.dtype).itemsize
        self.loading = resolve_loading(loading, dev, cache_bytes)
        self.resident: torch.Tensor | None = None
        if self.loading == "device":
            self.resident = self._to_device(cache, dev)

    @staticmethod
    def _to_device(cache: np.ndarray, dev: torch.device, chunk: int = 2048) -> torch.Tensor:
        # int16 holds the uint16 bits (every backend indexes int16); chunks keep the
        # host copy small while an 18.9 GB memory map streams over.
        resident = torch.empty(cache.shape, dtype=torch.int16, device=dev)
        for start in range(0, len(cache), chunk):
            # Rows by index, as every cache (and a perturbed view of one) serves them.
            rows = np.arange(start, min(start + chunk, len(cache)))
            block = np.ascontiguousarray(cache[rows]).view(np.int16)
            resident[start : start + len(block)].copy_(torch.from_numpy(block))
        return resident

    def _resident_batch(self, rows: np.ndarray) -> torch.Tensor:
        assert self.resident is not None
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.dev, non_blocking=True)
        stored = self.resident.index_select(0, index).to(torch.int32).bitwise_and_(0xFFFF)
        return _with_channel_axis(stored.to(torch.float32) / CACHE_MAX)

    def batches(self, row_batches: Sequence[np.ndarray]) -> Iterator[torch.Tensor]:
        """The batches of ``row_batches``, in order."""
        if self.loading == "device":
            for rows in row_batches:
                yield self._resident_batch(rows)
        elif self.loading == "prefetch":
            yield from self._prefetched(row_batches)
        else:
            for rows in row_batches:
                yield load_batch(self.cache, rows).to(self.dev)

    def _prefetched(self, row_batches: Sequence[np.ndarray]) -> Iterator[torch.Tensor]:
        pin = self.dev.type == "cuda"
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: object) -> bool:
            # Gives up once the consumer has stopped, so the thread never blocks on a full queue.
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for rows in row_batches:
                    batch = load_batch(self.cache, rows)
                    if not put(batch.pin_memory() if pin else batch):
                        return
                put(None)
            except BaseException as error:  # handed to the consumer, raised there
                put(error)

        worker = threading.Thread(target=produce, name="prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item.to(self.dev, non_blocking=pin)
        finally:
            stop.set()
            worker.join()


def balanced_batches(targets: np.ndarray, batch_size: int, rng: np.random.Generator, max_batches: int = 0) -> list[np.ndarray]:
    """Positions of class-balanced batches: every batch holds batch_size // K images of each class.

    An epoch has as many images as the training set; smaller classes are cycled
    through (a new permutation each pass), larger ones sampled without repeats.
    """
    classes = np.unique(targets)
    per_class = batch_size // len(classes)
    if per_class < 1:
        raise DataQualityError(f"batch size {batch_size} is smaller than the {len(classes)} classes")
    n_batches = max(1, len(targets) // (per_class * len(classes)))
    if max_batches:
        n_batches = min(n_batches, max_batches)
    streams = []
    for label in classes:
        members = np.flatnonzero(targets == label)
        needed = n_batches * per_class
        passes = [rng.permutation(members) for _ in range(-(-needed // len(members)))]
        streams.append(np.concatenate(passes)[:needed].reshape(n_batches, per_class))
    return [np.concatenate([s[i] for s in streams]) for i in range(n_batches)]


def validation_auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Binary AUC of class 1, or macro one-vs-rest AUC for more classes."""
    if len(np.unique(targets)) < 2:
        raise DataQualityError("the validation set holds a single class: AUC is undefined")
    if probabilities.shape[1] == 2:
        return auc(targets == 1, probabilities[:, 1])
    return macro_ovr_auc(targets, probabilities)


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    cache: np.ndarray,
    rows: np.ndarray,
    batch_size: int = 256,
    with_features: bool = False,
    feeder: Feeder | None = None,
    cpu_engine: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities (and 512-d features) for cache rows, in the given order.

    Runs a channels-last copy of the model, the layout in which inference (unlike CPU
    training) is faster, on a CPU through the CPU engine unless ``cpu_engine`` is off.
    Outputs stay on the device until the last batch: one copy to the host, no
    synchronisation per batch.
    """
    dev = next(model.parameters()).device
    feeder = feeder if feeder is not None else Feeder(cache, dev, "host")
    evaluator = copy.deepcopy(model).eval()
    if dev.type == "cpu" and cpu_engine:
        compact(evaluator, *cache.shape[-2:])
    evaluator = evaluator.to(memory_format=torch.channels_last)
    probabilities, features = [], []
    row_batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    half = amp_dtype(dev)
    for batch in feeder.batches(row_batches):
        with torch.autocast(dev.type, dtype=half, enabled=dev.type == "cuda"):
            feats, logits = penultimate(evaluator, batch.to(memory_format=torch.channels_last))
        probabilities.append(torch.softmax(logits.float(), dim=1))
        if with_features:
            features.append(feats.float())
    if not probabilities:
        empty_features = np.zeros((0, model.fc.in_features), dtype=np.float32)
        return np.zeros((0, model.fc.out_features), dtype=np.float32), (empty_features if with_features else None)
    return torch.cat(probabilities).cpu().numpy(), (torch.cat(features).cpu().numpy() if with_features else None)


def amp_dtype(dev: torch.device) -> torch.dtype:
    """Mixed precision on a GPU: bfloat16 where supported (no loss scaling, so no
    host synchronisation per step), else float16 with a gradient scaler."""
    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def fingerprint(
    settings: TrainSettings,
    train_rows: np.ndarray,
    train_targets: np.ndarray,
    val_rows: np.ndarray,
    val_targets: np.ndarray,
    n_classes: int,
    backbone: Mapping[str, torch.Tensor] | None = None,
    channels: int = 1,
    train_noise: np.ndarray | None = None,
) -> str:
    """Identifies a training run: a checkpoint is only resumed by the run that wrote it."""
    digest = hashlib.sha256()
    settings_for_hash = {k: v for k, v in asdict(settings).items() if k not in ("threads", "eval_batch_size", "loading")}
    digest.update(json.dumps(settings_for_hash, sort_keys=True).encode())
    for array in (train_rows, train_targets, val_rows, val_targets):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    digest.update(str(n_classes).encode())
    digest.update(f"channels {channels}".encode())
    for name, tensor in sorted((backbone or {}).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if train_noise is not None:
        digest.update(np.ascontiguousarray(train_noise, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never a half-written checkpoint


def _configure_torch(settings: TrainSettings) -> None:
    """Threads and determinism: process-wide torch switches every training job sets alike."""
    torch.set_num_threads(max(1, settings.threads))
    if settings.deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; read when CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
    # Deterministic mode would also fill every new tensor with NaN, a debugging aid that
    # costs time and changes no result (nothing reads memory before writing it).
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark = not settings.deterministic
    keep_freed_memory()


@dataclass
class _Progress:
    """Where a run stands after an epoch: what a checkpoint stores and a resumed run continues from."""

    start_epoch: int = 1
    best_auc: float = -np.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_val_outputs: tuple[np.ndarray, np.ndarray] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    resumed: int = 0

    def consider(self, epoch: int, auc: float, model: torch.nn.Module, outputs: tuple | None,
                 settings: TrainSettings) -> None:
        """Keep this epoch's model if ``settings.select_epoch`` selects it (or it is the last without validation)."""
        selected = settings.select_epoch == "last" or auc > self.best_auc
        if selected or (np.isnan(auc) and epoch == settings.epochs):
            self.best_auc, self.best_epoch = auc, epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            # Kept, so the final predictions need not run the validation images again.
            self.best_val_outputs = outputs if outputs is not None and outputs[0] is not None else None


def _resume(checkpoint: Path | None, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler, dev: torch.device) -> _Progress:
    """The progress of the checkpoint this run wrote (model, optimizer and scaler loaded), else a fresh start."""
    if checkpoint is None or not checkpoint.exists():
        return _Progress()
    state = torch.load(checkpoint, map_location=dev, weights_only=True)
    if state.get("fingerprint") != key:
        log.info("checkpoint %s belongs to other settings or data: starting over", checkpoint)
        return _Progress()
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    log.info("resuming from the checkpoint of epoch %d", state["epoch"])
    return _Progress(
        start_epoch=int(state["epoch"]) + 1, best_auc=float(state["best_auc"]), best_epoch=int(state["best_epoch"]),
        best_state=state["best_model"], history=list(state["history"]), resumed=int(state["epoch"]) + 1,
    )


def forward_corrected_loss(logits: torch.Tensor, targets: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the given (noisy) labels after the model's clean-class probabilities pass
    through each image's noise matrix, ``noise[n, true, given]`` = P(given | true) (Patrini et
    al.'s forward correction). With identity matrices it is the plain cross-entropy."""
    probabilities = torch.softmax(logits.float(), dim=1)
    noisy = torch.bmm(probabilities.unsqueeze(1), noise.to(probabilities)).squeeze(1)
    return F.nll_loss(torch.log(noisy.clamp_min(1e-12)), targets)


def _train_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, feeder: Feeder,
    train_rows: np.ndarray, train_targets: np.ndarray, settings: TrainSettings, epoch: int,
    train_noise: np.ndarray | None = None,
) -> tuple[float, int, float]:
    """One epoch of class-balanced batches: (mean loss, images seen, seconds); the loss
    forward-corrected where ``train_noise`` gives each training image a noise matrix."""
    dev = feeder.dev
    mixed, half = dev.type == "cuda", amp_dtype(dev)
    colour_jitter = AugmentSettings(saturation=settings.saturation_jitter, hue=settings.hue_jitter)
    rng = np.random.default_rng([settings.seed, epoch])
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    batches = balanced_batches(train_targets, settings.batch_size, rng, settings.max_batches_per_epoch)
    started, seen = time.perf_counter(), 0
    # Summed on the device and read once per epoch: no host synchronisation per step.
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    row_batches = [train_rows[positions] for positions in batches]
    for step_in_epoch, (positions, images) in enumerate(zip(batches, feeder.batches(row_batches), strict=True)):
        # The step count follows from the epoch, so a resumed run continues the same schedule.
        step = (epoch - 1) * len(batches) + step_in_epoch
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, step, settings.epochs * len(batches))
        # Augment on the training device: on a GPU the CPU would otherwise be the bottleneck.
        if settings.augment:
            images = augment_batch(images, generator, colour_jitter)
        targets = torch.from_numpy(train_targets[positions]).long().to(dev)
        if dev.type == "cuda":
            images = images.to(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=half, enabled=mixed):
            logits = model(images)
            if train_noise is None:
                loss = F.cross_entropy(logits, targets)
        if train_noise is not None:
            loss = forward_corrected_loss(logits, targets, torch.from_numpy(train_noise[positions]).to(dev))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        seen += len(positions)
        loss_sum += loss.detach().double() * len(positions)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)  # once per epoch, so the epoch's time includes its queued work
    return float(loss_sum) / max(seen, 1), seen, time.perf_counter() - started


def fit(
    cache: np.ndarray,
    train_rows: np.ndarray,
    train_targets: np.ndarray,
    val_rows: np.ndarray,
    val_targets: np.ndarray,
    n_classes: int,
    settings: TrainSettings,
    checkpoint: Path | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    backbone: Mapping[str, torch.Tensor] | None = None,
    train_noise: np.ndarray | None = None,
) -> TrainResult:
    """Train and return the model of the epoch with the best validation AUC, or of the
    last epoch (``settings.select_epoch``).

    Without validation images (cross-fitting has no labels left to select on) every
    epoch's AUC is NaN and the last epoch is kept. ``backbone`` holds the starting
    weights when ``settings.init`` is "backbone". ``train_noise`` (training images x
    classes x classes), when given, forward-corrects the loss (:func:`forward_corrected_loss`).
    """
    _configure_torch(settings)
    dev = device()
    feeder = Feeder(cache, dev, settings.loading)
    log.info("batches reach %s by the %s path", dev, feeder.loading)
    torch.manual_seed(settings.seed)
    model = initial_model(n_classes, settings.init, backbone, channels=image_channels(cache))
    frozen = freeze_before(model, settings.fine_tune_from)
    # The CPU engine trains the same network faster at small inputs; it gives the full one back at the end.
    # A GPU trains the plain network (cuDNN is fast there, and DenseConv's weight gradient,
    # an index_add, is not deterministic on CUDA).
    cropped = compact(model, *cache.shape[-2:]) if dev.type == "cpu" and settings.cpu_engine else []
    model = model.to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    # One fused kernel per step instead of a temporary tensor per operation and parameter.
    optimizer = torch.optim.Adam(trained, lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    scaler = torch.amp.GradScaler(enabled=dev.type == "cuda" and amp_dtype(dev) == torch.float16)
    key = fingerprint(settings, train_rows, train_targets, val_rows, val_targets, n_classes, backbone,
                      image_channels(cache), train_noise)
    progress = _resume(checkpoint, key, model, optimizer, scaler, dev)

    for epoch in range(progress.start_epoch, settings.epochs + 1):
        model.train()
        for module in frozen:
            module.eval()
        loss, seen, train_seconds = _train_epoch(
            model, optimizer, scaler, feeder, train_rows, train_targets, settings, epoch, train_noise
        )
        if len(val_rows):
            probabilities, features = predict(
                model, cache, val_rows, settings.eval_batch_size, with_features=True, feeder=feeder,
                cpu_engine=settings.cpu_engine,
            )
            auc = validation_auc(val_targets, probabilities)
        else:
            probabilities, features, auc = None, None, float("nan")
        record = {
            "epoch": float(epoch),
            "loss": loss,
            "val_auc": auc,
            "images_per_second": seen / max(train_seconds, 1e-9),
            "train_seconds": train_seconds,
        }
        progress.history.append(record)
        log.info(
            "epoch %d/%d  loss %.4f  val AUC %.4f  %.1f images/s",
            epoch, settings.epochs, record["loss"], auc, record["images_per_second"],
        )
        progress.consider(epoch, auc, model, (probabilities, features), settings)
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint,
                {
                    "fingerprint": key,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "best_model": progress.best_state,
                    "best_auc": progress.best_auc,
                    "best_epoch": progress.best_epoch,
                    "history": progress.history,
                },
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    model.load_state_dict(progress.best_state)
    expand(model, cropped)
    return TrainResult(
        model=model,
        best_epoch=progress.best_epoch,
        best_val_auc=progress.best_auc,
        history=progress.history,
        resumed_from_epoch=progress.resumed,
        val_outputs=progress.best_val_outputs,
        feeder=feeder,
    )


def evaluation_outputs(
    result: TrainResult, cache: np.ndarray, rows: np.ndarray, split: np.ndarray, batch_size: int, cpu_engine: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and features of every non-training row, in frame order.

    The validation rows' come from the best epoch's validation pass when it was kept
    (the same weights give the same numbers), so only the test rows run again.
    """
    evaluated = split != "train"
    if result.val_outputs is None:
        probabilities, features = predict(
            result.model, cache, rows[evaluated], batch_size, with_features=True, feeder=result.feeder,
            cpu_engine=cpu_engine,
        )
        assert features is not None
        return probabilities, features
    is_val = split[evaluated] == "val"
    test_probabilities, test_features = predict(
        result.model, cache, rows[split == "test"], batch_size, with_features=True, feeder=result.feeder,
        cpu_engine=cpu_engine,
    )
    assert test_features is not None
    val_probabilities, val_features = result.val_outputs
    probabilities = np.empty((int(evaluated.sum()), val_probabilities.shape[1]), dtype=val_probabilities.dtype)
    features = np.empty((int(evaluated.sum()), val_features.shape[1]), dtype=val_features.dtype)
    probabilities[is_val], features[is_val] = val_probabilities, val_features
    probabilities[~is_val], features[~is_val] = test_probabilities, test_features
    return probabilities, features


def joint_target(frame: pd.DataFrame, column: str) -> pd.Series:
    """Classes of a joint target such as ``density+manufacturer``: one per combination (``C/FUJI``)."""
    parts = column.split("+")
    missing = [part for part in parts if part not in frame.columns]
    if missing:
        raise DataQualityError(f"target '{column}': the cohort has no column {', '.join(missing)}")
    return frame[parts].astype(str).agg("/".join, axis=1)


def noise_matrices(frame: pd.DataFrame) -> np.ndarray | None:
    """Each row's noise matrix from ``noise_{true}_{given}`` columns (a loss-correcting remedy's
    labels), rows x classes x classes; None without such columns."""
    columns = [column for column in frame.columns if column.startswith("noise_")]
    if not columns:
        return None
    k = int(round(len(columns) ** 0.5))
    return np.stack(
        [np.column_stack([frame[f"noise_{true}_{given}"].to_numpy() for given in range(k)]) for true in range(k)], axis=1
    ).astype(np.float32)


def train_target(
    frame: pd.DataFrame,
    target_column: str,
    cache: np.ndarray,
    settings: TrainSettings,
    checkpoint: Path | None = None,
    backbone: Mapping[str, torch.Tensor] | None = None,
    noise: np.ndarray | None = None,
) -> tuple[TrainResult, list[str], pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Train on ``frame`` (cohort rows with ``split``, ``cache_row`` and the target column);
    ``noise`` (rows x classes x classes, classes in sorted order) forward-corrects the loss.

    Returns the training result, the class names, predictions for val and test
    images (``image_id, split, score`` for binary targets, plus ``prob_<class>``),
    their 512-d features (float16) and the features' index.
    """
    classes = sorted(frame[target_column].astype(str).unique())
    if len(classes) < 2:
        raise DataQualityError(f"target '{target_column}' has a single class ({classes[0]}): nothing to learn")
    codes = frame[target_column].astype(str).map({c: i for i, c in enumerate(classes)}).to_numpy()
    rows = frame["cache_row"].to_numpy()
    split = frame["split"].to_numpy()
    train, val = split == "train", split == "val"
    result = fit(
        cache, rows[train], codes[train], rows[val], codes[val], len(classes), settings, checkpoint, backbone=backbone,
        train_noise=None if noise is None else noise[train],
    )

    evaluated = frame[split != "train"]
    probabilities, features = evaluation_outputs(result, cache, rows, split, settings.eval_batch_size, settings.cpu_engine)
    predictions = pd.DataFrame({"image_id": evaluated["image_id"].to_numpy(), "split": evaluated["split"].to_numpy()})
    if len(classes) == 2:
        predictions["score"] = probabilities[:, 1]
    for i, name in enumerate(classes):
        predictions[f"prob_{name}"] = probabilities[:, i]
    features_index = predictions[["image_id", "split"]].assign(feature_row=np.arange(len(predictions)))
    assert features is not None
    return result, classes, predictions, features.astype(np.float16), features_index
