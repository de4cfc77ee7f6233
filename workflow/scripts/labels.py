"""Write one scenario's clean and biased labels for every cohort image."""

import logging

import pandas as pd

from labelbias.data.bias import BiasSpec, bias_summary, inject_bias
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    spec = BiasSpec(**dict(snakemake.params.bias))
    labels = inject_bias(cohort, spec)
    summary = bias_summary(cohort, labels, spec)
    write_tsv(labels, snakemake.output.labels)
    write_tsv(pd.DataFrame([summary]), snakemake.output.summary)
    log.info("run %s: %s", snakemake.wildcards.run, summary)


run(main, snakemake)  # noqa: F821
