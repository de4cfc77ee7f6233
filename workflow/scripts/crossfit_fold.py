"""One fold of fine-tuned cross-fitting: the fold's class probabilities from the density recipe
trained on the other folds with the scenario's labels (a network per fold, a GPU job each)."""

import logging

import numpy as np

from labelbias.data.cache import open_cache
from labelbias.detection.confident_learning import heldout_table
from labelbias.models.model import read_backbone
from labelbias.smk import read_tsv, run, write_tsv
from labelbias.models.train import TrainSettings, fit, predict

log = logging.getLogger("labelbias")


def main(snakemake):
    fold = int(snakemake.wildcards.fold)
    folds = read_tsv(snakemake.input.folds, dtype={"image_id": str})
    labels = read_tsv(snakemake.input.labels, dtype={"image_id": str})
    frame = folds.merge(labels[["image_id", "label_biased"]], on="image_id", validate="one_to_one")
    held = (frame["fold"] == fold).to_numpy()
    targets = frame["label_biased"].to_numpy().astype(int)
    index = read_tsv(snakemake.input.index, dtype={"image_id": str})
    rows = frame[["image_id"]].merge(index, on="image_id", validate="one_to_one")["cache_row"].to_numpy()
    backbone = None
    if "backbone" in snakemake.input.keys():
        backbone = read_backbone(snakemake.input.backbone)
        log.info("fine-tuning from the backbone %s", snakemake.input.backbone)
    train = TrainSettings(**snakemake.params.settings["train"])
    cache = open_cache(snakemake.input.cache)
    empty = np.zeros(0, dtype=int)
    result = fit(cache, rows[~held], targets[~held], empty, empty, 2, train, backbone=backbone)
    probabilities, _ = predict(result.model, cache, rows[held], train.eval_batch_size, cpu_engine=train.cpu_engine)
    log.info("fold %d: fitted on %d images, predicted %d", fold, int((~held).sum()), int(held.sum()))
    write_tsv(heldout_table(frame, held, probabilities), snakemake.output.probabilities)


run(main, snakemake)  # noqa: F821
