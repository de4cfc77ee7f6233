"""Subgroup TPR/FPR of one scenario's density model at a threshold from clean or biased validation labels."""

from labelbias.analysis.evaluation import evaluate_scenario
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    table, counts = evaluate_scenario(
        predictions=read_tsv(snakemake.input.predictions, dtype={"image_id": str}),
        labels=read_tsv(snakemake.input.labels, dtype={"image_id": str}),
        cohort=read_tsv(snakemake.input.cohort, dtype={"image_id": str}),
        threshold_source=snakemake.wildcards.threshold_source,
        attributes=list(snakemake.params.attributes),
        target_fpr=float(snakemake.params.target_fpr),
        n_boot=int(snakemake.params.bootstrap),
        seed=int(snakemake.params.seed),
    )
    write_tsv(table, snakemake.output.table)
    write_tsv(counts, snakemake.output.counts)


run(main, snakemake)  # noqa: F821
