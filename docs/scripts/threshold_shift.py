"""Where a bias scenario's moved threshold sends the other vendors' false positives: the numbers
behind docs/design.md's "Which vendor takes HOLO's false positives".

Usage (in a finished run's folder, or give it with --run; several runs are several data draws):
    .venv/bin/python docs/scripts/threshold_shift.py --run RUN1 [RUN2 ...] [--scenario HOLO] [--source clean]

The study's rule picks each model's threshold where the validation FPR is closest to 10%. When a
scenario's bias lowers its own subgroup's scores (HOLO's, say), that subgroup's FPR falls and the
threshold moves down until the validation FPR is 10% again, so the other vendors take false
positives in its place. How many they take together is bookkeeping: the test negatives' shares
times the FPR changes sum to the change of the overall FPR, which is about zero. Which vendor
takes them is what a model's scores decide. For each seed replicate the script compares the
scenario's model with the clean model of the same seed and prints, per vendor of the test split:

- its share of the test negatives, its FPR under the clean and the scenario's model, and the change;
- ``fp_change``: how many false positives it gained;
- ``fp_by_rank``: how many it would gain if the other vendors' negatives kept the clean model's
  order and the gained false positives were simply the next ones below the clean model's threshold
  (the rest, ``fp_change - fp_by_rank``, is the scenario's model scoring that vendor's negatives
  higher or lower than the clean model did);
- ``crowding``: the share of the vendor's negatives among the next 100 other-vendor negatives
  below the clean threshold, over its share of all other-vendor negatives (above 1: its negatives
  crowd the threshold, so a move of the threshold hits it first).

Then the mean over replicates (and over runs, with the standard error), and the study's sum from
Table 1's negatives and Table 2's changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_noise import Cohort, Model, load  # noqa: E402
from labelbias.analysis.evaluation import threshold_at_fpr  # noqa: E402
from table2_check import STUDY  # noqa: E402

VENDORS = ("FUJI", "GEMS", "HOLO")
# Table 1 of the study: images with density A or B (the negatives) per vendor.
STUDY_NEGATIVES = {"FUJI": 425 + 2283, "GEMS": 636 + 7210, "HOLO": 18367 + 67124}
BAND = 100  # other-vendor negatives below the clean threshold that ``crowding`` looks at


def shift_rows(clean: Model, scenario: Model, cohort: Cohort, biased_vendor: str, source: str = "clean",
               target_fpr: float = 0.1) -> pd.DataFrame:  # fmt: skip
    """Per vendor: FPR under both models, the false positives gained, those the clean model's order predicts,
    and how crowded its negatives are just below the clean threshold."""
    negative = cohort.test_labels == 0
    called = {}
    for name, model in (("clean", clean), ("scenario", scenario)):
        threshold = threshold_at_fpr(model.val_labels[source], model.val_scores, target_fpr)
        called[name] = model.test_scores >= threshold
    others = [v for v in VENDORS if v != biased_vendor]
    vendor = np.full(len(negative), "", dtype=object)
    for v in VENDORS:
        vendor[cohort.test_groups[v]] = v
    gained = {v: int(called["scenario"][negative & cohort.test_groups[v]].sum() - called["clean"][negative & cohort.test_groups[v]].sum())
              for v in VENDORS}  # fmt: skip
    pool = negative & np.isin(vendor, others)
    # The other vendors' negatives in the clean model's order: below the threshold from the top,
    # above it from the bottom (for a threshold that moved up).
    below = np.flatnonzero(pool & ~called["clean"])
    below = below[np.argsort(-clean.test_scores[below], kind="stable")]
    above = np.flatnonzero(pool & called["clean"])
    above = above[np.argsort(clean.test_scores[above], kind="stable")]
    extra = sum(gained[v] for v in others)
    moved = vendor[below[:extra]] if extra >= 0 else vendor[above[:-extra]]
    band = vendor[below[:BAND]]
    rows = []
    for v in VENDORS:
        member = negative & cohort.test_groups[v]
        fpr_clean, fpr_scenario = called["clean"][member].mean(), called["scenario"][member].mean()
        row = {"vendor": v, "negatives_share": member.sum() / negative.sum(), "fpr_clean": fpr_clean,
               "fpr_scenario": fpr_scenario, "fpr_change": fpr_scenario - fpr_clean, "fp_change": gained[v]}  # fmt: skip
        if v in others:
            row["fp_by_rank"] = int(np.sum(moved == v)) * (1 if extra >= 0 else -1)
            row["crowding"] = np.mean(band == v) / (np.sum(vendor[pool] == v) / pool.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def run_rows(run: Path, scenario: str, source: str) -> pd.DataFrame:
    """Every seed replicate's rows of one run, and their mean."""
    cohort, models = load(run, ["clean", scenario])
    if len(models["clean"]) < len(models[scenario]):
        raise SystemExit(f"{run}: {scenario} has {len(models[scenario])} seed replicates, the clean model {len(models['clean'])}")
    tables = [shift_rows(c, s, cohort, scenario, source).assign(replicate=k)
              for k, (c, s) in enumerate(zip(models["clean"], models[scenario]))]  # fmt: skip
    return pd.concat(tables, ignore_index=True)


def study_sum(scenario: str, source: str) -> pd.DataFrame:
    """The study's FPR changes under the scenario, weighted by Table 1's negatives."""
    clean, biased = STUDY[("clean", "clean")], STUDY[(scenario, source)]
    total = sum(STUDY_NEGATIVES.values())
    return pd.DataFrame(
        [{"vendor": v, "negatives_share": STUDY_NEGATIVES[v] / total, "fpr_clean": clean[v][1],
          "fpr_scenario": biased[v][1], "fpr_change": biased[v][1] - clean[v][1]} for v in VENDORS]  # fmt: skip
    )


def weighted_sum(table: pd.DataFrame) -> float:
    return float((table["negatives_share"] * table["fpr_change"]).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, nargs="+", default=[Path(".")])
    parser.add_argument("--scenario", default="HOLO", choices=VENDORS)
    parser.add_argument("--source", default="clean", choices=("clean", "biased"))
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    means = []
    for run in args.run:
        table = run_rows(run, args.scenario, args.source)
        mean = table.drop(columns="replicate").groupby("vendor", sort=False).mean().reset_index()
        print(f"== {run}: {args.scenario} bias, {args.source}-label threshold, against the clean model")
        print(table.round(3).to_string(index=False))
        print(f"mean over replicates (shares x FPR changes sum to {weighted_sum(mean):+.4f}):")
        print(mean.round(3).to_string(index=False))
        means.append(mean.assign(run=str(run)))
    if len(means) > 1:
        every = pd.concat(means, ignore_index=True).drop(columns="run")
        grouped = every.groupby("vendor", sort=False)
        summary = grouped.mean().round(3).astype(str) + " ± " + (grouped.std() / np.sqrt(len(means))).round(3).astype(str)
        print(f"\nmean over {len(means)} runs ± standard error:")
        print(summary.reset_index().to_string(index=False))
    study = study_sum(args.scenario, args.source)
    print(f"\nthe study (Table 1's negatives, Table 2's FPR; shares x changes sum to {weighted_sum(study):+.4f}):")
    print(study.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
