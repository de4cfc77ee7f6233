"""What fixing the training labels buys: remedied labels, the remedy runs, and their summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelbias.analysis.evaluation import REMEDY_COLUMNS, compare_remedy, compare_to_baseline, remedy_table
from labelbias.detection.remedy import (
    REMEDIES,
    REMEDY_LABEL_COLUMNS,
    audit_size,
    error_rate,
    remedy_labels,
    subgroup_confident_joints,
)
from labelbias.errors import DataQualityError
from labelbias.runs import plan_runs
from labelbias.schema import schema_defaults


def toy_run(seed: int = 0, patients: int = 100) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A scenario run's labels, its cohort and its detection table: patients x 2 images, 60%
    train/val and 40% test, vendors A and B and pseudo-groups P/Q; a third of vendor B's
    positive patients flipped; detection's cross-fitted probability follows the clean label
    and its quality is low for flipped images (with noise: a good ranking, not a perfect one)."""
    rng = np.random.default_rng(seed)
    cohort, labels, detection = [], [], []
    for p in range(patients):
        split = "train" if p < 0.4 * patients else "val" if p < 0.6 * patients else "test"
        clean, vendor, group = int(p % 2 == 0), "B" if p % 4 < 2 else "A", "Q" if p % 5 < 2 else "P"
        flipped = clean == 1 and vendor == "B" and p % 3 == 0
        for image in range(2):
            image_id = f"{p:03d}_{image}"
            given = 0 if flipped else clean
            cohort.append({"image_id": image_id, "patient_id": f"P{p:03d}", "split": split})
            labels.append({"image_id": image_id, "label_clean": clean, "label_biased": given, "flipped": int(flipped)})
            if split != "test":
                quality = float(np.clip(rng.normal(0.2 if flipped else 0.7, 0.15), 0, 1))
                prob_1 = float(np.clip(rng.normal(0.8 if clean else 0.2, 0.1), 0.01, 0.99))
                detection.append({"image_id": image_id, "patient_id": f"P{p:03d}", "split": split, "manufacturer": vendor,
                                  "pseudo_subgroup": group, "label_clean": clean, "label_given": given, "flipped": int(flipped),
                                  "prob_1": prob_1, "quality": quality, "flagged": int(quality < 0.35)})  # fmt: skip
    return pd.DataFrame(labels), pd.DataFrame(cohort), pd.DataFrame(detection)


def remedied(remedy: str, budget: float | None, seed: int = 1) -> tuple[pd.DataFrame, dict]:
    labels, cohort, detection = toy_run()
    return remedy_labels(labels, cohort, remedy, budget, seed, detection)


def audited_patients(frame: pd.DataFrame) -> set[str]:
    _, cohort, _ = toy_run()
    return set(frame.merge(cohort, on="image_id").query("audited == 1")["patient_id"])


@pytest.mark.parametrize("remedy", ["relabel_suspect", "relabel_random"])
def test_budget_zero_keeps_the_scenario_labels_and_budgets_nest(remedy):
    labels, _, _ = toy_run()
    none, summary = remedied(remedy, 0.0)
    assert list(none.columns) == REMEDY_LABEL_COLUMNS
    assert none["label_biased"].tolist() == labels["label_biased"].tolist()
    assert summary["patients_audited"] == 0 and none["audited"].sum() == 0
    previous: set[str] = set()
    for budget in (0.05, 0.1, 0.25, 0.5):
        frame, summary = remedied(remedy, budget)
        chosen = audited_patients(frame)
        assert len(chosen) == audit_size(60, budget) == summary["patients_audited"]
        assert previous <= chosen  # a larger budget audits a superset
        assert not any(int(p[1:]) >= 60 for p in chosen)  # test patients are never audited
        previous = chosen


def test_audited_patients_get_clean_labels_and_the_rest_keep_theirs():
    labels, _, _ = toy_run()
    frame, summary = remedied("relabel_suspect", 0.25)
    audited = frame["audited"] == 1
    assert (frame.loc[audited, "label_biased"] == frame.loc[audited, "label_clean"]).all()
    assert (frame.loc[~audited, "label_biased"] == labels.loc[~audited, "label_biased"]).all()
    assert (frame["flipped"] == (frame["label_biased"] != frame["label_clean"]).astype(int)).all()
    assert summary["flips_fixed"] + summary["flips_left"] == summary["flips_before"]


def test_relabelling_every_patient_gives_the_clean_labels_of_train_and_val():
    frame, summary = remedied("relabel_random", 1.0)
    _, cohort, _ = toy_run()
    pool = frame.merge(cohort, on="image_id")["split"] != "test"
    assert (frame.loc[pool, "label_biased"] == frame.loc[pool, "label_clean"]).all()
    assert summary["flips_left"] == 0 and summary["flips_fixed"] == int(frame.loc[pool, "label_clean"].ne(toy_run()[0].loc[pool, "label_biased"]).sum())
    assert frame.loc[~pool, "flipped"].sum() > 0  # the test split keeps its flips


def test_the_suspect_ranking_finds_more_flips_than_random_draws():
    suspect = remedied("relabel_suspect", 0.15)[1]["flips_fixed"]
    random = [remedied("relabel_random", 0.15, seed)[1]["flips_fixed"] for seed in range(10)]
    assert suspect > max(random)


def test_random_audits_are_seeded():
    first, second = remedied("relabel_random", 0.2, 4)[0], remedied("relabel_random", 0.2, 4)[0]
    other = remedied("relabel_random", 0.2, 5)[0]
    assert first.equals(second) and not first.equals(other)


def test_drop_flagged_drops_exactly_the_flagged_images_and_no_test_image():
    labels, cohort, detection = toy_run()
    frame, summary = remedy_labels(labels, cohort, "drop_flagged", None, 0, detection)
    flagged = set(detection.loc[detection["flagged"] == 1, "image_id"])
    assert set(frame.loc[frame["dropped"] == 1, "image_id"]) == flagged
    assert frame["label_biased"].tolist() == labels["label_biased"].tolist()  # nothing relabelled
    assert summary["images_dropped"] == len(flagged) and 0 < summary["flips_dropped"] <= len(flagged)
    # A flag on a test image (a detection table that is not the run's) drops nothing there.
    test_image = cohort.loc[cohort["split"] == "test", "image_id"].iloc[0]
    odd = pd.concat([detection, pd.DataFrame([{"image_id": test_image, "patient_id": "x", "split": "test", "quality": 0.0, "flagged": 1}])])
    assert remedy_labels(labels, cohort, "drop_flagged", None, 0, odd)[0].query("image_id == @test_image")["dropped"].item() == 0


def test_remedies_that_rank_need_the_runs_detection():
    labels, cohort, detection = toy_run()
    with pytest.raises(DataQualityError, match="needs the detection"):
        remedy_labels(labels, cohort, "relabel_suspect", 0.1, 0, None)
    with pytest.raises(DataQualityError, match="ranks no image of 2 training or validation patients"):
        remedy_labels(labels, cohort, "relabel_suspect", 0.1, 0, detection[~detection["patient_id"].isin(["P001", "P002"])])
    with pytest.raises(DataQualityError, match="label image zz is not in the cohort"):
        remedy_labels(pd.concat([labels, labels.tail(1).assign(image_id="zz")]), cohort, "relabel_random", 0.1, 0)


def test_the_corrections_confident_joints_give_detections_error_rates():
    from labelbias.detection.confident_learning import subgroup_error_rates

    _, _, detection = toy_run(patients=400)
    pred_probs = np.column_stack([1 - detection["prob_1"], detection["prob_1"]])
    table = subgroup_error_rates(detection, pred_probs, ["manufacturer", "pseudo_subgroup"], 0, 0).set_index(["attribute", "subgroup"])
    for attribute in ("manufacturer", "pseudo_subgroup"):
        for subgroup, joint in subgroup_confident_joints(detection, attribute).items():
            # cleanlab rounds the calibrated joint to whole images, preserving each row's total.
            n_images = table.loc[(attribute, subgroup), "n_images"]
            assert error_rate(joint) == pytest.approx(table.loc[(attribute, subgroup), "error_rate"], abs=2 / n_images)
            assert joint.sum() == n_images


def test_the_correction_finds_the_biased_attribute_and_its_noise():
    labels, cohort, detection = toy_run(patients=400)
    frame, summary = remedy_labels(labels, cohort, "forward_correction", None, 0, detection, ["pseudo_subgroup", "manufacturer"])
    assert summary["correction_attribute"] == "manufacturer"  # the pseudo-groups' rates differ less
    assert frame["label_biased"].equals(labels["label_biased"]) and frame["audited"].sum() == frame["dropped"].sum() == 0
    noise = frame.merge(cohort, on="image_id").merge(detection[["image_id", "manufacturer"]], on="image_id", how="left")
    rows = noise["noise_0_0"] + noise["noise_0_1"], noise["noise_1_0"] + noise["noise_1_1"]
    assert np.allclose(rows[0], 1) and np.allclose(rows[1], 1)
    lost = noise.groupby("manufacturer")["noise_1_0"].first()  # P(given 0 | true 1)
    assert lost["B"] > 0.15 > 0.05 > lost["A"]
    test = noise["split"] == "test"
    assert (noise.loc[test, ["noise_0_0", "noise_1_1"]] == 1).all().all()  # never trained on: identity
    with pytest.raises(DataQualityError, match="needs detection.attributes"):
        remedy_labels(labels, cohort, "forward_correction", None, 0, detection, [])


def test_the_forward_corrected_loss_is_the_cross_entropy_of_the_noisy_probabilities():
    import torch

    from labelbias.models.train import forward_corrected_loss, noise_matrices

    logits, targets = torch.tensor([[2.0, -1.0], [0.5, 1.5], [0.0, 3.0]]), torch.tensor([0, 1, 0])
    identity = torch.eye(2).expand(3, 2, 2)
    assert torch.allclose(forward_corrected_loss(logits, targets, identity), torch.nn.functional.cross_entropy(logits, targets))
    noise = torch.tensor([[1.0, 0.0], [0.4, 0.6]]).expand(3, 2, 2)
    clean = torch.softmax(logits, dim=1)
    noisy = clean @ noise[0]
    expected = -torch.log(noisy[torch.arange(3), targets]).mean()
    assert torch.allclose(forward_corrected_loss(logits, targets, noise), expected)
    # A dense image labelled fatty costs less once the model knows such labels are noisy.
    assert forward_corrected_loss(logits[2:], targets[2:], noise[2:]) < torch.nn.functional.cross_entropy(logits[2:], targets[2:])
    frame = pd.DataFrame({"noise_0_0": [1.0], "noise_0_1": [0.0], "noise_1_0": [0.4], "noise_1_1": [0.6]})
    assert np.allclose(noise_matrices(frame)[0], noise[0].numpy()) and noise_matrices(frame.drop(columns=frame.columns)) is None


def default_config(**remedies) -> dict:
    config = schema_defaults()
    config["scenarios"] = {"clean": {}, "FUJI": {"attribute": "manufacturer", "subgroup": "FUJI"},
                           "HOLO": {"attribute": "manufacturer", "subgroup": "HOLO"}}  # fmt: skip
    config["replicates"]["seeds"] = 2
    config["remedies"].update({"enabled": True, **remedies})
    return config


def test_remedy_runs_are_planned_per_scenario_method_budget_and_replicate():
    runs = plan_runs(default_config(scenarios=["FUJI"], budgets=[0.02, 0.1], methods=list(REMEDIES)))
    remedy_runs = {name: run for name, run in runs.items() if run.remedy}
    assert sorted(remedy_runs) == sorted(
        [f"FUJI@{m}{b}{s}" for m in ("relabel_suspect", "relabel_random") for b in ("0.02", "0.1") for s in ("", "@seed1")]
        + [f"FUJI@{m}{s}" for m in ("drop_flagged", "forward_correction") for s in ("", "@seed1")]
    )
    assert {run.source_run for run in remedy_runs.values()} == {"FUJI", "FUJI@seed1"}
    # The scenario runs are the same with or without remedies.
    plain = plan_runs(default_config(enabled=False))
    assert {name: run for name, run in runs.items() if not run.remedy} == plain
    assert set(plan_runs(default_config(seeds=1, methods=list(REMEDIES)))) - set(plain) == {
        f"{scenario}@{remedy}" for scenario in ("FUJI", "HOLO")
        for remedy in ("relabel_suspect0.05", "relabel_random0.05", "drop_flagged", "forward_correction")
    }  # fmt: skip


def test_every_remedy_is_in_the_schema():
    from labelbias.schema import load_schema

    methods = load_schema()["properties"]["remedies"]["properties"]["methods"]
    assert set(methods["items"]["enum"]) == set(REMEDIES) >= set(methods["default"])


def counts(patients: int, tpr: float, fpr: float, seed: int) -> pd.DataFrame:
    """Per-patient counts of one subgroup: one positive and one negative image each."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"patient_id": np.arange(patients), "tp": (rng.random(patients) < tpr).astype(int), "pos": 1,
         "fp": (rng.random(patients) < fpr).astype(int), "neg": 1}  # fmt: skip
    )


def test_a_remedy_equal_to_the_clean_model_recovers_everything_and_one_equal_to_the_scenario_nothing():
    clean, scenario = [counts(300, 0.9, 0.1, 0)], [counts(300, 0.6, 0.05, 1)]
    full = compare_remedy(clean, scenario, clean, 200, np.random.default_rng(0))
    assert full["tpr_recovered_share"] == 1.0 and full["tpr_change"] == 0.0
    assert full["tpr_recovered_share_ci_low"] == full["tpr_recovered_share_ci_high"] == 1.0
    none = compare_remedy(scenario, scenario, clean, 200, np.random.default_rng(0))
    assert none["tpr_recovered_share"] == 0.0 and none["scenario_tpr_change"] == pytest.approx(none["tpr_change"])
    half = compare_remedy([counts(300, 0.75, 0.075, 2)], scenario, clean, 200, np.random.default_rng(0))
    assert 0.3 < half["tpr_recovered_share"] < 0.7
    assert half["tpr_recovered_share_ci_low"] < half["tpr_recovered_share"] < half["tpr_recovered_share_ci_high"]


def test_the_scenario_change_beside_a_remedy_is_table2s_change():
    clean, scenario, remedy = [counts(200, 0.9, 0.1, s) for s in (0, 1)], [counts(200, 0.6, 0.1, s) for s in (2, 3)], [counts(200, 0.8, 0.1, s) for s in (4, 5)]
    table2 = compare_to_baseline(scenario, clean, 0, np.random.default_rng(0))
    beside = compare_remedy(remedy, scenario, clean, 0, np.random.default_rng(0))
    assert beside["scenario_tpr_change"] == pytest.approx(table2["tpr_change"])
    assert np.isnan(beside["tpr_change_ci_low"])  # no draws, no interval


def evaluation(tpr: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    part = counts(200, tpr, 0.1, seed).assign(attribute="manufacturer", subgroup="FUJI")
    table = pd.DataFrame([{"attribute": "manufacturer", "subgroup": "FUJI", "threshold": 0.5}])
    return table, part


def test_remedy_table_has_one_row_per_group_source_and_subgroup_and_blanks_shares_with_nothing_to_recover():
    evaluations = {}
    for source in ("clean", "biased"):
        lost = 0.6  # only the biased-label threshold loses TPR
        evaluations[("clean", source)] = evaluation(0.9, 0)
        evaluations[("FUJI", source)] = evaluation(lost, 1) if source == "biased" else evaluation(0.9, 0)
        evaluations[("FUJI@drop_flagged", source)] = evaluation(0.8 if source == "biased" else 0.9, 2)
    groups = [{"scenario": "FUJI", "remedy": "drop_flagged", "budget": None, "runs": [["FUJI@drop_flagged", "FUJI", "clean"]]}]
    table = remedy_table(evaluations, groups, {"FUJI": ("manufacturer", "FUJI")}, 100, 0)
    assert list(table.columns) == REMEDY_COLUMNS and len(table) == 2 and table["biased_subgroup"].all()
    biased, clean = table.set_index("threshold_source").loc["biased"], table.set_index("threshold_source").loc["clean"]
    assert biased["scenario_tpr_change_supported"] and 0 < biased["tpr_recovered_share"] < 1
    assert not clean["scenario_tpr_change_supported"] and np.isnan(clean["tpr_recovered_share"])


def read(path):
    return pd.read_csv(path, sep="\t", dtype={"image_id": str, "subgroup": str})


@pytest.mark.workflow
def test_a_remedy_run_retrains_on_remedied_labels_with_the_scenarios_seed_and_data_order(tiny_run):
    cohort = read(tiny_run / "results/data/cohort.tsv")
    scenario = read(tiny_run / "results/labels/HOLO.tsv")
    assert scenario["flipped"].sum() > 0
    # Budget 0: the scenario's own labels, so the scenario's own model.
    assert read(tiny_run / "results/labels/HOLO@relabel_random0.tsv")["label_biased"].equals(scenario["label_biased"])
    assert (tiny_run / "results/models/HOLO@relabel_random0/predictions.tsv").read_bytes() == (
        tiny_run / "results/models/HOLO/predictions.tsv"
    ).read_bytes()
    # Budget 1: every training and validation label clean, so the clean model (same seed and order).
    everyone = read(tiny_run / "results/labels/HOLO@relabel_random1.tsv").merge(cohort[["image_id", "split"]], on="image_id")
    pool = everyone["split"] != "test"
    assert (everyone.loc[pool, "label_biased"] == everyone.loc[pool, "label_clean"]).all()
    assert (tiny_run / "results/models/HOLO@relabel_random1/predictions.tsv").read_bytes() == (
        tiny_run / "results/models/clean/predictions.tsv"
    ).read_bytes()
    # drop_flagged: the flagged training and validation images leave the run, the test split stays whole.
    detection = read(tiny_run / "results/detection/HOLO.images.tsv")
    dropped = read(tiny_run / "results/labels/HOLO@drop_flagged.tsv").query("dropped == 1")
    assert set(dropped["image_id"]) == set(detection.loc[detection["flagged"] == 1, "image_id"]) != set()
    predictions = read(tiny_run / "results/models/HOLO@drop_flagged/predictions.tsv")
    assert not set(predictions["image_id"]) & set(dropped["image_id"])
    assert set(predictions.query("split == 'test'")["image_id"]) == set(cohort.query("split == 'test'")["image_id"])
    assert f"{len(dropped)} images dropped by the remedy" in (tiny_run / "logs/train/HOLO@drop_flagged.log").read_text()


@pytest.mark.workflow
def test_the_remedy_summary_recovers_all_with_the_clean_labels_and_nothing_with_none(tiny_run):
    table = read(tiny_run / "results/remedies/summary.tsv")
    assert list(table.columns) == REMEDY_COLUMNS
    assert set(zip(table["remedy"], table["budget"].fillna(-1))) == {
        ("relabel_random", 0), ("relabel_random", 1), ("drop_flagged", -1), ("forward_correction", -1)
    }  # fmt: skip
    assert len(table) == 4 * 2 * len(table[["attribute", "subgroup"]].drop_duplicates())
    full = table[table["budget"] == 1]
    assert (full["tpr_change"] == 0).all() and (full["fpr_change"] == 0).all()
    assert (full["tpr_recovered_share"].dropna() == 1).all()
    none = table[table["budget"] == 0]
    assert np.allclose(none["tpr_change"], none["scenario_tpr_change"]) and (none["tpr_recovered_share"].dropna() == 0).all()
    labels = read(tiny_run / "results/remedies/labels.tsv")
    assert set(labels["run"]) == {"HOLO@relabel_random0", "HOLO@relabel_random1", "HOLO@drop_flagged", "HOLO@forward_correction"}
    by_run = labels.set_index("run")
    assert by_run.loc["HOLO@relabel_random1", "flips_fixed"] > 0
    assert by_run.loc["HOLO@forward_correction", "correction_attribute"] in ("manufacturer", "pseudo_subgroup")
    assert "forward loss correction" in (tiny_run / "logs/train/HOLO@forward_correction.log").read_text()
    assert (tiny_run / "results/figures/remedies.png").stat().st_size > 10_000
    shifts = read(tiny_run / "results/eval/pc1_shift.tsv")
    assert {"HOLO", "HOLO@relabel_random1", "HOLO@forward_correction"} <= set(shifts["scenario"])
    # The scenarios' rows come first and are those of a run without remedies.
    assert list(dict.fromkeys(shifts["scenario"]))[:4] == ["PS1", "FUJI", "GEMS", "HOLO"]


@pytest.mark.workflow
def test_adding_a_remedy_plans_only_its_runs_and_the_summary(tiny_run, tmp_path):
    from workflow_helpers import planned_rules

    extra = tmp_path / "more.yaml"
    extra.write_text("remedies:\n  methods: [relabel_random, drop_flagged, forward_correction, relabel_suspect]\n")
    planned = planned_rules(tiny_run, "--configfile", str(extra))
    jobs = {rule: planned.count(rule) for rule in planned}
    # Two new runs (budgets 0 and 1), their evaluations and PC1, and what reads them: the summary,
    # Fig. 1's numbers, the front page that quotes the summary, the provenance page of the config.
    expected = {"remedy_labels": 2, "train_density": 2, "evaluate": 4, "pc1": 2, "remedy_summary": 1, "figures": 1,
                "front_page": 1, "provenance": 1}  # fmt: skip
    assert jobs == {**expected, "all": 1}, jobs


def test_remedy_config_errors_name_the_key():
    from labelbias.config import check_config
    from labelbias.errors import ConfigError

    with pytest.raises(ConfigError, match="remedies.scenarios: 'clean' is not a bias scenario"):
        check_config(default_config(scenarios=["clean"]))
    config = default_config(methods=["relabel_random", "drop_flagged", "forward_correction"])
    config["detection"]["enabled"] = False
    with pytest.raises(ConfigError, match="remedies.methods: drop_flagged, forward_correction rank or flag images by detection"):
        check_config(config)
    config["remedies"]["methods"] = ["relabel_random"]
    check_config(config)  # the random control needs no detection
