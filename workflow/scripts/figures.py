"""The report's figures: feature-space KDE grid (its numbers with the remedied models' too) and the threshold shift."""

from pathlib import Path

import pandas as pd

from labelbias.analysis.features import pc1_median_shift
from labelbias.analysis.plots import feature_kde_grid, figure_panels, threshold_figure
from labelbias.data.table import class_spec
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    scenarios = list(snakemake.params.scenarios)
    runs = [*scenarios, *snakemake.params.remedy_runs]
    pc1_all = {s: read_tsv(p, dtype={"image_id": str}) for s, p in zip(runs, snakemake.input.pc1, strict=True)}
    pc1 = {s: pc1_all[s] for s in scenarios}
    targets = {name: tuple(target) if target else (None, None) for name, target in snakemake.params.targets.items()}
    patients = read_tsv(snakemake.input.cohort, dtype={"image_id": str, "patient_id": str}).set_index("image_id")
    classes = class_spec(dict(snakemake.params.classes))
    groups = figure_panels(pc1[snakemake.params.baseline], dict(snakemake.params.panels))
    # The remedied models' shifts follow the scenarios' rows; the figure shows the scenarios.
    shifts = pc1_median_shift(
        pc1_all, snakemake.params.baseline, patients["patient_id"], groups,
        int(snakemake.params.bootstrap), int(snakemake.params.seed),
        class_column=classes.name, order=classes.order,
    )
    write_tsv(shifts, snakemake.output.pc1_shift)
    feature_kde_grid(
        pc1, targets, snakemake.params.baseline, snakemake.output.features, shifts[shifts["scenario"].isin(scenarios)],
        panels=groups, class_column=classes.name, classes=classes.labels,
    )

    scores = {}
    for scenario, predictions, labels in zip(scenarios, snakemake.input.predictions, snakemake.input.labels, strict=True):
        frame = read_tsv(predictions, dtype={"image_id": str}).merge(read_tsv(labels, dtype={"image_id": str}), on="image_id")
        scores[scenario] = frame[frame["split"] == "val"]
    thresholds = []
    for path in snakemake.input.thresholds:
        table = read_tsv(path, dtype={"subgroup": str})
        thresholds.append(table[table["attribute"] == "all"].assign(scenario=Path(path).parent.name))
    columns = ["scenario", "threshold_source", "threshold"]
    threshold_figure(scores, pd.concat(thresholds, ignore_index=True)[columns], snakemake.output.thresholds)


run(main, snakemake)  # noqa: F821
