"""Build the study cohort: readable eligible images, class balance, splits, pseudo-groups."""

import logging

from labelbias.cohort import build_cohort, split_summary, table1
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    images = read_tsv(snakemake.input.images, dtype={"image_id": str, "image_path": str})
    qc = read_tsv(snakemake.input.qc, dtype={"image_id": str})
    readable = set(qc.loc[qc["status"] == "ok", "image_id"])
    images = images[images["image_id"].isin(readable)].reset_index(drop=True)
    log.info("%d readable eligible images", len(images))
    cohort = build_cohort(
        images.drop(columns=["image_path"]),
        fractions=dict(snakemake.params.split),
        seed=int(snakemake.params.seed),
        n_pseudo_groups=int(snakemake.params.pseudo_groups),
        balance=bool(snakemake.params.balance),
        stratify=list(snakemake.params.stratify),
    )
    write_tsv(cohort, snakemake.output.cohort)
    write_tsv(table1(images), snakemake.output.table1)
    write_tsv(split_summary(cohort, list(snakemake.params.attributes)), snakemake.output.split_summary)
    log.info("cohort: %d images, %d patients", len(cohort), cohort["patient_id"].nunique())


run(main, snakemake)  # noqa: F821
