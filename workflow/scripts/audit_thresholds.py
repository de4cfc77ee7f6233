"""One bias scenario's audit curve: the threshold re-picked with n validation patients relabelled."""

import pandas as pd

from labelbias.detection.audit import audit_curve, patient_suspicion
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    ids = {"image_id": str, "patient_id": str}
    predictions = read_tsv(snakemake.input.predictions, dtype=ids)
    labels = read_tsv(snakemake.input.labels, dtype=ids)
    attributes = list(snakemake.params.attributes)
    cohort = read_tsv(snakemake.input.cohort, dtype=ids)[["image_id", "patient_id", *attributes]]
    frame = predictions.merge(labels, on="image_id", validate="one_to_one").merge(
        cohort, on="image_id", validate="one_to_one"
    )
    suspicion = None
    if "detection" in snakemake.input.keys():
        suspicion = patient_suspicion(read_tsv(snakemake.input.detection, dtype=ids))
    curve = audit_curve(
        frame[frame["split"].isin(["val", "test"])],
        sizes=list(snakemake.params.sizes),
        draws=int(snakemake.params.draws),
        target_fpr=float(snakemake.params.target_fpr),
        attributes=attributes,
        seed=int(snakemake.params.seed),
        suspicion=suspicion,
    )
    write_tsv(curve, snakemake.output.table)


run(main, snakemake)  # noqa: F821
