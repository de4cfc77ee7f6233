"""Cross-fitting folds of the training and validation images, by patient (one set for every scenario)."""

from labelbias.data.cohort import patient_folds
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    pool = cohort[cohort["split"] != "test"].reset_index(drop=True)
    folds = patient_folds(pool, int(snakemake.params.folds), int(snakemake.params.seed), list(snakemake.params.stratify))
    write_tsv(pool[["image_id", "patient_id", "split"]].assign(fold=folds), snakemake.output.folds)


run(main, snakemake)  # noqa: F821
