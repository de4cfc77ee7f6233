"""What each remedy buys: remedied models against the clean model, beside the scenario's own change."""

import pandas as pd

from labelbias.analysis.evaluation import remedy_table
from labelbias.analysis.plots import remedy_figure
from labelbias.analysis.reading import read_evaluations
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    found = read_evaluations(list(snakemake.input.evaluations))
    groups = list(snakemake.params.groups)
    names = list(dict.fromkeys(name for group in groups for runs in group["runs"] for name in runs))
    # Keep the config's order of threshold sources.
    evaluations = {(name, source): found[(name, source)] for source in snakemake.params.sources for name in names}
    targets = {name: tuple(target) for name, target in snakemake.params.targets.items()}
    table = remedy_table(evaluations, groups, targets, int(snakemake.params.bootstrap), int(snakemake.params.seed))
    write_tsv(table, snakemake.output.summary)
    remedy_figure(table, snakemake.output.figure)
    labels = pd.concat(
        [read_tsv(path).assign(run=name) for name, path in zip(snakemake.params.runs, snakemake.input.labels, strict=True)],
        ignore_index=True,
    )
    write_tsv(labels[["run", *[c for c in labels.columns if c != "run"]]], snakemake.output.labels)


run(main, snakemake)  # noqa: F821
