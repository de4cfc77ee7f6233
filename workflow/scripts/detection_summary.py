"""How well detection finds the injected flips, per scenario, and the ranking figure."""

import pandas as pd

from labelbias.detection.confident_learning import SUMMARY_COLUMNS, detection_performance
from labelbias.analysis.plots import detection_figure
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    scenarios = list(snakemake.params.scenarios)
    rows, tables = [], {}
    for scenario, images, table in zip(scenarios, snakemake.input.images, snakemake.input.tables, strict=True):
        frame = read_tsv(images, dtype={"image_id": str})
        performance = detection_performance(frame["flipped"].to_numpy(), frame["quality"].to_numpy(), frame["flagged"].to_numpy())
        rows.append({"scenario": scenario, **performance})
        tables[scenario] = read_tsv(table)
    write_tsv(pd.DataFrame(rows)[SUMMARY_COLUMNS], snakemake.output.summary)
    targets = {name: tuple(target) if target else (None, None) for name, target in snakemake.params.targets.items()}
    detection_figure(tables, targets, snakemake.output.figure)


run(main, snakemake)  # noqa: F821
