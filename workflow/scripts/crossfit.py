"""Linear cross-fitting of one scenario, all folds: each image's class probabilities from a
logistic regression on frozen backbone features, fitted on the other folds with the
scenario's labels."""

import logging

import numpy as np
import pandas as pd

from labelbias.detection.confident_learning import heldout_table, linear_crossfit
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    folds = read_tsv(snakemake.input.folds, dtype={"image_id": str})
    labels = read_tsv(snakemake.input.labels, dtype={"image_id": str})
    frame = folds.merge(labels[["image_id", "label_biased"]], on="image_id", validate="one_to_one")
    index = read_tsv(snakemake.input.features_index, dtype={"image_id": str})
    rows = frame[["image_id"]].merge(index, on="image_id", how="left", validate="one_to_one")["feature_row"]
    features = np.load(snakemake.input.features)[rows.to_numpy()]
    targets = frame["label_biased"].to_numpy().astype(int)
    parts = []
    for fold in sorted(frame["fold"].unique()):
        held = (frame["fold"] == fold).to_numpy()
        probabilities = linear_crossfit(features[~held], targets[~held], features[held], snakemake.params.settings["c"])
        log.info("fold %d: fitted on %d images, predicted %d", fold, int((~held).sum()), int(held.sum()))
        parts.append(heldout_table(frame, held, probabilities))
    write_tsv(pd.concat(parts, ignore_index=True), snakemake.output.probabilities)


run(main, snakemake)  # noqa: F821
