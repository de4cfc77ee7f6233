"""How many relabelled validation patients recover most of the lost TPR, and the audit figure."""

from labelbias.detection.audit import audit_summary
from labelbias.analysis.plots import audit_figure
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    scenarios = list(snakemake.params.scenarios)
    curves = {
        scenario: read_tsv(path, dtype={"subgroup": str})
        for scenario, path in zip(scenarios, snakemake.input.tables, strict=True)
    }
    targets = {scenario: tuple(snakemake.params.targets[scenario]) for scenario in scenarios}
    summary = audit_summary(
        curves, targets, float(snakemake.params.recover_share), float(snakemake.params.min_tpr_lost)
    )
    write_tsv(summary, snakemake.output.summary)
    audit_figure(curves, targets, snakemake.output.figure)


run(main, snakemake)  # noqa: F821
