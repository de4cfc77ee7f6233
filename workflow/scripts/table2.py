"""Table 2: every scenario x threshold source x subgroup, averaged over seeds, with changes to the baseline."""

from pathlib import Path

import pandas as pd

from labelbias.analysis.evaluation import table2, table2_layout
from labelbias.analysis.reading import read_evaluations
from labelbias.smk import run, write_tsv


def main(snakemake):
    runs = {name: (scenario, int(replicate)) for name, (scenario, replicate) in snakemake.params.runs.items()}
    found = read_evaluations(list(snakemake.input.evaluations))
    # Keep the config's order of runs and threshold sources.
    evaluations = {(name, source): found[(name, source)] for name in runs for source in snakemake.params.sources}
    table = table2(evaluations, runs, snakemake.params.baseline, int(snakemake.params.bootstrap), int(snakemake.params.seed))
    write_tsv(table, snakemake.output.table)
    by_seed = pd.concat(
        [
            frame.assign(run=name, scenario=runs[name][0], replicate=runs[name][1])
            for (name, _), (frame, _) in evaluations.items()
        ],
        ignore_index=True,
    )
    write_tsv(by_seed[["run", "scenario", "replicate", *[c for c in by_seed.columns if c not in ("run", "scenario", "replicate")]]], snakemake.output.by_seed)
    seeds = int(table["n_seeds"].max())
    sections = []
    for attribute in snakemake.params.attributes:
        layout = table2_layout(table, attribute, list(snakemake.params.scenarios), snakemake.params.baseline)
        sections.append(f"<h3>{attribute}</h3>\n" + layout.to_html(index=False, border=0, classes="table2", escape=False))
    interval = (
        "the paired patient bootstrap (test patients resampled with all their images, the same for both models)"
        if seeds == 1
        else f"a bootstrap over the {seeds} seeds and the test patients"
    )
    html = (
        "<html><head><meta charset='utf-8'><style>"
        "table.table2{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "table.table2 td,table.table2 th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "</style></head><body>"
        f"<p>Test TPR and FPR against clean labels at the validation threshold closest to "
        f"{100 * float(snakemake.params.target_fpr):g}% FPR; change to the {snakemake.params.baseline} "
        f"model in brackets{' (mean over ' + str(seeds) + ' seeds)' if seeds > 1 else ''}. <b>Bold</b>: the 95% "
        f"interval of the change, from {interval}, excludes 0; other changes are within noise and "
        "are not findings.</p>" + "\n".join(sections) + "</body></html>"
    )
    Path(snakemake.output.html).write_text(html)


run(main, snakemake)  # noqa: F821
