"""Build the study cohort: readable eligible images, class balance, splits, pseudo-groups."""

import logging

from labelbias.data.cohort import build_cohort, hold_out_patients, split_summary, table1
from labelbias.data.table import class_spec
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    images = read_tsv(snakemake.input.images, dtype={"image_id": str, "image_path": str})
    qc = read_tsv(snakemake.input.qc, dtype={"image_id": str})
    readable = set(qc.loc[qc["status"] == "ok", "image_id"])
    images = images[images["image_id"].isin(readable)].reset_index(drop=True)
    log.info("%d readable eligible images", len(images))
    seed = int(snakemake.params.seed)
    stratify = list(snakemake.params.stratify)
    kept, held_out = hold_out_patients(
        images.drop(columns=["image_path"]),
        share=float(snakemake.params.holdout["share"]),
        val_share=float(snakemake.params.holdout["val"]),
        seed=seed + 3,
        stratify=stratify,
    )
    log.info("held out for the backbone: %d images, %d patients", len(held_out), held_out["patient_id"].nunique())
    cohort = build_cohort(
        kept,
        fractions=dict(snakemake.params.split),
        seed=seed,
        n_pseudo_groups=int(snakemake.params.pseudo_groups),
        balance=bool(snakemake.params.balance),
        stratify=stratify,
    )
    write_tsv(cohort, snakemake.output.cohort)
    write_tsv(held_out, snakemake.output.held_out)
    classes = class_spec(dict(snakemake.params.classes))
    write_tsv(
        table1(images, snakemake.params.table1_attribute, classes.name, classes.order), snakemake.output.table1
    )
    write_tsv(split_summary(cohort, list(snakemake.params.attributes)), snakemake.output.split_summary)
    log.info("cohort: %d images, %d patients", len(cohort), cohort["patient_id"].nunique())


run(main, snakemake)  # noqa: F821
