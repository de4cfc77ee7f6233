"""Generate the synthetic EMBED-format dataset (DICOM files and the two tables)."""

import logging
import time
from pathlib import Path

from labelbias.smk import run, write_tsv
from labelbias.data.synthetic import oracle_summary, plan_dataset, settings_from_config, write_images

log = logging.getLogger("labelbias")


def main(snakemake):
    settings = settings_from_config(dict(snakemake.params.settings))
    metadata, clinical, jobs = plan_dataset(settings)
    started = time.perf_counter()
    image_root = Path(snakemake.output.images).parent
    written = write_images(jobs, image_root, workers=snakemake.threads)
    log.info("wrote %d DICOM files in %.1f s with %d workers", written, time.perf_counter() - started, snakemake.threads)
    metadata.to_csv(snakemake.output.metadata, index=False, lineterminator="\n")
    clinical.to_csv(snakemake.output.clinical, index=False, lineterminator="\n")
    summary = oracle_summary(metadata, clinical, jobs)
    write_tsv(summary, snakemake.output.summary)
    log.info("metadata rows %d, clinical rows %d\n%s", len(metadata), len(clinical), summary.to_string(index=False))


run(main, snakemake)  # noqa: F821
