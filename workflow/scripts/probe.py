"""How much subgroup information a density model's features carry: a cross-validated linear probe."""

import numpy as np

from labelbias.analysis.separability import probe_subgroup_information
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    features = np.load(snakemake.input.features)
    index = read_tsv(snakemake.input.features_index, dtype={"image_id": str})
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    test = index[index["split"] == "test"].merge(cohort, on="image_id", validate="one_to_one")
    table = probe_subgroup_information(
        features[test["feature_row"].to_numpy()], test, list(snakemake.params.attributes), seed=int(snakemake.params.seed)
    )
    write_tsv(table, snakemake.output.table)


run(main, snakemake)  # noqa: F821
