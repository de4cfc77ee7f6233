"""Preprocess one shard of the eligible images into cache arrays and a QC table."""

import logging

import numpy as np

from labelbias.data.cache import preprocess_shard
from labelbias.data.imaging import PreprocessSettings
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    images = read_tsv(snakemake.input.images, dtype={"image_id": str, "image_path": str})
    source = snakemake.params.source
    settings = PreprocessSettings(
        height=int(snakemake.params.height),
        width=int(snakemake.params.width),
        mask_threshold=float(snakemake.params.mask_threshold),
        working_scale=int(snakemake.params.working_scale),
        mammogram=bool(source.get("mammogram", True)),
        channels=int(snakemake.params.channels),
    )
    arrays, qc, timing = preprocess_shard(
        images,
        image_root=source["root"],
        image_format=source["format"],
        settings=settings,
        shard=int(snakemake.wildcards.shard),
        n_shards=int(snakemake.params.shards),
        strip_prefix=source["strip_prefix"],
    )
    for row in qc[qc["status"] != "ok"].itertuples():
        log.warning("unreadable: %s: %s", row.image_path, row.reason)
    log.info(
        "shard %s: %d images in %.1f s (%.1f images/s)",
        snakemake.wildcards.shard,
        int(timing["images"]),
        timing["seconds"],
        timing["images_per_second"],
    )
    with open(snakemake.output.array, "wb") as handle:
        np.save(handle, arrays)
    write_tsv(qc, snakemake.output.qc)


run(main, snakemake)  # noqa: F821
