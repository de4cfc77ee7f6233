"""Separability under perturbation: AUC of every attribute's classifiers per perturbation, and its figure."""

import pandas as pd

from labelbias.analysis.plots import perturbation_figure
from labelbias.analysis.separability import separability_table
from labelbias.smk import read_tsv, run, write_tsv


def main(snakemake):
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    groups: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for path, (attribute, perturbation, _) in zip(snakemake.input.predictions, snakemake.params.classifiers.values(), strict=True):
        groups.setdefault((attribute, perturbation), []).append(read_tsv(path, dtype={"image_id": str}))
    frames = []
    for (attribute, perturbation), predictions in groups.items():
        table = separability_table(predictions, cohort, attribute, int(snakemake.params.bootstrap), int(snakemake.params.seed))
        spec = snakemake.params.perturbations.get(perturbation, {"kind": "none", "strength": 0.0})
        macro = {"subgroup": "all (macro)", "auc": round(float(table["auc"].mean()), 4), "n_seeds": len(predictions)}
        table = pd.concat([table, pd.DataFrame([macro])], ignore_index=True)
        frames.append(
            table.assign(attribute=attribute, perturbation=perturbation or "none", kind=spec["kind"], strength=spec["strength"])
        )
    columns = ["attribute", "perturbation", "kind", "strength", "subgroup", "auc", "ci_low", "ci_high", "n_seeds"]
    result = pd.concat(frames, ignore_index=True)[columns]
    write_tsv(result, snakemake.output.table)
    perturbation_figure(result, snakemake.output.figure)


run(main, snakemake)  # noqa: F821
