"""One row per eligible image, from EMBED's two tables (the study's filters) or from any image table."""

import logging

from labelbias.data.cohort import AttributeSpec, CohortFilters, select_images
from labelbias.data.embed import read_embed_tables
from labelbias.data.table import read_source_table, select_table_images, table_source
from labelbias.smk import run, write_tsv

log = logging.getLogger("labelbias")


def embed_images(snakemake):
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
    return select_images(tables, filters, image_column=snakemake.params.image_column)


def table_images(snakemake):
    source = table_source(dict(snakemake.params.table), dict(snakemake.params.attributes))
    return select_table_images(read_source_table(source), source)


def main(snakemake):
    reader = table_images if snakemake.params.source == "table" else embed_images
    images, filter_log = reader(snakemake)
    log.info("filters:\n%s", filter_log.to_string(index=False))
    write_tsv(images, snakemake.output.images)
    write_tsv(filter_log, snakemake.output.filters)


run(main, snakemake)  # noqa: F821
