"""How often issue 38's checks pass by chance alone: the sampling noise of one finished run's
checks (docs/scripts/table2_check.py), from its own validation and test patients.

Usage (in a finished run's folder, or give it with --run):
    .venv/bin/python docs/scripts/check_noise.py --run . [--draws 1000] [--seed 0] [--pooled K]

The study's rule picks each model's threshold on the validation split (the point closest to 10%
FPR, which rests on the top tenth of its negatives), and each subgroup's rates are counted on the
test split. Both are samples of patients. Each draw resamples the validation patients and,
independently, the test patients (with all their images; the same draw for every model, so the
changes stay paired as in Table 2), picks every model's threshold again with the clean and with the
biased validation labels, and recomputes every checked value as Table 2 does (the mean over the
seed replicates; a change is the scenario's replicate minus the clean model's of the same seed).

For each check it prints the noise (the draws' standard deviation), the seed replicates' own
standard error (what another training seed adds; a rough figure from two or three models), the
share of draws in which this run passes it, and the share in which a generator whose expected
values are the study's would pass it (the study's value plus the draw's deviation from this run's
value). The last lines give the share of draws in which every check of a kind passes at once, and
that share cubed (three independent draws, as issue 38 asks). With ``--pooled K`` the checks judge
the mean of K data draws (every deviation divided by the square root of K, each draw as noisy as
this one). A model trained on another seed or another data draw adds its own noise on top, so these
shares are upper bounds.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelbias.analysis.evaluation import threshold_at_fpr  # noqa: E402
from labelbias.runs import run_name  # noqa: E402
from table2_check import Check, checks  # noqa: E402

ATTRIBUTES = ("manufacturer", "pseudo_subgroup")
LABELS = {"clean": "label_clean", "biased": "label_biased"}


@dataclass(frozen=True)
class Model:
    """One density model's validation and test images, on the run's common patient order."""

    val_scores: np.ndarray
    val_labels: dict[str, np.ndarray]  # threshold source -> labels
    test_scores: np.ndarray


@dataclass(frozen=True)
class Cohort:
    """The images both splits score, and which patient and subgroup each image belongs to."""

    val_patient: np.ndarray  # index into the validation patients, per validation image
    test_patient: np.ndarray  # index into the test patients, per test image
    test_labels: np.ndarray  # clean labels of the test images
    test_groups: dict[str, np.ndarray]  # subgroup name (upper case) -> test image mask
    n_val: int
    n_test: int


def load(run: Path, scenarios: list[str]) -> tuple[Cohort, dict[str, list[Model]]]:
    """The cohort and every scenario's replicates (``scenario``, ``scenario@seed1``, ...) of a run."""
    cohort = pd.read_csv(run / "results/data/cohort.tsv", sep="\t", dtype={"image_id": str, "patient_id": str})
    # Predictions cover the validation and test images only.
    cohort = cohort[cohort["split"].isin(["val", "test"])].sort_values("image_id", kind="mergesort").reset_index(drop=True)
    val, test = cohort[cohort["split"] == "val"], cohort[cohort["split"] == "test"]
    val_patient = pd.factorize(val["patient_id"], sort=True)[0]
    test_patient = pd.factorize(test["patient_id"], sort=True)[0]
    groups = {
        str(value).upper(): (test[attribute].astype(str) == value).to_numpy()
        for attribute in ATTRIBUTES
        for value in sorted(test[attribute].astype(str).unique())
    }
    common = Cohort(val_patient, test_patient, test["label"].to_numpy(), groups,
                    int(val_patient.max()) + 1, int(test_patient.max()) + 1)  # fmt: skip
    models: dict[str, list[Model]] = {}
    for scenario in scenarios:
        replicate = 0
        while (run / "results/models" / run_name(scenario, None, replicate) / "predictions.tsv").exists():
            name = run_name(scenario, None, replicate)
            scores = pd.read_csv(run / "results/models" / name / "predictions.tsv", sep="\t", dtype={"image_id": str})
            labels = pd.read_csv(run / "results/labels" / f"{name}.tsv", sep="\t", dtype={"image_id": str})
            frame = cohort[["image_id", "split"]].merge(scores[["image_id", "score"]], on="image_id", validate="one_to_one")
            frame = frame.merge(labels[["image_id", *LABELS.values()]], on="image_id", validate="one_to_one")
            if len(frame) != len(cohort):
                raise SystemExit(f"{name}: predictions or labels miss validation or test images of results/data/cohort.tsv")
            v, t = frame[frame["split"] == "val"], frame[frame["split"] == "test"]
            models.setdefault(scenario, []).append(
                Model(v["score"].to_numpy(), {s: v[c].to_numpy() for s, c in LABELS.items()}, t["score"].to_numpy())
            )
            replicate += 1
        if scenario not in models:
            raise SystemExit(f"no results/models/{scenario}/predictions.tsv in {run}")
    return common, models


def rates(
    model: Model, source: str, cohort: Cohort, val_weights: np.ndarray, test_weights: np.ndarray, target_fpr: float
) -> dict[str, tuple[float, float]]:
    """(TPR, FPR) per subgroup at the threshold the weighted validation patients give.

    A weight is how often a patient was drawn; the threshold is the study's rule on the validation
    images repeated that often (the package's own ``threshold_at_fpr``).
    """
    repeats = val_weights[cohort.val_patient]
    threshold = threshold_at_fpr(np.repeat(model.val_labels[source], repeats), np.repeat(model.val_scores, repeats), target_fpr)
    called = model.test_scores >= threshold
    weight = test_weights[cohort.test_patient].astype(float)
    positive = cohort.test_labels == 1
    found = {}
    for group, member in cohort.test_groups.items():
        pos, neg = weight[member & positive], weight[member & ~positive]
        with np.errstate(invalid="ignore", divide="ignore"):
            found[group] = (pos @ called[member & positive] / pos.sum(), neg @ called[member & ~positive] / neg.sum())
    return found


def replicate_values(
    items: list[Check], models: dict[str, list[Model]], cohort: Cohort,
    val_weights: np.ndarray, test_weights: np.ndarray, target_fpr: float,
) -> list[np.ndarray]:  # fmt: skip
    """Every check's values per seed replicate, (replicates, columns), under one draw of patient weights."""
    cache: dict[tuple[str, str], list[dict[str, tuple[float, float]]]] = {}

    def per_replicate(scenario: str, source: str) -> list[dict[str, tuple[float, float]]]:
        if (scenario, source) not in cache:
            cache[(scenario, source)] = [
                rates(model, source, cohort, val_weights, test_weights, target_fpr) for model in models[scenario]
            ]
        return cache[(scenario, source)]

    values = []
    for item in items:
        found = per_replicate(item.scenario, item.source)
        if item.kind == "clean":
            values.append(np.array([r[item.group] for r in found], dtype=float))
            continue
        index = 0 if item.columns[0].startswith("tpr") else 1
        clean = per_replicate("clean", "clean")
        if len(clean) < len(found):
            raise SystemExit(f"{item.scenario} has {len(found)} seed replicates, the clean model {len(clean)}")
        values.append(np.array([[r[item.group][index] - c[item.group][index]] for r, c in zip(found, clean)]))
    return values


def checked_values(
    items: list[Check], models: dict[str, list[Model]], cohort: Cohort,
    val_weights: np.ndarray, test_weights: np.ndarray, target_fpr: float,
) -> list[tuple[float, ...]]:  # fmt: skip
    """Every check's values (in ``Check.columns`` order) under one draw of patient weights: the mean
    over the seed replicates, as Table 2 has it."""
    found = replicate_values(items, models, cohort, val_weights, test_weights, target_fpr)
    return [tuple(float(v) for v in np.nanmean(values, axis=0)) for values in found]


def noise_table(
    items: list[Check], models: dict[str, list[Model]], cohort: Cohort, draws: int, seed: int,
    target_fpr: float = 0.1, pooled: int = 1,
) -> tuple[pd.DataFrame, dict[str, tuple[float, float]]]:  # fmt: skip
    """Per check: this run's values, their noise and both pass shares; and per kind (and "all") the
    share of draws in which every check of it passes, for this run and for the study-centred one.

    With ``pooled`` k > 1 the checks judge the mean of k independent data draws like this one:
    each deviation shrinks by the square root of k."""
    rng = np.random.default_rng(seed)
    unit = np.ones(cohort.n_val, int), np.ones(cohort.n_test, int)
    per_seed = replicate_values(items, models, cohort, *unit, target_fpr)
    point = [tuple(float(v) for v in np.nanmean(values, axis=0)) for values in per_seed]
    samples = []
    for _ in range(draws):
        val_weights = np.bincount(rng.integers(0, cohort.n_val, cohort.n_val), minlength=cohort.n_val)
        test_weights = np.bincount(rng.integers(0, cohort.n_test, cohort.n_test), minlength=cohort.n_test)
        samples.append(checked_values(items, models, cohort, val_weights, test_weights, target_fpr))
    rows, run_pass, study_pass = [], [], []
    for i, item in enumerate(items):
        drawn = np.array([sample[i] for sample in samples])  # (draws, columns)
        ours = np.array(point[i])
        deviation = (drawn - ours) / np.sqrt(pooled)
        centred = tuple(deviation[:, j] + item.study[j] for j in range(len(item.columns)))
        run_pass.append(np.asarray(item.passes(tuple(deviation[:, j] + ours[j] for j in range(len(item.columns))))))
        study_pass.append(np.asarray(item.passes(centred)))
        rows.append({
            "check": item.label(),
            "ours": " / ".join(f"{v:.3f}" for v in ours),
            "study": " / ".join(f"{v:.3f}" for v in item.study),
            "noise_sd": " / ".join(f"{v:.3f}" for v in np.nanstd(deviation, axis=0)),
            # The seeds' own spread: the standard error of their mean (one model per seed, so a
            # rough figure); the resampling above leaves it out.
            "seed_se": " / ".join(
                f"{v:.3f}" for v in np.nanstd(per_seed[i], axis=0, ddof=1) / np.sqrt(len(per_seed[i]) * pooled)
            ) if len(per_seed[i]) > 1 else "",
            "run_passes": float(run_pass[-1].mean()),
            "study_passes": float(study_pass[-1].mean()),
        })  # fmt: skip
    joint = {}
    for kind in ("clean", "key", "near0", "all"):
        chosen = [i for i, item in enumerate(items) if kind in ("all", item.kind)]
        joint[kind] = (
            float(np.all([run_pass[i] for i in chosen], axis=0).mean()),
            float(np.all([study_pass[i] for i in chosen], axis=0).mean()),
        )
    return pd.DataFrame(rows), joint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("."), help="a finished run's folder")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooled", type=int, default=1, help="judge the mean of this many data draws")
    args = parser.parse_args()
    items = checks()
    cohort, models = load(args.run, sorted({item.scenario for item in items}))
    table, joint = noise_table(items, models, cohort, args.draws, args.seed, pooled=args.pooled)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    judged = "one data draw" if args.pooled == 1 else f"the mean of {args.pooled} data draws"
    print(f"\nshare of {args.draws} draws in which every check of a kind passes on {judged} "
          "(this run / the study's own values):")  # fmt: skip
    for kind, (ours, study) in joint.items():
        print(f"  {kind:5}: {ours:.3f} / {study:.3f}   three independent times: {ours**3:.3f} / {study**3:.3f}")


if __name__ == "__main__":
    main()
