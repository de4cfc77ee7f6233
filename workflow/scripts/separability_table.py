"""One-vs-rest test AUC per subgroup of an attribute's classifiers (one per seed), with intervals."""

from labelbias.analysis.separability import separability_table
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    predictions = [read_tsv(path, dtype={"image_id": str}) for path in snakemake.input.predictions]
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    table = separability_table(
        predictions, cohort, snakemake.wildcards.attribute, int(snakemake.params.bootstrap), int(snakemake.params.seed)
    )
    write_tsv(table, snakemake.output.table)


run(main, snakemake)  # noqa: F821
