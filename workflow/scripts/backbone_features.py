"""Frozen backbone features of every training and validation image, for cross-fitting."""

import logging

import numpy as np
import torch

from labelbias.data.cache import open_cache
from labelbias.models.model import initial_model, read_backbone
from labelbias.smk import read_tsv, run, write_tsv
from labelbias.models.train import image_channels, predict

log = logging.getLogger("labelbias")


def main(snakemake):
    torch.set_num_threads(snakemake.params.threads)
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    index = read_tsv(snakemake.input.index, dtype={"image_id": str})
    pool = cohort[cohort["split"] != "test"][["image_id"]].merge(index, on="image_id", validate="one_to_one")
    backbone = None
    if "backbone" in snakemake.input.keys():
        backbone = read_backbone(snakemake.input.backbone)
    cache = open_cache(snakemake.input.cache)
    model = initial_model(2, snakemake.params.init, backbone, channels=image_channels(cache))
    _, features = predict(
        model, cache, pool["cache_row"].to_numpy(), with_features=True,
        cpu_engine=snakemake.params.cpu_engine,
    )
    assert features is not None
    log.info("%d images, features %s from a %s backbone", len(pool), features.shape, snakemake.params.init)
    with open(snakemake.output.features, "wb") as handle:
        np.save(handle, features.astype(np.float32))
    write_tsv(pool[["image_id"]].assign(feature_row=np.arange(len(pool))), snakemake.output.index)


run(main, snakemake)  # noqa: F821
