"""Real Snakemake runs of the workflow on tiny data: outputs, determinism, reruns and bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_helpers import (
    LOCAL_ENV, ROOT, SNAKEMAKE, TINY, planned_rules, run_ok, snakemake, snakemake_command, write_config,
)

pytestmark = pytest.mark.workflow  # every test here runs Snakemake jobs


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"image_id": str})


def test_outputs_follow_the_contract(tiny_run):
    cohort = read(tiny_run / "results/data/cohort.tsv")
    assert list(cohort.columns[:10]) == [
        "image_id", "patient_id", "exam_id", "manufacturer", "view", "laterality",
        "density", "label", "split", "pseudo_subgroup",
    ]
    assert set(cohort["manufacturer"]) == {"HOLO", "GEMS", "FUJI"}
    assert set(cohort["split"]) == {"train", "val", "test"}
    assert set(cohort["pseudo_subgroup"]) == {"PS1", "PS2", "PS3"}
    assert cohort["label"].value_counts().nunique() == 1  # balanced
    assert cohort.groupby("patient_id")["split"].nunique().max() == 1
    table1 = read(tiny_run / "results/data/table1.tsv")
    assert list(table1.columns) == ["manufacturer", "total", "percent", "A", "B", "C", "D"]
    for scenario in ["clean", "PS1", "FUJI", "GEMS", "HOLO"]:
        labels = read(tiny_run / f"results/labels/{scenario}.tsv")
        assert list(labels.columns) == ["image_id", "label_clean", "label_biased", "flipped"]
        merged = cohort.merge(labels, on="image_id", validate="one_to_one")
        assert len(merged) == len(cohort) and (merged["label_clean"] == merged["label"]).all()
        assert ((merged["label_biased"] != merged["label_clean"]) == (merged["flipped"] == 1)).all()
        if scenario != "clean" and scenario != "PS1":
            assert set(merged.loc[merged["flipped"] == 1, "manufacturer"]) <= {scenario}
    assert read(tiny_run / "results/labels/clean.tsv")["flipped"].sum() == 0
    assert read(tiny_run / "results/labels/HOLO.tsv")["flipped"].sum() > 0
    cache_index = read(tiny_run / "results/cache/index.tsv")
    assert set(cohort["image_id"]) <= set(cache_index["image_id"])
    for log in ["synthetic_embed", "select_images", "cohort", "merge_cache", "train/HOLO", "separability/manufacturer"]:
        assert (tiny_run / f"logs/{log}.log").stat().st_size > 0


def test_models_write_predictions_features_and_separability(tiny_run):
    cohort = read(tiny_run / "results/data/cohort.tsv")
    evaluated = set(cohort.loc[cohort["split"] != "train", "image_id"])
    for scenario in ["clean", "PS1", "FUJI", "GEMS", "HOLO"]:
        predictions = read(tiny_run / f"results/models/{scenario}/predictions.tsv")
        assert list(predictions.columns[:3]) == ["image_id", "split", "score"]
        assert set(predictions["image_id"]) == evaluated and set(predictions["split"]) == {"val", "test"}
        assert predictions["score"].between(0, 1).all()
        features = np.load(tiny_run / f"results/models/{scenario}/features.npy")
        assert features.shape == (len(predictions), 512)
        history = read(tiny_run / f"results/models/{scenario}/history.tsv")
        assert len(history) == 2 and {"loss", "val_auc", "images_per_second"} <= set(history.columns)
        assert "epoch 2/2" in (tiny_run / f"logs/train/{scenario}.log").read_text()
        assert not (tiny_run / f"results/models/{scenario}/checkpoint.pt").exists()
        probe = read(tiny_run / f"results/probe/{scenario}.tsv")
        assert {"manufacturer", "pseudo_subgroup", "race"} <= set(probe["attribute"])
    for attribute, groups in [("manufacturer", {"HOLO", "GEMS", "FUJI"}), ("pseudo_subgroup", {"PS1", "PS2", "PS3"})]:
        table = read(tiny_run / f"results/separability/{attribute}.tsv")
        assert set(table["subgroup"]) == groups
        assert table["auc"].between(0, 1).all() and (table["ci_low"] <= table["ci_high"]).all()
    # scenarios share initialisation and data order: the clean and PS1 models differ only by labels
    clean = read(tiny_run / "results/models/clean/history.tsv")
    assert (clean["loss"] > 0).all()


def test_evaluation_writes_table2_and_figures(tiny_run):
    table = read(tiny_run / "results/eval/table2.tsv")
    for column in ["scenario", "threshold_source", "attribute", "subgroup", "threshold", "tpr", "fpr",
                   "tpr_change_pct", "fpr_change_pct", "n_pos", "n_neg"]:
        assert column in table.columns
    assert set(table["scenario"]) == {"clean", "PS1", "FUJI", "GEMS", "HOLO"}
    assert set(table["threshold_source"]) == {"clean", "biased"}
    assert {"manufacturer", "pseudo_subgroup"} <= set(table["attribute"])
    clean = table[table["scenario"] == "clean"]
    assert set(clean["threshold_source"]) == {"clean", "biased"}
    assert (clean["tpr_change_pct"].fillna(0) == 0).all() and (clean["fpr_change_pct"].fillna(0) == 0).all()
    # the clean scenario's biased labels are its clean labels: one threshold for both sources
    assert clean.groupby("threshold_source")["threshold"].first().nunique() == 1
    assert table["tpr"].dropna().between(0, 1).all()
    for figure in ["feature_space.png", "thresholds.png"]:
        assert (tiny_run / "results/figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tiny_run / "results/eval/table2.html").read_text()
    assert "TPR FUJI" in html and "FPR PS3" in html
    assert "Workflow commit" in (tiny_run / "results/provenance.html").read_text()
    shift = read(tiny_run / "results/eval/pc1_shift.tsv")
    assert list(shift.columns) == [
        "scenario", "attribute", "subgroup", "density", "median_baseline", "median_scenario",
        "shift", "ci_low", "ci_high", "n_images", "n_patients",
    ]
    scenarios = set(shift["scenario"][~shift["scenario"].str.contains("@")])  # remedy runs: test_remedy.py
    assert scenarios == {"PS1", "FUJI", "GEMS", "HOLO"} and set(shift["density"]) <= set("ABCD")
    assert (shift["shift"] - (shift["median_scenario"] - shift["median_baseline"])).abs().max() < 1e-9
    page = (tiny_run / "results/front_page.rst").read_text()
    assert "Findings" in page and "Table 2" in page and "data:image/png;base64," in page


def test_clean_audit_tables_end_at_the_evaluated_thresholds(tiny_run):
    summary = read(tiny_run / "results/audit/summary.tsv")
    assert list(summary.columns) == [
        "scenario", "attribute", "subgroup", "biased_subgroup", "strategy", "tpr_biased", "tpr_clean",
        "tpr_lost", "recover_share", "n_to_recover", "n_val_patients",
    ]
    assert set(summary["scenario"]) == {"PS1", "FUJI", "GEMS", "HOLO"} and set(summary["strategy"]) == {"random", "suspect"}
    # one biased subgroup per scenario, once per strategy
    assert summary.groupby("scenario")["biased_subgroup"].sum().to_dict() == {"FUJI": 2, "GEMS": 2, "HOLO": 2, "PS1": 2}
    for scenario in ["PS1", "FUJI", "GEMS", "HOLO"]:
        curve = read(tiny_run / f"results/audit/{scenario}.tsv")
        overall = curve[(curve["attribute"] == "all") & (curve["strategy"] == "random")]
        ends = overall.groupby("n_requested")["threshold"].first()
        for source, n in [("biased", ends.index.min()), ("clean", ends.index.max())]:
            evaluated = read(tiny_run / f"results/eval/{scenario}/{source}.tsv")
            assert ends.loc[n] == pytest.approx(evaluated.loc[evaluated["subgroup"] == "all", "threshold"].iloc[0])
    assert (tiny_run / "results/figures/audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backbone_is_pretrained_on_held_out_patients_only(tiny_run):
    cohort = read(tiny_run / "results/data/cohort.tsv")
    held_out = read(tiny_run / "results/data/held_out.tsv")
    assert len(held_out) > 0 and set(held_out["split"]) == {"train", "val"}
    assert set(held_out["patient_id"]).isdisjoint(cohort["patient_id"])
    backbone = read(tiny_run / "results/backbone/predictions.tsv")
    assert set(backbone["image_id"]) == set(held_out.loc[held_out["split"] == "val", "image_id"])
    assert {f"prob_{d}" for d in "ABCD"} <= set(backbone.columns)  # the backbone learned BI-RADS density
    for scenario in ["clean", "HOLO"]:
        assert "starting from the backbone results/backbone/model.pt" in (tiny_run / f"logs/train/{scenario}.log").read_text()
    assert "starting from the backbone" in (tiny_run / "logs/separability/manufacturer.log").read_text()


def test_fewer_cores_train_the_same_backbone(tiny_run, tmp_path):
    # The backbone asks for two threads; `--cores 1` gives its job one core. The
    # thread count comes from the config, so the arithmetic (and the model) is the same.
    # Only the backbone trains again: its inputs are the tiny run's own.
    workdir = tmp_path / "one_core"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    target = "results/backbone/predictions.tsv"
    (workdir / target).unlink()
    result = snakemake(workdir, "--cores", "1", target, "--forcerun", "pretrain_backbone")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / target).read_bytes() == (tiny_run / target).read_bytes()


def test_detection_and_image_review_outputs(tiny_run):
    cohort = read(tiny_run / "results/data/cohort.tsv")
    pool = cohort[cohort["split"] != "test"]
    folds = read(tiny_run / "results/detection/folds.tsv")
    assert set(folds["image_id"]) == set(pool["image_id"]) and sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]
    assert folds.groupby("patient_id")["fold"].nunique().max() == 1
    summary = read(tiny_run / "results/detection/summary.tsv")
    assert list(summary.columns[:4]) == ["scenario", "auroc", "precision", "recall"]
    assert list(summary["scenario"]) == ["clean", "PS1", "FUJI", "GEMS", "HOLO"]
    assert summary.set_index("scenario").loc["clean", ["auroc", "recall"]].isna().all()
    for scenario in ["clean", "PS1", "FUJI", "GEMS", "HOLO"]:
        table = read(tiny_run / f"results/detection/{scenario}.tsv")
        assert list(table.columns[:6]) == ["attribute", "subgroup", "error_rate", "ci_low", "ci_high", "rank"]
        assert set(table["subgroup"]) == {"HOLO", "GEMS", "FUJI", "PS1", "PS2", "PS3"}
        assert table["error_rate"].between(0, 1).all()
        assert (table.groupby("attribute")["rank"].min() == 1).all()
        images = read(tiny_run / f"results/detection/{scenario}.images.tsv")
        labels = read(tiny_run / f"results/labels/{scenario}.tsv")
        merged = images.merge(labels, on="image_id", validate="one_to_one")
        assert set(images["image_id"]) == set(pool["image_id"])
        assert (merged["label_given"] == merged["label_biased"]).all()
        # the injected rate of a subgroup is the share of its pool images the scenario flipped
        vendor = table[table["attribute"] == "manufacturer"].set_index("subgroup")["injected_rate"]
        flipped = images.groupby("manufacturer")["flipped"].mean()
        assert np.allclose(vendor.sort_index(), flipped.sort_index(), atol=1e-5)
        for figure in [f"images/{scenario}.png", f"highest_loss/{scenario}.png"]:
            assert (tiny_run / "results/figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tiny_run / "results/figures/detection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finetuned_cross_fitting_trains_one_model_per_fold(tmp_path, tiny_run):
    workdir = tmp_path / "finetune"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    edited = yaml.safe_load((workdir / "config.yaml").read_text())
    edited["detection"] = {"model": "finetune", "folds": 2, "epochs": 1}
    write_config(workdir, edited)
    result = snakemake(workdir, "results/detection/HOLO.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    for fold in (0, 1):
        log = (workdir / f"logs/detection/HOLO.fold{fold}.log").read_text()
        assert "epoch 1/1" in log and f"fold {fold}: fitted on" in log
        assert "fine-tuning from the backbone results/backbone/model.pt" in log
    images = read(workdir / "results/detection/HOLO.images.tsv")
    folds = read(workdir / "results/detection/folds.tsv")
    assert sorted(images["fold"].unique()) == [0, 1] and set(images["image_id"]) == set(folds["image_id"])
    assert images["prob_1"].between(0, 1).all()


def test_parts_switched_off_plan_no_jobs(tmp_path, tiny_run):
    workdir = tmp_path / "off"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    edited = yaml.safe_load((workdir / "config.yaml").read_text())
    edited["detection"] = {"enabled": False}
    edited["image_review"] = {"enabled": False}
    edited["remedies"] = {"enabled": False}  # most remedies use detection (tests/test_remedy.py)
    write_config(workdir, edited)
    shutil.rmtree(workdir / "results/detection")
    shutil.rmtree(workdir / "results/figures/images")
    shutil.rmtree(workdir / "results/remedies")
    # the provenance page, which records the config, is written again, the audits lose their
    # detection-chosen curves (an input fewer), and Fig. 1's numbers and the front page lose
    # the remedy runs; nothing else
    assert sorted(planned_rules(workdir)) == sorted(
        ["all", "provenance", "audit_summary", "front_page", "figures"] + ["audit"] * 4
    )
    # and a rule switched off claims no other rule's paths (one InputFunctionException each)
    result = snakemake(workdir, "-n")
    assert result.returncode == 0 and "InputFunctionException" not in result.stdout + result.stderr


def test_seeds_rates_and_perturbations_add_jobs_and_outputs(tmp_path, tiny_run):
    workdir = tmp_path / "axes"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    edited = yaml.safe_load((workdir / "config.yaml").read_text())
    edited["replicates"] = {"seeds": 2}
    edited["dose_response"] = {"enabled": True, "rates": [0.1, 0.5], "scenarios": ["FUJI"]}
    edited["perturbation"] = {
        "enabled": True,
        "attributes": ["manufacturer", "race"],
        "list": [{"kind": "lowpass", "strength": 4}],
    }
    write_config(workdir, edited)
    planned = planned_rules(workdir)
    # new models only: every scenario's second seed, FUJI at two more rates (x2 seeds); no existing model retrains
    # and the second seed of the four HOLO remedy runs (remedies.seeds 0: every seed)
    assert planned.count("train_density") == 5 + 4 + 4 and planned.count("labels") == 9
    # second seeds of both separability attributes; race unperturbed and 2 attributes x 1 perturbation,
    # all on the first seed (the perturbation grid uses one seed)
    assert planned.count("train_separability") == 2 + 1 + 2
    # the only new cross-fit: detection of HOLO's second seed, which its remedy runs start from
    assert "pretrain_backbone" not in planned and planned.count("crossfit") == 1 and "cohort" not in planned
    # separability.seeds: 1 keeps the density models' second seeds but drops the classifiers'
    write_config(workdir, {**edited, "separability": {**edited["separability"], "seeds": 1}})
    one_seed = planned_rules(workdir)
    assert one_seed.count("train_density") == 5 + 4 + 4 and one_seed.count("train_separability") == 1 + 2
    write_config(workdir, edited)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-3000:]

    table = read(workdir / "results/eval/table2.tsv")
    assert (table["n_seeds"] == 2).all() and {"tpr_change_ci_low", "tpr_change_supported"} <= set(table.columns)
    by_seed = read(workdir / "results/eval/table2_by_seed.tsv")
    assert set(by_seed["replicate"]) == {0, 1} and set(by_seed["run"]) >= {"HOLO", "HOLO@seed1"}
    # Table 2's TPR is the mean of the seeds' TPRs
    holo = by_seed[(by_seed["scenario"] == "HOLO") & (by_seed["threshold_source"] == "biased") & (by_seed["subgroup"] == "all")]
    row = table[(table["scenario"] == "HOLO") & (table["threshold_source"] == "biased") & (table["subgroup"] == "all")]
    assert row["tpr"].iloc[0] == pytest.approx(holo["tpr"].mean())
    dose = read(workdir / "results/eval/dose_response.tsv")
    assert set(dose["scenario"]) == {"FUJI"} and sorted(dose["rate"].unique()) == [0.1, 0.3, 0.5]
    assert set(dose["threshold_source"]) == {"clean", "biased"} and (dose["n_seeds"] == 2).all()
    flips = {rate: set(read(workdir / f"results/labels/{name}.tsv").query("flipped == 1")["image_id"])
             for rate, name in [(0.1, "FUJI@rate0.1"), (0.3, "FUJI"), (0.5, "FUJI@rate0.5")]}
    assert flips[0.1] <= flips[0.3] <= flips[0.5] and len(flips[0.1]) < len(flips[0.5])
    perturbed = read(workdir / "results/perturbation/separability.tsv")
    assert set(perturbed["attribute"]) == {"manufacturer", "race"}
    assert set(perturbed["perturbation"]) == {"none", "lowpass4"}
    assert "training and testing on perturbed images: lowpass4" in (workdir / "logs/separability/race@lowpass4.log").read_text()
    separability = read(workdir / "results/separability/manufacturer.tsv")
    assert (separability["n_seeds"] == 2).all()
    for figure in ["dose_response.png", "perturbation.png"]:
        assert (workdir / "results/figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_target_fpr_edit_reruns_evaluation_only(tmp_path, tiny_run):
    workdir = tmp_path / "fpr"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    edited = yaml.safe_load((workdir / "config.yaml").read_text())
    edited["evaluation"] = {**edited.get("evaluation", {}), "target_fpr": 0.05}
    write_config(workdir, edited)
    planned = planned_rules(workdir)
    assert "train_density" not in planned and "train_separability" not in planned
    assert sorted(set(planned)) == [
        "all", "audit", "audit_summary", "evaluate", "figures", "findings", "front_page", "provenance",
        "remedy_summary", "table2",
    ]
    # Five scenarios' and four remedy runs' evaluations, with both threshold sources.
    assert planned.count("evaluate") == 18 and planned.count("audit") == 4


def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path, tiny_run):
    config = {**TINY, "scenarios": {"clean": {}},
              "separability": {"attributes": [], "bootstrap": 10, "images_per_epoch": 0},
              "train": {"epochs": 4, "batch_size": 16, "lr": 0.001, "lr_schedule": "constant",
                        "select_epoch": "best_val_auc"},
              "probe": {"attributes": ["manufacturer"]}}
    reference = run_ok(tmp_path / "reference", config)

    workdir = tmp_path / "killed"
    write_config(workdir, config)
    # Reuse the generated data so the test spends its time in training.
    shutil.copytree(tiny_run / "results/synthetic", workdir / "results/synthetic")
    process = subprocess.Popen(
        snakemake_command(),
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=LOCAL_ENV,
    )
    checkpoint = workdir / "results/models/clean/checkpoint.pt"
    deadline = time.time() + 600
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (workdir / "results/models/clean/predictions.tsv").exists()

    assert snakemake(workdir, "--unlock").returncode == 0
    result = snakemake(workdir, "--rerun-incomplete")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workdir / "logs/train/clean.log").read_text()
    assert "resuming from the checkpoint of epoch" in log
    resumed = read(workdir / "results/models/clean/history.tsv")
    expected = read(reference / "results/models/clean/history.tsv")
    columns = [c for c in expected.columns if c not in ("images_per_second", "train_seconds")]
    pd.testing.assert_frame_equal(resumed[columns], expected[columns], check_exact=True)
    # Same machine, same config: every other table byte for byte, interrupted or not.
    tables = sorted(p.relative_to(reference) for p in (reference / "results").rglob("*.tsv") if p.name != "history.tsv")
    assert Path("results/models/clean/predictions.tsv") in tables and Path("results/eval/table2.tsv") in tables
    for relative in tables:
        assert (workdir / relative).read_bytes() == (reference / relative).read_bytes(), relative


def test_same_seed_gives_byte_identical_data_tables(tiny_run, tmp_path):
    # Up to the labels and the detection folds; trained outputs are compared byte for
    # byte in test_killed_training_resumes_and_matches_an_uninterrupted_run.
    compared = [
        "results/synthetic/tables/EMBED_OpenData_metadata.csv",
        "results/synthetic/tables/EMBED_OpenData_clinical.csv",
        "results/data/images.tsv",
        "results/data/cohort.tsv",
        "results/data/table1.tsv",
        *[f"results/labels/{s}.tsv" for s in ["clean", "PS1", "FUJI", "GEMS", "HOLO"]],
        "results/data/held_out.tsv",
        "results/cache/images.npy",
        "results/detection/folds.tsv",
    ]
    second = tmp_path / "again"
    write_config(second, TINY)
    result = snakemake(second, *compared)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (second / "results/models").exists()
    for relative in compared:
        assert (tiny_run / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_config_edits_rerun_only_affected_jobs(tmp_path, tiny_run):
    workdir = tmp_path / "edit"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    assert planned_rules(workdir) == []
    edited = yaml.safe_load((workdir / "config.yaml").read_text())
    edited["scenarios"] = {
        "clean": {},
        "PS1": {"attribute": "pseudo_subgroup", "subgroup": "PS1"},
        "FUJI": {"attribute": "manufacturer", "subgroup": "FUJI", "rate": 0.5},
        "GEMS": {"attribute": "manufacturer", "subgroup": "GEMS"},
        "HOLO": {"attribute": "manufacturer", "subgroup": "HOLO"},
        "Asian": {"attribute": "race", "subgroup": "Asian"},
    }
    write_config(workdir, edited)
    # FUJI's rate changed and one scenario is new: their labels, models, probes, PC1 and
    # evaluations, then the tables that gather all scenarios. Nothing upstream, no other model.
    expected = ["labels", "train_density", "probe", "pc1", "evaluate", "evaluate", "image_review", "detect"] * 2
    expected += ["crossfit"] * 2
    expected += ["audit"] * 2
    expected += ["table2", "findings", "figures", "detection_summary", "audit_summary", "front_page", "provenance", "all"]
    assert sorted(planned_rules(workdir)) == sorted(expected)


def test_a_density_setting_given_in_another_config_file_reruns_no_upstream_job(tmp_path, tiny_run):
    """Snakemake merges a --configfile's keys first: settings must not depend on key order."""
    workdir = tmp_path / "override"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    (workdir / "more.yaml").write_text(yaml.safe_dump({"train": {"lr": 0.0005}}))
    planned = planned_rules(workdir, "--configfile", "more.yaml")
    # the five scenarios' models and the four remedy runs, which train with the same settings
    assert planned.count("train_density") == 5 + 4 and planned.count("train_separability") == 2
    upstream = {"synthetic_embed", "select_images", "preprocess_shard", "merge_cache", "cohort", "labels",
                "pretrain_backbone", "backbone_features", "detection_folds", "crossfit", "detect"}
    assert not upstream & set(planned), sorted(upstream & set(planned))


def test_config_error_stops_before_any_job(tmp_path):
    workdir = tmp_path / "bad"
    bad = {**TINY, "cohort": {"split": {"train": 0.6, "val": 0.3, "test": 0.2}}}
    write_config(workdir, bad)
    result = snakemake(workdir)
    assert result.returncode != 0
    assert "cohort.split: train + val + test must sum to 1" in result.stderr
    assert not (workdir / "results").exists()
    write_config(workdir, {**TINY, "scenarios": {"clean": {}, "X": {"attribute": "manufacturer", "subgroup": "SIEMENS"}}})
    result = snakemake(workdir)
    assert result.returncode != 0 and "scenarios.X.subgroup: unknown vendor 'SIEMENS'" in result.stderr
    assert not (workdir / "results").exists()


def test_schema_errors_print_one_line_each_and_no_traceback(tmp_path):
    workdir = tmp_path / "schema"
    bad = {**TINY, "sede": 1, "train": {**TINY["train"], "epochs": 0}, "scenarios": {"..": {}, "clean": {}}}
    write_config(workdir, bad)
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "config: unknown key 'sede' at the top level (did you mean 'seed'?)",
        "config: scenarios: name '..' is not allowed: names become folder and file names (results/models/NAME/, "
        "results/labels/NAME.tsv): use letters, digits, '_' and '-', starting with a letter or digit",
        "config: train.epochs = 0 must be at least 1",
    ]
    assert "Traceback" not in result.stdout + result.stderr and not (workdir / "results").exists()
    write_config(workdir, {**TINY, "scenarios": {}})
    result = snakemake(workdir, "-n")
    assert result.returncode != 0 and result.stderr.strip() == "config: scenarios is empty: give at least 1 entry"


def _embed_config(embed_dir: Path, max_unreadable: float) -> dict:
    return {
        "seed": 1,
        "data": {
            "source": "embed",
            "embed": {
                "metadata": str(embed_dir / "tables/metadata.csv"),
                "clinical": str(embed_dir / "tables/clinical.csv"),
                "image_root": str(embed_dir),
            },
        },
        "cohort": {"split": {"train": 0.4, "val": 0.2, "test": 0.4}, "stratify": []},
        # Five patients: too few to hold some out for a backbone; real EMBED runs start from ImageNet.
        "backbone": {"init": "imagenet"},
        "preprocess": {"height": 32, "width": 24, "shards": 2, "max_unreadable_fraction": max_unreadable},
        "scenarios": {"clean": {}, "HOLO": {"attribute": "manufacturer", "subgroup": "HOLO"}},
        # The recipe these tests were written with (the schema's defaults before they became config.yaml's).
        "train": {"epochs": 4, "lr": 0.001, "lr_schedule": "constant", "select_epoch": "best_val_auc"},
        "separability": {"images_per_epoch": 0},
        "replicates": {"seeds": 1},
    }


def test_real_embed_layout_with_a_corrupt_dicom(embed_dir, tmp_path):
    corrupt = embed_dir / "images/cohort_1/10000003/1.2.3.31/1.2.3.31.2/1.2.3.31.2.1.dcm"
    corrupt.write_bytes(corrupt.read_bytes()[:400])  # truncated mid-header
    raw_tables = {p: p.read_bytes() for p in (embed_dir / "tables").iterdir()}

    strict = tmp_path / "strict"
    write_config(strict, _embed_config(embed_dir, 0.0))
    result = snakemake(strict)
    assert result.returncode != 0
    assert "1 of 16 images (6.2%) are unreadable" in result.stderr and str(corrupt) in result.stderr
    assert f"{corrupt}: {corrupt}" not in result.stderr
    assert "All 1 are listed in logs/unreadable_images.tsv" not in result.stderr  # the one is in the message
    unreadable = read(strict / "logs/unreadable_images.tsv")  # kept after the failed job
    assert list(unreadable["image_path"]) == [str(corrupt)] and unreadable["reason"].str.len().min() > 0
    assert not (strict / "results/cache/images.npy").exists()
    assert not (strict / "results/data/cohort.tsv").exists()

    tolerant = tmp_path / "tolerant"
    write_config(tolerant, _embed_config(embed_dir, 0.1))
    # 16 images are too few to train on: this run stops at the data layer.
    result = snakemake(tolerant, "results/data/cohort.tsv", "results/labels/HOLO.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    qc = read(tolerant / "results/data/qc.tsv")
    bad = qc[qc["status"] == "unreadable"]
    assert list(bad["image_path"]) == [str(corrupt)]
    cohort = read(tolerant / "results/data/cohort.tsv")
    assert "1.2.3.31.2.1" not in set(cohort["image_id"])
    assert set(cohort["patient_id"]) <= {10000001, 10000002, 10000003, 10000007, 10000008}
    # raw inputs are never modified
    assert {p: p.read_bytes() for p in (embed_dir / "tables").iterdir()} == raw_tables


def test_bad_table_fails_with_file_and_line(embed_dir, tmp_path):
    clinical = embed_dir / "tables/clinical.csv"
    lines = clinical.read_text().splitlines()
    lines[2] = lines[2].replace(",2.0,", ",two,")
    clinical.write_text("\n".join(lines) + "\n")
    workdir = tmp_path / "badtable"
    write_config(workdir, _embed_config(embed_dir, 0.1))
    result = snakemake(workdir)
    assert result.returncode != 0
    assert f"{clinical}: column 'tissueden' has a non-numeric value 'two' on line 3" in result.stderr
    assert not (workdir / "results/data/images.tsv").exists()


def test_lint_and_format_are_clean():
    lint = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    snakefmt = str(Path(sys.executable).parent / "snakefmt")
    fmt = subprocess.run([snakefmt, "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert fmt.returncode == 0, fmt.stderr
