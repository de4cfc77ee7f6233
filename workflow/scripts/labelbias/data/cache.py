"""The preprocessed image cache: sharded preprocessing, a QC table and one memory-mappable array.

Preprocessing runs in shards (separate jobs locally or on SLURM). Each shard
returns its arrays plus a QC row per image; the merge writes one ``.npy`` array
that training opens with ``mmap_mode="r"`` and an index mapping image ids to rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..errors import DataQualityError, ImageReadError
from .imaging import CACHE_DTYPE, PreprocessSettings, load_for_cache, preprocess

QC_COLUMNS = ["image_id", "image_path", "status", "flipped", "reason"]


def resolve_image_path(image_root: str | Path, table_path: str, strip_prefix: str = "") -> Path:
    """Join a table's image path to the configured image root.

    EMBED paths are relative (``./images/cohort_1/...``) in the open release but
    absolute cluster paths in some copies; ``strip_prefix`` removes the latter's
    leading part so the rest is found under ``image_root``.
    """
    relative = table_path.replace("\\", "/")
    if strip_prefix and relative.startswith(strip_prefix):
        relative = relative[len(strip_prefix) :]
    relative = relative.lstrip("/")
    parts = [p for p in PurePosixPath(relative).parts if p not in (".",)]
    return Path(image_root).joinpath(*parts)


def shard_rows(n_images: int, shard: int, n_shards: int) -> np.ndarray:
    """Rows of shard ``shard`` (0-based): every n-th image, so shards have equal work."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    return np.arange(shard, n_images, n_shards)


def preprocess_shard(
    images: pd.DataFrame,
    image_root: str | Path,
    image_format: str,
    settings: PreprocessSettings,
    shard: int,
    n_shards: int,
    strip_prefix: str = "",
    reader: Callable[[Path, str, PreprocessSettings], tuple[np.ndarray, tuple[int, int]]] = load_for_cache,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, float]]:
    """Preprocess one shard; unreadable images get a QC row instead of an array row.

    Returns the stacked arrays of the readable images (in shard order), the QC table
    for every image of the shard, and timing figures for the log.
    """
    rows = shard_rows(len(images), shard, n_shards)
    arrays: list[np.ndarray] = []
    qc: list[dict[str, object]] = []
    started = time.perf_counter()
    for row in rows:
        record = images.iloc[int(row)]
        path = resolve_image_path(image_root, str(record["image_path"]), strip_prefix)
        try:
            display, full_shape = reader(path, image_format, settings)
            array, flipped = preprocess(display, settings, source=str(path), full_shape=full_shape)
        except ImageReadError as error:
            # The path has its own column: the reason alone, so no listing repeats it.
            reason = str(error).removeprefix(f"{path}: ")
            qc.append(
                {
                    "image_id": record["image_id"],
                    "image_path": str(path),
                    "status": "unreadable",
                    "flipped": 0,
                    "reason": reason,
                }
            )
            continue
        arrays.append(array)
        qc.append(
            {"image_id": record["image_id"], "image_path": str(path), "status": "ok", "flipped": int(flipped), "reason": ""}
        )
    elapsed = time.perf_counter() - started
    planes = (settings.channels,) if settings.channels > 1 else ()
    stacked = (
        np.stack(arrays) if arrays else np.zeros((0, *planes, settings.height, settings.width), dtype=CACHE_DTYPE)
    )
    timing = {"images": float(len(rows)), "seconds": elapsed, "images_per_second": len(rows) / max(elapsed, 1e-9)}
    return stacked, pd.DataFrame(qc, columns=QC_COLUMNS), timing


def unreadable_images(qc: pd.DataFrame) -> pd.DataFrame:
    """Every unreadable image of a QC table, once each: image_id, image_path, reason."""
    bad = qc.loc[qc["status"] != "ok", ["image_id", "image_path", "reason"]]
    return bad.drop_duplicates("image_path").reset_index(drop=True)


def check_unreadable_share(
    qc: pd.DataFrame, max_fraction: float, full_list: str = "", shown: int = 5
) -> None:
    """Fail the run when too many images are unreadable, naming the first ``shown``.

    ``full_list`` says where every one of them is listed (a file that outlives the
    failed job): with thousands of bad files, the message cannot hold them all.
    """
    bad = unreadable_images(qc)
    share = len(bad) / max(len(qc), 1)
    if share > max_fraction:
        examples = "\n  ".join(f"{r.image_path}: {r.reason}" for r in bad.head(shown).itertuples())
        first = f"The first {shown}" if len(bad) > shown else "They are"
        where = f"\nAll {len(bad)} are listed in {full_list}." if full_list and len(bad) > shown else ""
        raise DataQualityError(
            f"{len(bad)} of {len(qc)} images ({share:.1%}) are unreadable, more than "
            f"preprocess.max_unreadable_fraction = {max_fraction:.1%}. {first}:\n  {examples}{where}"
        )


def merge_shards(
    images: pd.DataFrame,
    shard_arrays: list[np.ndarray],
    shard_qc: list[pd.DataFrame],
    output_array: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the readable images, in table order, to one ``.npy``; return (index, qc).

    The array is written through a memory map so the merge never holds the whole
    cache in memory.
    """
    qc = pd.concat(shard_qc, ignore_index=True)
    position = {image_id: i for i, image_id in enumerate(images["image_id"])}
    qc = qc.assign(_order=qc["image_id"].map(position)).sort_values("_order").drop(columns="_order")
    ok = qc[qc["status"] == "ok"].reset_index(drop=True)
    if len(shard_arrays) == 0 or ok.empty:
        raise DataQualityError("no image could be preprocessed")
    # (height, width) grey, (3, height, width) colour: the model reads the channel count from it.
    image_shape = shard_arrays[0].shape[1:]
    out = np.lib.format.open_memmap(output_array, mode="w+", dtype=CACHE_DTYPE, shape=(len(ok), *image_shape))
    target_row = {image_id: i for i, image_id in enumerate(ok["image_id"])}
    for arrays, table in zip(shard_arrays, shard_qc, strict=True):
        readable = table[table["status"] == "ok"]["image_id"].to_numpy()
        if len(readable) != len(arrays):
            raise DataQualityError("a preprocessing shard's array and QC table disagree; rerun that shard")
        rows = np.array([target_row[i] for i in readable], dtype=np.int64)
        if len(rows):
            out[rows] = arrays
    out.flush()
    del out
    index = pd.DataFrame({"image_id": ok["image_id"], "cache_row": np.arange(len(ok))})
    return index, qc.reset_index(drop=True)


def open_cache(array_path: str | Path) -> np.ndarray:
    """Open the cache read-only and memory-mapped: memory does not grow with the dataset.

    Its rows are (height, width) grey images or (3, height, width) colour ones.
    """
    return np.load(array_path, mmap_mode="r")
