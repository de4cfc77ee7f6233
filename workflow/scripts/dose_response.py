"""Dose-response: each subgroup's TPR and FPR change against the bias rate, per threshold source."""

from labelbias.analysis.evaluation import dose_response
from labelbias.analysis.plots import dose_response_figure
from labelbias.analysis.reading import read_evaluations
from labelbias.smk import run, write_tsv


def main(snakemake):
    runs = {name: (scenario, float(rate), int(rep)) for name, (scenario, rate, rep) in snakemake.params.runs.items()}
    baseline_runs = {int(rep): name for rep, name in snakemake.params.baseline_runs.items()}
    found = read_evaluations(list(snakemake.input.evaluations))
    names = [*runs, *baseline_runs.values()]
    evaluations = {(name, source): found[(name, source)] for name in names for source in snakemake.params.sources}
    table = dose_response(evaluations, runs, baseline_runs, int(snakemake.params.bootstrap), int(snakemake.params.seed))
    write_tsv(table, snakemake.output.table)
    targets = snakemake.params.targets
    table = table.assign(
        target_attribute=table["scenario"].map(lambda s: targets[s][0]),
        target_subgroup=table["scenario"].map(lambda s: targets[s][1]),
    )
    dose_response_figure(table, snakemake.output.figure)


run(main, snakemake)  # noqa: F821
