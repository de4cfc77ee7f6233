"""Write one remedy run's labels: its scenario run's labels after the remedy, and what changed."""

import logging

import pandas as pd

from labelbias.detection.remedy import remedy_labels
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    ids = {"image_id": str, "patient_id": str}
    settings = dict(snakemake.params.remedy)
    detection = read_tsv(snakemake.input.detection, dtype=ids) if "detection" in snakemake.input.keys() else None
    labels, summary = remedy_labels(
        labels=read_tsv(snakemake.input.labels, dtype=ids),
        cohort=read_tsv(snakemake.input.cohort, dtype=ids),
        remedy=settings["remedy"],
        budget=settings["budget"],
        seed=int(settings["seed"]),
        detection=detection,
        attributes=list(settings["attributes"]),
    )
    write_tsv(labels, snakemake.output.labels)
    write_tsv(pd.DataFrame([summary]), snakemake.output.summary)
    log.info("run %s: %s", snakemake.wildcards.run, summary)


run(main, snakemake)  # noqa: F821
