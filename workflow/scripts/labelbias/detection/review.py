"""Looking at the images: which images go into the report's grids.

Two views, both chosen by pure functions so a test can check them without plotting:
- a grid per subgroup x fine class (EMBED: density) of training images, with the flipped ones
  over-represented so the reader sees them next to untouched images of their class;
- the validation images a model disagrees with most: the highest loss against the
  labels the scenario has (flipped images the model refuses to learn land here).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.table import canonical

DENSITIES = ("A", "B", "C", "D")


def grid_selection(
    frame: pd.DataFrame, row_attribute: str, per_cell: int, seed: int,
    columns: list[str] | tuple[str, ...] = DENSITIES, class_column: str = "density",
) -> pd.DataFrame:
    """Up to ``per_cell`` images per (subgroup, fine class) cell, about half of them flipped where flips exist.

    ``frame``: one row per image with ``image_id``, the class column, ``flipped`` and the
    row attribute. Returns ``image_id, row, column, position, flipped`` with the
    images of a cell in a seeded random order; at most one image per patient per
    cell when ``patient_id`` is given, so a cell shows different women.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    classes = frame[class_column].map(canonical)
    for row in sorted(frame[row_attribute].astype(str).unique()):
        for column in columns:
            cell = frame[(frame[row_attribute].astype(str) == row) & (classes == column)]
            if "patient_id" in cell.columns:
                cell = cell.iloc[rng.permutation(len(cell))].drop_duplicates("patient_id")
            flipped, kept = cell[cell["flipped"] == 1], cell[cell["flipped"] == 0]
            n_flipped = min(len(flipped), per_cell // 2 if len(kept) else per_cell)
            picks = pd.concat([
                flipped.iloc[rng.permutation(len(flipped))[:n_flipped]],
                kept.iloc[rng.permutation(len(kept))[: per_cell - n_flipped]],
            ])
            picks = picks.iloc[rng.permutation(len(picks))]
            chosen.append(
                pd.DataFrame(
                    {
                        "image_id": picks["image_id"].to_numpy(),
                        "row": row,
                        "column": column,
                        "position": np.arange(len(picks)),
                        "flipped": picks["flipped"].to_numpy().astype(int),
                    }
                )
            )
    return pd.concat(chosen, ignore_index=True)


def highest_loss(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` images with the highest cross-entropy of ``score`` against ``label_given``, worst first."""
    probability = np.where(frame["label_given"].to_numpy() == 1, frame["score"], 1.0 - frame["score"])
    loss = -np.log(np.clip(probability, 1e-7, 1.0))
    ranked = frame.assign(loss=loss).sort_values(["loss", "image_id"], ascending=[False, True], kind="stable")
    return ranked.head(n).reset_index(drop=True)
