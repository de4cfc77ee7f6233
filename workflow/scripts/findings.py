"""The study's findings (a), (b), (c), checked against this run's Table 2 with its intervals."""

import logging

from labelbias.analysis.findings import EffectSizes, check_findings
from labelbias.smk import read_tsv, run, write_tsv

log = logging.getLogger("labelbias")


def main(snakemake):
    table2 = read_tsv(snakemake.input.table2, dtype={"subgroup": str})
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    separability = {
        attribute: read_tsv(path, dtype={"subgroup": str})
        for attribute, path in zip(snakemake.params.attributes, snakemake.input.separability, strict=True)
    }
    targets = {name: tuple(target) if target else None for name, target in snakemake.params.targets.items()}
    shares = {
        attribute: cohort[attribute].astype(str).value_counts(normalize=True)
        for attribute in {target[0] for target in targets.values() if target}
    }
    sizes = EffectSizes(**{key: float(value) for key, value in dict(snakemake.params.effect_sizes).items()})
    table = check_findings(table2, targets, separability, shares, float(snakemake.params.separable_auc), sizes)
    log.info("\n%s", table[["finding", "scenario", "threshold_source", "holds"]].to_string(index=False))
    write_tsv(table, snakemake.output.table)


run(main, snakemake)  # noqa: F821
