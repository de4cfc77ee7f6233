"""PC1 of one density model's test features, oriented by its score."""

import logging

import numpy as np

from labelbias.analysis.features import pc1_table
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    table, facts = pc1_table(
        np.load(snakemake.input.features),
        read_tsv(snakemake.input.features_index, dtype={"image_id": str}),
        read_tsv(snakemake.input.predictions, dtype={"image_id": str}),
        read_tsv(snakemake.input.cohort, dtype={"image_id": str}),
        attributes=list(snakemake.params.attributes),
        class_column=snakemake.params.class_column,
    )
    log.info("PC1: %s", facts)
    write_tsv(table, snakemake.output.table)


run(main, snakemake)  # noqa: F821
