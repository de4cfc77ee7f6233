"""How the clean density models read each vendor: the numbers behind docs/design.md's
"The vendors as EMBED's".

Usage (in a finished run's folder, or give it with --run):
    .venv/bin/python docs/scripts/vendor_reading.py --run . [--configfile overlay.yaml ...]

Pass the same --configfile overlays the run had: the generator's plan is drawn again from
the config (cheap, no images) to know each image's true dense fraction. For each clean
model (`clean` and its seed replicates) and their mean it prints, per vendor of the test split:

- TPR and FPR at the validation threshold closest to 10% FPR (the study's rule), and at
  the test threshold closest to 10% FPR (no validation noise);
- the share called positive per density class;
- where the model's common threshold falls in dense-fraction units for that vendor
  (``t_eff``, the 50% point of a logistic fit of "called positive" on the true dense
  fraction) and how sharply it reads (``s_eff``, the fit's width).

It ends with the (t_eff, s_eff) that would give the study's clean row (Table 2) under this
generator's class centres and spread, for the vendor mix of Table 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import least_squares
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))

from labelbias.analysis.evaluation import threshold_at_fpr  # noqa: E402
from labelbias.data.synthetic import DENSITY_CLASSES, plan_dataset, settings_from_config  # noqa: E402
from labelbias.schema import schema_defaults  # noqa: E402
from table2_check import STUDY  # noqa: E402  (this folder: the study's Table 2)

# The study's clean row per vendor (Table 2) and EMBED's per-vendor density mix (Table 1, %).
STUDY_CLEAN = {vendor: STUDY[("clean", "clean")][vendor] for vendor in ("FUJI", "GEMS", "HOLO")}
TABLE1_MIX = {
    "FUJI": {"A": 8.3, "B": 44.5, "C": 44.1, "D": 3.2},
    "GEMS": {"A": 4.0, "B": 45.2, "C": 47.5, "D": 3.3},
    "HOLO": {"A": 10.7, "B": 39.3, "C": 44.9, "D": 5.1},
}


def vendor_rows(frame: pd.DataFrame, threshold: float, oracle: float) -> list[dict[str, object]]:
    rows = []
    for vendor, group in frame.groupby("manufacturer"):
        positive, called = group["label"] == 1, group["score"] >= threshold
        row: dict[str, object] = {
            "vendor": vendor,
            "tpr": called[positive].mean(),
            "fpr": called[~positive].mean(),
            "tpr_test_thr": (group["score"] >= oracle)[positive].mean(),
            "fpr_test_thr": (group["score"] >= oracle)[~positive].mean(),
        }
        for density, part in group.groupby("density"):
            row[f"called_{density}"] = (part["score"] >= threshold).mean()
        fit = LogisticRegression(C=1e4).fit(group[["dense_fraction"]], called)
        row["t_eff"] = -fit.intercept_[0] / fit.coef_[0, 0]
        row["s_eff"] = 1.0 / fit.coef_[0, 0]
        rows.append(row)
    return rows


def study_reading(centres: list[float], spread: float) -> pd.DataFrame:
    """(t_eff, s_eff) per vendor that give the study's clean TPR and FPR under this generator."""
    draws = np.random.default_rng(0).normal(size=100_000)
    rows = []
    for vendor, (tpr, fpr) in STUDY_CLEAN.items():
        mix = TABLE1_MIX[vendor]

        def rates(x: np.ndarray) -> np.ndarray:
            called = {
                c: expit((np.clip(centre + spread * draws, 0.02, 0.98) - x[0]) / abs(x[1])).mean()
                for c, centre in zip(DENSITY_CLASSES, centres, strict=True)
            }
            return np.array(
                [
                    (mix["C"] * called["C"] + mix["D"] * called["D"]) / (mix["C"] + mix["D"]),
                    (mix["A"] * called["A"] + mix["B"] * called["B"]) / (mix["A"] + mix["B"]),
                ]
            )

        solved = least_squares(lambda x: rates(x) - np.array([tpr, fpr]), [0.5, 0.03]).x
        rows.append({"vendor": vendor, "t_eff": solved[0], "s_eff": abs(solved[1]), "tpr": tpr, "fpr": fpr})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("."))
    parser.add_argument("--configfile", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    synthetic = dict(schema_defaults()["data"]["synthetic"])
    for path in [args.run / "config.yaml", *args.configfile]:
        synthetic.update((yaml.safe_load(path.read_text()) or {}).get("data", {}).get("synthetic", {}))
    settings = settings_from_config(synthetic)
    _, _, jobs = plan_dataset(settings)
    fraction = {job.sop_uid: job.dense_fraction for job in jobs}
    cohort = pd.read_csv(args.run / "results/data/cohort.tsv", sep="\t", dtype={"image_id": str})
    rows = []
    for model in sorted((args.run / "results/models").glob("clean*/predictions.tsv")):
        predictions = pd.read_csv(model, sep="\t", dtype={"image_id": str})
        frame = predictions.merge(cohort.drop(columns="split"), on="image_id")
        frame["dense_fraction"] = frame["image_id"].map(fraction)
        val, test = frame[frame["split"] == "val"], frame[frame["split"] == "test"]
        threshold = threshold_at_fpr(val["label"].to_numpy(), val["score"].to_numpy(), 0.1)
        oracle = threshold_at_fpr(test["label"].to_numpy(), test["score"].to_numpy(), 0.1)
        rows += [{"model": model.parent.name, **row} for row in vendor_rows(test, threshold, oracle)]
    table = pd.DataFrame(rows)
    mean = table.drop(columns="model").groupby("vendor").mean().reset_index().assign(model="mean")
    pd.set_option("display.width", 200)
    print(pd.concat([table, mean]).round(3).to_string(index=False))
    print("\nThe study's clean row read by this generator (Table 1's mix):")
    print(study_reading(list(settings.density_centres), settings.density_spread).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
