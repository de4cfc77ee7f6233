"""Confident learning on one scenario's cross-fitted probabilities: flags per image, error rates per subgroup."""

import logging

import pandas as pd

from labelbias.detection.confident_learning import flag_images, subgroup_error_rates
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    probabilities = pd.concat([read_tsv(p, dtype={"image_id": str}) for p in snakemake.input.folds], ignore_index=True)
    labels = read_tsv(snakemake.input.labels, dtype={"image_id": str})
    attributes = list(snakemake.params.attributes)
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})[["image_id", "patient_id", "split", snakemake.params.class_column, *attributes]]
    frame = probabilities.merge(labels, on="image_id", validate="one_to_one").merge(cohort, on="image_id", validate="one_to_one")
    frame = frame.sort_values("image_id", kind="stable").reset_index(drop=True)
    frame = frame.rename(columns={"label_biased": "label_given"})
    pred_probs = frame[["prob_0", "prob_1"]].to_numpy()
    quality, flagged = flag_images(frame["label_given"].to_numpy(), pred_probs, snakemake.params.filter_by)
    frame["quality"], frame["flagged"] = quality, flagged.astype(int)
    table = subgroup_error_rates(frame, pred_probs, attributes, int(snakemake.params.bootstrap), int(snakemake.params.seed))
    log.info("%d images, %d flagged, %d flipped\n%s", len(frame), frame["flagged"].sum(), frame["flipped"].sum(), table.to_string())
    write_tsv(table, snakemake.output.table)
    columns = ["image_id", "patient_id", "split", snakemake.params.class_column, *attributes, "label_clean", "label_given", "flipped",
               "fold", "prob_1", "quality", "flagged"]
    write_tsv(frame[columns], snakemake.output.images)


run(main, snakemake)  # noqa: F821
