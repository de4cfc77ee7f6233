"""Train a ResNet-18 for one target: a scenario's density labels or a subgroup attribute."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from labelbias.data.cache import open_cache
from labelbias.data.perturb import Perturbation, PerturbedCache
from labelbias.models.model import read_backbone
from labelbias.smk import read_tsv, run, write_tsv
from labelbias.models.train import TrainSettings, joint_target, noise_matrices, train_target

log = logging.getLogger("labelbias")


def main(snakemake):
    cohort = read_tsv(snakemake.input.cohort, dtype={"image_id": str})
    index = read_tsv(snakemake.input.index, dtype={"image_id": str})
    frame = cohort.merge(index, on="image_id", validate="one_to_one")
    target = dict(snakemake.params.target)
    if target["kind"] == "labels":
        labels = read_tsv(snakemake.input.labels, dtype={"image_id": str})
        if "dropped" in labels:
            # A remedy's dropped images leave the run: no training, selection or threshold on them.
            log.info("%d images dropped by the remedy", int(labels["dropped"].sum()))
            labels = labels[labels["dropped"] == 0]
        noise_columns = [column for column in labels.columns if column.startswith("noise_")]
        frame = frame.merge(labels[["image_id", target["column"], *noise_columns]], on="image_id", validate="one_to_one")
    elif "+" in target["column"]:
        frame[target["column"]] = joint_target(frame, target["column"])
    settings = TrainSettings(**dict(snakemake.params.train))
    checkpoint = Path(snakemake.params.checkpoint)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    backbone = None
    if "backbone" in snakemake.input.keys():
        backbone = read_backbone(snakemake.input.backbone)
        log.info("starting from the backbone %s", snakemake.input.backbone)
    log.info("target %s, %d classes from column %s, settings %s", target, frame[target["column"]].nunique(), target["column"], settings)
    cache = open_cache(snakemake.input.cache)
    if snakemake.params.perturbation:
        perturbation = Perturbation(**dict(snakemake.params.perturbation))
        cache = PerturbedCache(cache, perturbation)
        log.info("training and testing on perturbed images: %s", perturbation.name)
    noise = noise_matrices(frame) if target["kind"] == "labels" else None
    if noise is not None:
        log.info("forward loss correction with each image's noise matrix")
    result, classes, predictions, features, features_index = train_target(
        frame, target["column"], cache, settings, checkpoint, backbone, noise
    )
    log.info("best epoch %d, validation AUC %.4f", result.best_epoch, result.best_val_auc)
    torch.save({"state_dict": result.model.state_dict(), "classes": classes, "best_epoch": result.best_epoch}, snakemake.output.model)
    write_tsv(predictions, snakemake.output.predictions)
    with open(snakemake.output.features, "wb") as handle:
        np.save(handle, features)
    write_tsv(features_index, snakemake.output.features_index)
    write_tsv(pd.DataFrame(result.history), snakemake.output.history)
    checkpoint.unlink(missing_ok=True)  # finished: the outputs now stand for it


run(main, snakemake)  # noqa: F821
