"""The report's figures: feature-space KDE grid and the threshold shift."""

import pandas as pd

from labelbias.plots import feature_kde_grid, threshold_figure
from labelbias.smk import read_tsv, run


def main(snakemake):
    scenarios = list(snakemake.params.scenarios)
    pc1 = {s: read_tsv(p, dtype={"image_id": str}) for s, p in zip(scenarios, snakemake.input.pc1, strict=True)}
    targets = {name: tuple(target) if target else (None, None) for name, target in snakemake.params.targets.items()}
    feature_kde_grid(pc1, targets, snakemake.params.baseline, snakemake.output.features)

    scores = {}
    for scenario, predictions, labels in zip(scenarios, snakemake.input.predictions, snakemake.input.labels, strict=True):
        frame = read_tsv(predictions, dtype={"image_id": str}).merge(read_tsv(labels, dtype={"image_id": str}), on="image_id")
        scores[scenario] = frame[frame["split"] == "val"]
    table2 = read_tsv(snakemake.input.table2)
    thresholds = table2[table2["attribute"] == "all"][["scenario", "threshold_source", "threshold"]]
    threshold_figure(scores, pd.DataFrame(thresholds), snakemake.output.thresholds)


run(main, snakemake)  # noqa: F821
