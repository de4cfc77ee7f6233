"""Apply the study's filters to the EMBED tables: one row per eligible image."""

import logging

from labelbias.data.cohort import AttributeSpec, CohortFilters, select_images
from labelbias.data.embed import read_embed_tables
from labelbias.smk import run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    attributes = {
        name: AttributeSpec(column=spec["column"], values=dict(spec["values"]), other=spec.get("other", "Other"))
        for name, spec in snakemake.params.attributes.items()
    }
    filters = CohortFilters(
        vendors=dict(snakemake.params.vendors), views=tuple(snakemake.params.views), attributes=attributes
    )
    tables = read_embed_tables(
        snakemake.input.metadata,
        snakemake.input.clinical,
        image_path_column=snakemake.params.image_column,
        attribute_columns=[spec.column for spec in attributes.values()],
    )
    images, filter_log = select_images(tables, filters, image_column=snakemake.params.image_column)
    log.info("filters:\n%s", filter_log.to_string(index=False))
    write_tsv(images, snakemake.output.images)
    write_tsv(filter_log, snakemake.output.filters)


run(main, snakemake)  # noqa: F821
