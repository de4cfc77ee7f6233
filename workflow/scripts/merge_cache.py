"""Merge preprocessing shards into one memory-mappable cache and the QC table."""

import logging

import numpy as np
import pandas as pd

from labelbias.data.cache import check_unreadable_share, merge_shards, unreadable_images
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    images = read_tsv(snakemake.input.images, dtype={"image_id": str, "image_path": str})
    shard_qc = [read_tsv(path, dtype={"image_id": str, "reason": str}) for path in snakemake.input.qc]

    qc_all = pd.concat(shard_qc, ignore_index=True)
    # A log, not an output: Snakemake keeps it when the check below fails the job.
    write_tsv(unreadable_images(qc_all), snakemake.log.unreadable)
    # Checked before any output is written: a failed check leaves no cache behind.
    check_unreadable_share(
        qc_all,
        float(snakemake.params.max_unreadable_fraction),
        full_list=f"{snakemake.log.unreadable} (image_id, image_path, reason)",
    )
    shard_arrays = [np.load(path, mmap_mode="r") for path in snakemake.input.arrays]
    index, qc = merge_shards(images, shard_arrays, shard_qc, snakemake.output.array)
    write_tsv(index, snakemake.output.index)
    write_tsv(qc, snakemake.output.qc)
    log.info("cache: %d images readable of %d", len(index), len(qc))


run(main, snakemake)  # noqa: F821
