"""The docs' own readers of a run: docs/scripts/table2_check.py scores a run against the study."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pandas as pd
import pytest

from workflow_helpers import ROOT


def docs_script(name: str):
    """Import docs/scripts/NAME.py, which is no package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass of the script looks its module up there
    spec.loader.exec_module(module)
    return module


table2_check = docs_script("table2_check")


def _study_run(tmp_path, edit=None):
    """A run folder whose Table 2 is the study's own (changes from the study's clean row)."""
    clean = table2_check.STUDY[("clean", "clean")]
    rows = []
    for (scenario, source), groups in table2_check.STUDY.items():
        for group, (tpr, fpr) in groups.items():
            subgroup = group.lower() if group.startswith("PS") else group  # as the run's tables name them
            rows.append({"scenario": scenario, "threshold_source": source, "subgroup": subgroup, "tpr": tpr,
                         "fpr": fpr, "tpr_change": tpr - clean[group][0], "fpr_change": fpr - clean[group][1]})
    table = pd.DataFrame(rows)
    if edit:
        edit(table)
    (tmp_path / "results" / "eval").mkdir(parents=True)
    table.to_csv(tmp_path / "results" / "eval" / "table2.tsv", sep="\t", index=False)
    pd.DataFrame({"finding": ["a", "b"], "holds": ["yes", "no"]}).to_csv(
        tmp_path / "results" / "eval" / "findings.tsv", sep="\t", index=False)
    return tmp_path


def test_the_study_itself_misses_nothing(tmp_path, capsys):
    run = _study_run(tmp_path)
    assert table2_check.check(run, table2_check.read_table2(run)) == 0
    assert "findings hold: 1/2" in capsys.readouterr().out


def test_a_clean_rate_off_by_more_than_the_tolerance_and_a_halved_key_change_are_misses(tmp_path):
    def edit(table):
        gems_clean = (table["scenario"] == "clean") & (table["subgroup"] == "GEMS")
        table.loc[gems_clean, "fpr"] -= 0.05
        holo_biased = table["scenario"].eq("HOLO") & table["threshold_source"].eq("biased") & table["subgroup"].eq("HOLO")
        table.loc[holo_biased, "tpr_change"] /= 2.5

    run = _study_run(tmp_path, edit)
    assert table2_check.check(run, table2_check.read_table2(run)) == 2


def test_binormal_reading_of_an_operating_point():
    separation, log_lr = table2_check.binormal_point(0.9, 0.1)
    assert separation == pytest.approx(2.563, abs=1e-3) and log_lr == pytest.approx(0.0, abs=1e-9)
    # The study's GEMS: less separated than HOLO and called positive more readily.
    gems, holo = table2_check.binormal_point(0.914, 0.170), table2_check.binormal_point(0.915, 0.100)
    assert gems[0] < holo[0] and gems[1] < holo[1] < 0


check_noise = docs_script("check_noise")


def _scored_run(tmp_path, n_val, n_test, images_per_patient=2, seed=0, models=("clean", "clean@seed1")):
    """A run folder with a cohort and clean models whose scores are noisy copies of the label."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, n in (("train", 20), ("val", n_val), ("test", n_test)):
        for p in range(n):
            label = int(rng.random() < 0.5)
            for k in range(images_per_patient):
                rows.append({"image_id": f"{split}{p}.{k}", "patient_id": f"{split}{p}", "split": split, "label": label,
                             "manufacturer": rng.choice(["FUJI", "GEMS", "HOLO"], p=[0.2, 0.2, 0.6]),
                             "pseudo_subgroup": rng.choice(["PS1", "PS2", "PS3"])})  # fmt: skip
    cohort = pd.DataFrame(rows)
    (tmp_path / "results" / "data").mkdir(parents=True)
    (tmp_path / "results" / "labels").mkdir()
    cohort.to_csv(tmp_path / "results" / "data" / "cohort.tsv", sep="\t", index=False)
    for name in models:
        (tmp_path / "results" / "models" / name).mkdir(parents=True)
        scores = 1 / (1 + np.exp(-(2.5 * (cohort["label"] - 0.5) + rng.normal(size=len(cohort)))))
        # The workflow scores the validation and test images only.
        scored = (cohort["split"] != "train").to_numpy()
        pd.DataFrame({"image_id": cohort["image_id"], "split": cohort["split"], "score": scores})[scored].to_csv(
            tmp_path / "results" / "models" / name / "predictions.tsv", sep="\t", index=False)
        pd.DataFrame({"image_id": cohort["image_id"], "label_clean": cohort["label"], "label_biased": cohort["label"]}).to_csv(
            tmp_path / "results" / "labels" / f"{name}.tsv", sep="\t", index=False)
    return tmp_path, cohort


def test_noise_rates_without_resampling_are_the_workflows_own(tmp_path):
    from labelbias.analysis.evaluation import evaluate_scenario

    run, cohort = _scored_run(tmp_path, n_val=80, n_test=120)
    loaded, models = check_noise.load(run, ["clean"])
    assert len(models["clean"]) == 2
    ones_val, ones_test = np.ones(loaded.n_val, int), np.ones(loaded.n_test, int)
    for replicate, name in enumerate(("clean", "clean@seed1")):
        ours = check_noise.rates(models["clean"][replicate], "clean", loaded, ones_val, ones_test, 0.1)
        predictions = pd.read_csv(run / "results" / "models" / name / "predictions.tsv", sep="\t")
        labels = pd.read_csv(run / "results" / "labels" / f"{name}.tsv", sep="\t")
        table, _ = evaluate_scenario(predictions, labels, cohort.drop(columns="split"), "clean",
                                     ["manufacturer", "pseudo_subgroup"], 0.1, 0, 0)  # fmt: skip
        for row in table[table["attribute"] != "all"].itertuples():
            assert ours[row.subgroup.upper()] == pytest.approx((row.tpr, row.fpr), abs=1e-12)


def test_noise_of_a_subgroups_fpr_is_the_binomial_one(tmp_path):
    # Scores that do not depend on the subgroup: a threshold drawn off its place moves every
    # subgroup's FPR alike, so the noise is the test negatives' binomial one and the validation's.
    run, cohort = _scored_run(tmp_path, n_val=800, n_test=3000, images_per_patient=1, seed=1, models=("clean",))
    loaded, models = check_noise.load(run, ["clean"])
    clean_checks = [item for item in check_noise.checks() if item.kind == "clean"]
    table, joint = check_noise.noise_table(clean_checks, models, loaded, draws=400, seed=2)
    holo = table[table["check"].str.contains("HOLO")].iloc[0]
    fpr = float(holo["ours"].split(" / ")[1])
    test_negatives = int(((cohort["split"] == "test") & (cohort["manufacturer"] == "HOLO") & (cohort["label"] == 0)).sum())
    val_negatives = int(((cohort["split"] == "val") & (cohort["label"] == 0)).sum())
    expected = np.sqrt(fpr * (1 - fpr) * (1 / test_negatives + 1 / val_negatives))
    assert float(holo["noise_sd"].split(" / ")[1]) == pytest.approx(expected, rel=0.15)
    # Every subgroup's clean rates at once cannot pass more often than the hardest one alone.
    assert joint["clean"][1] <= table["study_passes"].min() + 1e-12
    assert 0.0 <= joint["clean"][0] <= 1.0


def test_pooling_draws_shrinks_the_noise_by_their_root(tmp_path):
    run, _ = _scored_run(tmp_path, n_val=300, n_test=600, seed=3)
    loaded, models = check_noise.load(run, ["clean"])
    clean_checks = [item for item in check_noise.checks() if item.kind == "clean"]
    one, joint_one = check_noise.noise_table(clean_checks, models, loaded, draws=200, seed=4)
    four, joint_four = check_noise.noise_table(clean_checks, models, loaded, draws=200, seed=4, pooled=4)

    def noise(table):
        return np.array([[float(v) for v in cell.split(" / ")] for cell in table["noise_sd"]])

    assert noise(four) == pytest.approx(noise(one) / 2, abs=0.001)
    # A study-centred clean check passes whenever its deviation is small enough, and halving it keeps it so.
    assert (four["study_passes"] >= one["study_passes"]).all()
    assert joint_four["clean"][1] > joint_one["clean"][1]


def test_several_runs_are_judged_on_their_mean(tmp_path, capsys):
    # Two draws off the study's GEMS clean FPR by -0.05 and +0.05: each misses, their mean does not.
    def shifted(by):
        def edit(table):
            table.loc[(table["scenario"] == "clean") & (table["subgroup"] == "GEMS"), "fpr"] += by
        return edit

    runs = [_study_run(tmp_path / "low", shifted(-0.05)), _study_run(tmp_path / "high", shifted(0.05))]
    tables = [table2_check.read_table2(run) for run in runs]
    assert [table2_check.check(run, table) for run, table in zip(runs, tables)] == [1, 1]
    assert table2_check.pooled(runs, tables) == 0
    assert "+0.170 ± 0.050" in capsys.readouterr().out
    # Both off the same way: the mean misses too.
    same = [_study_run(tmp_path / "a", shifted(0.05)), _study_run(tmp_path / "b", shifted(0.04))]
    assert table2_check.pooled(same, [table2_check.read_table2(run) for run in same]) == 1


vendor_reading = docs_script("vendor_reading")


def test_vendor_reading_finds_where_and_how_sharply_a_vendor_is_called():
    rng = np.random.default_rng(0)
    n = 20000
    fraction = rng.uniform(0.1, 0.9, n)
    vendor = np.where(np.arange(n) % 2, "GEMS", "HOLO")
    # GEMS's images read 0.05 denser than they are (over-called); both with a reading noise of 0.03.
    score = fraction + np.where(vendor == "GEMS", 0.05, 0.0) + rng.normal(0, 0.03, n)
    frame = pd.DataFrame({"manufacturer": vendor, "label": (fraction >= 0.5).astype(int), "score": score,
                          "dense_fraction": fraction, "density": np.where(fraction >= 0.5, "C", "B")})  # fmt: skip
    rows = {row["vendor"]: row for row in vendor_reading.vendor_rows(frame, threshold=0.5, oracle=0.5)}
    assert rows["HOLO"]["t_eff"] == pytest.approx(0.50, abs=0.005)
    assert rows["GEMS"]["t_eff"] == pytest.approx(0.45, abs=0.005)
    # A logistic fit's width for normal noise of sd 0.03 is about 0.03 * sqrt(3) / pi.
    assert rows["HOLO"]["s_eff"] == pytest.approx(0.03 * np.sqrt(3) / np.pi, rel=0.15)
    assert rows["GEMS"]["fpr"] > rows["HOLO"]["fpr"]


threshold_shift = docs_script("threshold_shift")


def test_a_majoritys_lost_false_positives_go_to_the_vendor_crowding_the_threshold():
    rng = np.random.default_rng(5)
    n = 20000
    vendor = rng.choice(["FUJI", "GEMS", "HOLO"], size=n, p=[0.13, 0.17, 0.70])
    label = (rng.random(n) < 0.5).astype(int)
    # FUJI's negatives sit close below the threshold, GEMS's spread far: a threshold that moves
    # down reaches FUJI's first.
    centre = np.select([vendor == "FUJI", vendor == "GEMS"], [0.8, 0.0], 0.0)
    spread = np.select([vendor == "FUJI", vendor == "GEMS"], [0.5, 1.5], 1.0)
    logit = np.where(label == 1, rng.normal(2.5, 1.0, n), rng.normal(centre, spread))
    # HOLO's bias lowers its own scores only; the validation split is the test split here.
    clean_scores, holo_scores = (1 / (1 + np.exp(-x)) for x in (logit, logit - np.where(vendor == "HOLO", 0.4, 0.0)))
    cohort = threshold_shift.Cohort(np.arange(n), np.arange(n), label,
                                    {v: vendor == v for v in ("FUJI", "GEMS", "HOLO")}, n, n)  # fmt: skip
    models = [threshold_shift.Model(s, {"clean": label}, s) for s in (clean_scores, holo_scores)]
    rows = threshold_shift.shift_rows(*models, cohort, "HOLO").set_index("vendor")
    assert rows.loc["HOLO", "fpr_change"] < -0.02
    # The other vendors' scores did not move, so their order predicts the false positives they gain exactly.
    for v in ("FUJI", "GEMS"):
        assert rows.loc[v, "fp_by_rank"] == rows.loc[v, "fp_change"] > 0
    assert rows.loc["FUJI", "crowding"] > 1 > rows.loc["GEMS", "crowding"]
    assert rows.loc["FUJI", "fpr_change"] > 2 * rows.loc["GEMS", "fpr_change"]
    # The threshold keeps the overall FPR at 10%: the shares times the changes sum to about zero.
    assert abs(threshold_shift.weighted_sum(rows.reset_index())) < 0.002
