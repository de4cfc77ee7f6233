"""The report's front page, written from this run's findings, Table 2, Fig. 1, audit and remedies."""

from pathlib import Path

from labelbias.analysis.frontpage import front_page
from labelbias.smk import read_tsv, run


def main(snakemake):
    audit = read_tsv(snakemake.input.audit, dtype={"subgroup": str}) if "audit" in snakemake.input.keys() else None
    page = front_page(
        description=Path(snakemake.input.description).read_text(),
        findings=read_tsv(snakemake.input.findings),
        table2=read_tsv(snakemake.input.table2, dtype={"subgroup": str}),
        table2_html=Path(snakemake.input.table2_html).read_text(),
        figure_png=Path(snakemake.input.figure).read_bytes(),
        targets=dict(snakemake.params.targets),
        audit=audit,
        class_name=snakemake.params.class_name,
        remedies=read_tsv(snakemake.input.remedies, dtype={"subgroup": str}) if "remedies" in snakemake.input.keys() else None,
        remedy_labels=read_tsv(snakemake.input.remedy_labels) if "remedy_labels" in snakemake.input.keys() else None,
    )
    Path(snakemake.output.page).write_text(page)


run(main, snakemake)  # noqa: F821
