"""The report's image views of one scenario: a subgroup x fine-class grid and the model's highest-loss images."""

import numpy as np

from labelbias.data.cache import open_cache
from labelbias.data.imaging import CACHE_MAX
from labelbias.analysis.plots import image_grid_figure, loss_figure
from labelbias.data.table import class_spec
from labelbias.detection.review import grid_selection, highest_loss
from labelbias.smk import read_tsv, run


def main(snakemake):
    scenario, row_attribute = snakemake.wildcards.scenario, snakemake.params.row_attribute
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    labels = read_tsv(snakemake.input.labels, dtype={"image_id": str}).rename(columns={"label_biased": "label_given"})
    frame = cohort.merge(labels, on="image_id", validate="one_to_one")
    rows = read_tsv(snakemake.input.index, dtype={"image_id": str}).set_index("image_id")["cache_row"]
    cache = open_cache(snakemake.input.cache)

    def images_of(ids):
        return {i: np.asarray(cache[rows[i]], dtype=np.float32) / CACHE_MAX for i in ids}

    classes = class_spec(dict(snakemake.params.classes))
    selection = grid_selection(
        frame[frame["split"] == "train"], row_attribute, int(snakemake.params.per_cell), int(snakemake.params.seed),
        columns=classes.order, class_column=classes.name,
    )
    image_grid_figure(
        selection,
        images_of(selection["image_id"]),
        f"{scenario}: training images per {row_attribute} and {classes.name} class (red frame: label flipped)",
        snakemake.output.grid,
        columns=classes.order,
        class_column=classes.name,
    )
    predictions = read_tsv(snakemake.input.predictions, dtype={"image_id": str})
    val = predictions[predictions["split"] == "val"][["image_id", "score"]].merge(frame, on="image_id", validate="one_to_one")
    worst = highest_loss(val, int(snakemake.params.highest_loss))
    loss_figure(
        worst,
        images_of(worst["image_id"]),
        row_attribute,
        f"{scenario}: validation images with the highest loss against the scenario's labels (red: flipped)",
        snakemake.output.loss,
        class_column=classes.name,
    )


run(main, snakemake)  # noqa: F821
