"""One cross-fitting fold of one scenario: class probabilities for the fold's images from a
model fitted on the other folds with the scenario's labels."""

import logging

import numpy as np
import pandas as pd

from labelbias.cache import open_cache
from labelbias.detection import linear_crossfit
from labelbias.model import read_backbone
from labelbias.smk import read_tsv, run, write_tsv
from labelbias.train import TrainSettings, fit, predict

log = logging.getLogger("labelbias")


def main(snakemake):
    fold = int(snakemake.wildcards.fold)
    folds = read_tsv(snakemake.input.folds, dtype={"image_id": str})
    labels = read_tsv(snakemake.input.labels, dtype={"image_id": str})
    frame = folds.merge(labels[["image_id", "label_biased"]], on="image_id", validate="one_to_one")
    held = (frame["fold"] == fold).to_numpy()
    targets = frame["label_biased"].to_numpy().astype(int)
    settings = dict(snakemake.params.settings)
    if settings["model"] == "linear":
        index = read_tsv(snakemake.input.features_index, dtype={"image_id": str})
        rows = frame[["image_id"]].merge(index, on="image_id", how="left", validate="one_to_one")["feature_row"]
        features = np.load(snakemake.input.features)[rows.to_numpy()]
        probabilities = linear_crossfit(features[~held], targets[~held], features[held], settings["c"])
    else:
        index = read_tsv(snakemake.input.index, dtype={"image_id": str})
        rows = frame[["image_id"]].merge(index, on="image_id", validate="one_to_one")["cache_row"].to_numpy()
        backbone = None
        if "backbone" in snakemake.input.keys():
            backbone = read_backbone(snakemake.input.backbone)
            log.info("fine-tuning from the backbone %s", snakemake.input.backbone)
        train = TrainSettings(**settings["train"], threads=snakemake.threads)
        cache = open_cache(snakemake.input.cache)
        empty = np.zeros(0, dtype=int)
        result = fit(cache, rows[~held], targets[~held], empty, empty, 2, train, backbone=backbone)
        probabilities, _ = predict(result.model, cache, rows[held], train.eval_batch_size)
    log.info("fold %d: fitted on %d images, predicted %d", fold, int((~held).sum()), int(held.sum()))
    out = pd.DataFrame({"image_id": frame.loc[held, "image_id"].to_numpy(), "fold": fold})
    out["prob_0"], out["prob_1"] = probabilities[:, 0], probabilities[:, 1]
    write_tsv(out, snakemake.output.probabilities)


run(main, snakemake)  # noqa: F821
