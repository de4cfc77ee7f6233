"""Reading the per-run evaluation files back, keyed by run and threshold source."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..smk import read_tsv


def read_evaluations(paths: list[str]) -> dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]]:
    """``results/eval/{run}/{source}.tsv`` and ``.counts.tsv`` -> {(run, source): (table, counts)}.

    The run is the folder's name (run names may contain dots), the source the file's
    first name part; the order of ``paths`` does not matter.
    """
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    counts: dict[tuple[str, str], pd.DataFrame] = {}
    for path in map(Path, paths):
        source, _, rest = path.name.partition(".")
        target = counts if rest == "counts.tsv" else tables
        target[(path.parent.name, source)] = read_tsv(path, dtype={"subgroup": str})
    if set(tables) != set(counts):
        raise ValueError(f"evaluation tables and counts do not pair up: {sorted(set(tables) ^ set(counts))}")
    return {key: (tables[key], counts[key]) for key in tables}
