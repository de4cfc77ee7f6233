"""Operating thresholds and subgroup TPR/FPR (Table 2 of the study), with patient-level intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

# The count metrics: each a share of a test set's images, hits over a total, counted per
# image by IMAGE_COUNTS. They drive Table 2's columns, the patient bootstrap, the seed
# summaries and the paper layout; a new one (PPV: true positives over predicted
# positives, say) is an entry in each of the two tables.
IMAGE_COUNTS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "tp": lambda labels, predicted: (labels == 1) & predicted,
    "pos": lambda labels, predicted: labels == 1,
    "fp": lambda labels, predicted: (labels == 0) & predicted,
    "neg": lambda labels, predicted: labels == 0,
}
COUNT_METRICS: dict[str, tuple[str, str]] = {"tpr": ("tp", "pos"), "fpr": ("fp", "neg")}

TABLE2_COLUMNS = [
    "scenario",
    "threshold_source",
    "attribute",
    "subgroup",
    "threshold",
    *(column for metric in COUNT_METRICS for column in (metric, f"{metric}_ci_low", f"{metric}_ci_high")),
    *(f"{metric}_change_pct" for metric in COUNT_METRICS),
    *(f"n_{total}" for _, total in COUNT_METRICS.values()),
    "n_patients",
]


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FPR, TPR and threshold of every ROC point, highest threshold first (an infinite one to start).

    The same points as scikit-learn's ``roc_curve(drop_intermediate=False)``: one per
    distinct score, an image counted positive when its score is >= the threshold.
    Written out so that the evaluation jobs need not import scikit-learn.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    ordered, positive = scores[order], labels[order] == 1
    last_of_each_score = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    true_positives = np.r_[0, np.cumsum(positive)[last_of_each_score]]
    false_positives = np.r_[0, (last_of_each_score + 1) - true_positives[1:]]
    thresholds = np.r_[np.inf, ordered[last_of_each_score]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return false_positives / false_positives[-1], true_positives / true_positives[-1], thresholds


def threshold_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The ROC point whose FPR is closest to ``target_fpr`` (the study's rule); its score threshold.

    Every distinct score is a candidate (no points dropped); on ties the first
    (highest threshold) wins. Images with score >= threshold are called positive.
    """
    if len(np.unique(labels)) < 2:
        raise ValueError("threshold selection needs both classes in the validation labels")
    fpr, _, thresholds = roc_points(labels, scores)
    index = int(np.argmin(np.abs(fpr - target_fpr)))
    return float(min(thresholds[index], np.nextafter(np.float64(1.0), 2.0)))


def rates(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Every count metric of a set of images (NaN where its total is 0)."""
    counts = {name: int(count(labels, predicted).sum()) for name, count in IMAGE_COUNTS.items()}
    return {
        metric: counts[hit] / counts[total] if counts[total] else float("nan")
        for metric, (hit, total) in COUNT_METRICS.items()
    }


def bootstrap_rates(
    labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray, n_boot: int, rng: np.random.Generator
) -> dict[str, tuple[float, float]]:
    """95% percentile interval of every count metric, resampling patients with all their images."""
    if n_boot == 0:
        return {metric: (float("nan"), float("nan")) for metric in COUNT_METRICS}
    _, inverse = np.unique(patients, return_inverse=True)
    n_patients = inverse.max() + 1
    # Per-patient sums make each resample a weighted sum instead of a concatenation.
    per_patient = {
        name: np.bincount(inverse, weights=count(labels, predicted), minlength=n_patients)
        for name, count in IMAGE_COUNTS.items()
    }
    draws = rng.integers(0, n_patients, size=(n_boot, n_patients))
    weights = np.apply_along_axis(np.bincount, 1, draws, minlength=n_patients)
    intervals = {}
    for metric, (hit, total) in COUNT_METRICS.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (weights @ per_patient[hit]) / (weights @ per_patient[total])
        finite = np.isfinite(values).any()
        intervals[metric] = tuple(float(v) for v in np.nanpercentile(values, [2.5, 97.5])) if finite else (np.nan, np.nan)
    return intervals  # type: ignore[return-value]


COUNT_COLUMNS = ["attribute", "subgroup", "patient_id", *IMAGE_COUNTS]


def patient_counts(labels: np.ndarray, predicted: np.ndarray, patients: np.ndarray) -> pd.DataFrame:
    """True/false positives and positives/negatives per patient: what any resampling of patients needs."""
    frame = pd.DataFrame(
        {"patient_id": patients, **{name: count(labels, predicted) for name, count in IMAGE_COUNTS.items()}}
    )
    return frame.groupby("patient_id", sort=True).sum().astype(int).reset_index()


def totals(labels: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """``n_pos``, ``n_neg``: the size of each count metric's total."""
    return {f"n_{total}": int(IMAGE_COUNTS[total](labels, predicted).sum()) for _, total in COUNT_METRICS.values()}


def subgroup_masks(frame: pd.DataFrame, attributes: list[str]) -> list[tuple[str, str, np.ndarray]]:
    """(attribute, subgroup, row mask): the whole frame as ("all", "all"), then every value
    of every attribute, in sorted order."""
    groups: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(frame), dtype=bool))]
    for attribute in attributes:
        values = frame[attribute].astype(str).to_numpy()
        groups += [(attribute, value, values == value) for value in sorted(set(values))]
    return groups


def evaluate_scenario(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    cohort: pd.DataFrame,
    threshold_source: str,
    attributes: list[str],
    target_fpr: float,
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """TPR and FPR per subgroup on the test set against clean labels, and per-patient counts.

    The threshold comes from the validation set with the scenario's clean or biased
    labels (``threshold_source``). Rows for the whole test set carry attribute "all".
    The counts (``COUNT_COLUMNS``) let Table 2 resample patients and seeds jointly.
    """
    frame = predictions.merge(labels, on="image_id", validate="one_to_one").merge(
        cohort[["image_id", "patient_id", *attributes]], on="image_id", validate="one_to_one"
    )
    val, test = frame[frame["split"] == "val"], frame[frame["split"] == "test"]
    label_column = {"clean": "label_clean", "biased": "label_biased"}[threshold_source]
    threshold = threshold_at_fpr(val[label_column].to_numpy(), val["score"].to_numpy(), target_fpr)
    predicted = test["score"].to_numpy() >= threshold
    truth = test["label_clean"].to_numpy()
    patients = test["patient_id"].to_numpy()
    rng = np.random.default_rng(seed)
    rows, counts = [], []
    for attribute, subgroup, member in subgroup_masks(test, attributes):
        values = rates(truth[member], predicted[member])
        intervals = bootstrap_rates(truth[member], predicted[member], patients[member], n_boot, rng)
        row: dict[str, object] = {
            "threshold_source": threshold_source, "attribute": attribute, "subgroup": subgroup, "threshold": threshold,
        }  # fmt: skip
        for metric in COUNT_METRICS:
            row.update({metric: values[metric], f"{metric}_ci_low": intervals[metric][0], f"{metric}_ci_high": intervals[metric][1]})
        row.update(totals(truth[member], predicted[member]))
        row["n_patients"] = int(len(np.unique(patients[member])))
        rows.append(row)
        counts.append(
            patient_counts(truth[member], predicted[member], patients[member]).assign(attribute=attribute, subgroup=subgroup)
        )
    return pd.DataFrame(rows), pd.concat(counts, ignore_index=True)[COUNT_COLUMNS]


def _rates_matrix(counts: list[pd.DataFrame], patients: np.ndarray) -> dict[str, np.ndarray]:
    """Stack per-replicate patient counts into (patients, replicates) arrays on a common patient order."""
    stacked = {}
    for column in IMAGE_COUNTS:
        stacked[column] = np.column_stack(
            [c.set_index("patient_id")[column].reindex(patients, fill_value=0).to_numpy() for c in counts]
        ).astype(float)
    return stacked


def _percentile_interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _rate(m: dict[str, np.ndarray], hit: str, total: str, weights: np.ndarray) -> np.ndarray:
    """Rates of every replicate under patient weights: (draws, replicates)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ m[hit]) / (weights @ m[total])


def paired_bootstrap(
    models: list[list[pd.DataFrame]], n_boot: int, rng: np.random.Generator
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[np.ndarray]]]:
    """Per count metric, every model's rate per replicate, and the same under resampling.

    ``models[j][k]`` is replicate k of model j (per-patient counts on the same test
    patients, replicate k of every model sharing a seed). Returns the point rates
    (one (replicates,) array per model) and ``n_boot`` resampled rates (one (n_boot,
    replicates) array per model; empty without draws): a two-level bootstrap,
    replicates drawn with replacement, then patients with all their images, the same
    draws for every model, so differences between models are paired.
    """
    patients = np.unique(np.concatenate([c["patient_id"].to_numpy() for counts in models for c in counts]))
    stacks = [_rates_matrix(counts, patients) for counts in models]
    n_rep = len(models[0])
    ones = np.ones((1, len(patients)))
    point = {metric: [_rate(m, hit, total, ones)[0] for m in stacks] for metric, (hit, total) in COUNT_METRICS.items()}
    if not n_boot:
        return point, {metric: [] for metric in COUNT_METRICS}
    draws = rng.integers(0, len(patients), size=(n_boot, len(patients)))
    weights = np.apply_along_axis(np.bincount, 1, draws, minlength=len(patients)).astype(float)
    replicates = rng.integers(0, n_rep, size=(n_boot, n_rep)) if n_rep > 1 else np.zeros((n_boot, 1), int)
    resampled = {
        metric: [np.take_along_axis(_rate(m, hit, total, weights), replicates, axis=1) for m in stacks]
        for metric, (hit, total) in COUNT_METRICS.items()
    }
    return point, resampled


def _over_replicates(sample: np.ndarray) -> np.ndarray:
    """Each draw's mean over its replicates (NaN-aware: a replicate may lack a subgroup's positives)."""
    if sample.shape[1] == 1:
        return sample[:, 0]
    with np.errstate(invalid="ignore"):
        return np.nanmean(sample, axis=1)


def _intervals(result: dict[str, float], samples: dict[str, np.ndarray | None]) -> None:
    """Add ``{name}_ci_low`` and ``{name}_ci_high`` (NaN without draws) for every named sample."""
    for name, sample in samples.items():
        low, high = _percentile_interval(sample) if sample is not None else (float("nan"), float("nan"))
        result[f"{name}_ci_low"], result[f"{name}_ci_high"] = low, high


def compare_to_baseline(
    run_counts: list[pd.DataFrame], baseline_counts: list[pd.DataFrame], n_boot: int, rng: np.random.Generator
) -> dict[str, float]:
    """TPR/FPR of a scenario (mean over replicates) and its change to the baseline, with 95% intervals.

    ``run_counts[k]`` and ``baseline_counts[k]`` are replicate k of the scenario and of
    the baseline (same seed: a paired comparison) on the same test patients; the
    intervals come from :func:`paired_bootstrap`. With one replicate this is the paired
    patient bootstrap.
    """
    point, resampled = paired_bootstrap([run_counts, baseline_counts], n_boot, rng)
    result: dict[str, float] = {}
    for metric in COUNT_METRICS:
        value, reference = point[metric]
        result[metric] = float(np.mean(value))
        result[f"{metric}_change"] = float(np.mean(value - reference))
        result[f"{metric}_baseline"] = float(np.mean(reference))
    for metric in COUNT_METRICS:
        if not n_boot:
            _intervals(result, dict.fromkeys([metric, f"{metric}_change"]))
            continue
        value, reference = resampled[metric]
        _intervals(result, {metric: _over_replicates(value), f"{metric}_change": _over_replicates(value - reference)})
    return result


def compare_remedy(
    remedy_counts: list[pd.DataFrame],
    scenario_counts: list[pd.DataFrame],
    baseline_counts: list[pd.DataFrame],
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """A remedied model against the clean model, beside the scenario's own change, with 95% intervals.

    Per count metric: the remedied rate, its change to the baseline, the scenario's
    change, and the recovered share, 1 - remedy change / scenario change (1: the
    remedy gives the clean model's rate back; 0: it changes nothing; negative: it
    makes it worse). All from one :func:`paired_bootstrap` of the three models.
    """
    point, resampled = paired_bootstrap([remedy_counts, scenario_counts, baseline_counts], n_boot, rng)
    result: dict[str, float] = {}
    for metric in COUNT_METRICS:
        remedied, scenario, reference = point[metric]
        change, scenario_change = float(np.mean(remedied - reference)), float(np.mean(scenario - reference))
        result[metric] = float(np.mean(remedied))
        result[f"{metric}_change"] = change
        result[f"scenario_{metric}_change"] = scenario_change
        with np.errstate(invalid="ignore", divide="ignore"):
            result[f"{metric}_recovered_share"] = float(1.0 - np.float64(change) / np.float64(scenario_change))
    for metric in COUNT_METRICS:
        if not n_boot:
            _intervals(result, dict.fromkeys([metric, f"{metric}_change", f"scenario_{metric}_change", f"{metric}_recovered_share"]))
            continue
        remedied, scenario, reference = resampled[metric]
        change, scenario_change = _over_replicates(remedied - reference), _over_replicates(scenario - reference)
        with np.errstate(invalid="ignore", divide="ignore"):
            recovered = 1.0 - change / scenario_change
        _intervals(result, {
            metric: _over_replicates(remedied),
            f"{metric}_change": change,
            f"scenario_{metric}_change": scenario_change,
            f"{metric}_recovered_share": recovered,
        })  # fmt: skip
    return result


def _subgroup_part(frame: pd.DataFrame, attribute: str, subgroup: str) -> pd.DataFrame:
    """The rows of an evaluation table (or its counts) of one subgroup."""
    return frame[(frame["attribute"] == attribute) & (frame["subgroup"] == subgroup)]


def summarise_runs(
    evaluations: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    groups: dict[tuple, list[tuple[str, str]]],
    key_names: list[str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """One row per group x subgroup: rates averaged over the group's replicates and changes to the baseline.

    ``evaluations[run]`` is (the run's table, its per-patient counts) for one
    threshold source; ``groups[key]`` lists (run, baseline run of the same replicate).
    A change is *supported* when its 95% interval excludes 0: a difference the
    intervals do not support is not a finding.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for key, members in groups.items():
        tables = [evaluations[run][0] for run, _ in members]
        keys = tables[0][["attribute", "subgroup"]].itertuples(index=False)
        for attribute, subgroup in keys:
            def pick(run: str, part: int) -> pd.DataFrame:
                return _subgroup_part(evaluations[run][part], attribute, subgroup)

            result = compare_to_baseline(
                [pick(run, 1) for run, _ in members], [pick(base, 1) for _, base in members], n_boot, rng
            )
            first = pick(members[0][0], 0).iloc[0]
            row = dict(zip(key_names, key, strict=True))
            row.update(
                {
                    "attribute": attribute,
                    "subgroup": subgroup,
                    "threshold": float(np.mean([pick(run, 0)["threshold"].iloc[0] for run, _ in members])),
                    **result,
                    **{f"n_{total}": int(first[f"n_{total}"]) for _, total in COUNT_METRICS.values()},
                    "n_patients": int(first["n_patients"]),
                    "n_seeds": len(members),
                }
            )
            for metric in COUNT_METRICS:
                with np.errstate(invalid="ignore", divide="ignore"):
                    row[f"{metric}_change_pct"] = float(
                        100.0 * np.float64(row[f"{metric}_change"]) / np.float64(row[f"{metric}_baseline"])
                    )
                low, high = row[f"{metric}_change_ci_low"], row[f"{metric}_change_ci_high"]
                row[f"{metric}_change_supported"] = bool(low > 0 or high < 0)
            rows.append(row)
    return pd.DataFrame(rows)


CHANGE_COLUMNS = [
    f"{metric}_change{part}" for metric in COUNT_METRICS for part in ("", "_ci_low", "_ci_high", "_supported")
]
TABLE2_EXTRA = [*CHANGE_COLUMNS, "n_seeds"]


def table2(
    evaluations: dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]],
    runs: dict[str, tuple[str, int]],
    baseline: str,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Table 2: every scenario x threshold source x subgroup, over the scenario's replicates.

    ``evaluations[(run, source)]`` holds a run's evaluation; ``runs`` maps each run
    at its scenario's own rate to (scenario, replicate). Each replicate is compared
    with the baseline model of the same replicate.
    """
    by_replicate = {(scenario, replicate): run for run, (scenario, replicate) in runs.items()}
    frames = []
    for scenario in dict.fromkeys(scenario for scenario, _ in runs.values()):
        members = [(run, by_replicate[(baseline, rep)]) for run, (name, rep) in runs.items() if name == scenario]
        for source in dict.fromkeys(source for _, source in evaluations):
            per_source = {run: evaluations[(run, source)] for pair in members for run in pair}
            groups = {(scenario, source): members}
            frames.append(summarise_runs(per_source, groups, ["scenario", "threshold_source"], n_boot, seed))
    table = pd.concat(frames, ignore_index=True)
    return table[TABLE2_COLUMNS + TABLE2_EXTRA].reset_index(drop=True)


DOSE_COLUMNS = [
    "scenario", "rate", "threshold_source", "attribute", "subgroup",
    *(column for metric in COUNT_METRICS for column in (metric, *(c for c in CHANGE_COLUMNS if c.startswith(f"{metric}_")))),
    "n_seeds",
]  # fmt: skip


def dose_response(
    evaluations: dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]],
    runs: dict[str, tuple[str, float, int]],
    baseline_runs: dict[int, str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Change to the baseline per scenario x bias rate x threshold source x subgroup, over replicates.

    ``runs`` maps each run on the dose-response axis to (scenario, rate, replicate);
    ``baseline_runs[replicate]`` is the baseline model of that replicate.
    """
    frames = []
    for scenario, rate in dict.fromkeys((scenario, rate) for scenario, rate, _ in runs.values()):
        members = [
            (run, baseline_runs[rep]) for run, (name, r, rep) in runs.items() if name == scenario and r == rate
        ]
        for source in dict.fromkeys(source for _, source in evaluations):
            per_source = {run: evaluations[(run, source)] for pair in members for run in pair}
            groups = {(scenario, rate, source): members}
            frames.append(summarise_runs(per_source, groups, ["scenario", "rate", "threshold_source"], n_boot, seed))
    table = pd.concat(frames, ignore_index=True)[DOSE_COLUMNS]
    # Rates in increasing order within scenario x source x subgroup; scenarios and sources as given.
    first_seen = {column: {v: i for i, v in enumerate(dict.fromkeys(table[column]))} for column in ("scenario", "threshold_source")}
    return table.sort_values(
        ["scenario", "threshold_source", "attribute", "subgroup", "rate"],
        key=lambda c: c.map(first_seen[c.name]) if c.name in first_seen else c,
        kind="stable",
    ).reset_index(drop=True)


def table2_layout(table: pd.DataFrame, attribute: str, scenarios: list[str], baseline: str) -> pd.DataFrame:
    """Table 2 as in the paper: one row per (scenario, threshold source), TPR then FPR per subgroup.

    Cells read ``0.912 (-0.3%)``, in bold (``<b>``) when the change's interval
    excludes 0; the baseline row is shown once.
    """
    part = table[table["attribute"] == attribute]
    subgroups = sorted(part["subgroup"].unique())
    rows = []
    for scenario in scenarios:
        sources = ["clean"] if scenario == baseline else ["clean", "biased"]
        for source in sources:
            cells = part[(part["scenario"] == scenario) & (part["threshold_source"] == source)].set_index("subgroup")
            row: dict[str, str] = {"bias in": scenario, "val labels": "" if scenario == baseline else source}
            for metric in COUNT_METRICS:
                for subgroup in subgroups:
                    value = cells.loc[subgroup, metric]
                    change = cells.loc[subgroup, f"{metric}_change_pct"]
                    text = f"{value:.3f}" if scenario == baseline else f"{value:.3f} ({change:+.1f}%)"
                    if scenario != baseline and bool(cells.loc[subgroup, f"{metric}_change_supported"]):
                        text = f"<b>{text}</b>"
                    row[f"{metric.upper()} {subgroup}"] = text
            rows.append(row)
    return pd.DataFrame(rows)


REMEDY_COLUMNS = [
    "scenario", "remedy", "budget", "threshold_source", "attribute", "subgroup", "biased_subgroup", "threshold",
    *(
        column
        for metric in COUNT_METRICS
        for name in (metric, f"{metric}_change", f"scenario_{metric}_change")
        for column in (name, f"{name}_ci_low", f"{name}_ci_high")
    ),
    *(f"{metric}_change_supported" for metric in COUNT_METRICS),
    *(f"scenario_{metric}_change_supported" for metric in COUNT_METRICS),
    *(
        column
        for metric in COUNT_METRICS
        for column in (f"{metric}_recovered_share", f"{metric}_recovered_share_ci_low", f"{metric}_recovered_share_ci_high")
    ),
    "n_seeds",
]  # fmt: skip


def remedy_table(
    evaluations: dict[tuple[str, str], tuple[pd.DataFrame, pd.DataFrame]],
    groups: list[dict],
    targets: dict[str, tuple[str, str]],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Every scenario x remedy x budget x threshold source x subgroup against the clean model.

    ``groups`` has one entry per scenario x remedy x budget, its ``runs`` a list of
    (remedy run, scenario run, baseline run) per replicate; ``evaluations[(run, source)]``
    holds each run's evaluation; ``targets[scenario]`` is the (attribute, subgroup) it
    biases. A recovered share is NaN where the scenario's own
    change is not supported (its interval covers 0): there is nothing to recover.
    """
    rng = np.random.default_rng(seed)
    sources = list(dict.fromkeys(source for _, source in evaluations))
    rows = []
    for group in groups:
        members = [tuple(runs) for runs in group["runs"]]
        for source in sources:
            table = evaluations[(members[0][0], source)][0]
            for attribute, subgroup in table[["attribute", "subgroup"]].itertuples(index=False):
                counts = [
                    [_subgroup_part(evaluations[(runs[j], source)][1], attribute, subgroup) for runs in members]
                    for j in range(3)
                ]
                result = compare_remedy(*counts, n_boot, rng)
                row = {
                    "scenario": group["scenario"], "remedy": group["remedy"], "budget": group["budget"],
                    "threshold_source": source, "attribute": attribute, "subgroup": subgroup,
                    "biased_subgroup": (attribute, subgroup) == tuple(targets[group["scenario"]]),
                    "threshold": float(np.mean([
                        _subgroup_part(evaluations[(runs[0], source)][0], attribute, subgroup)["threshold"].iloc[0]
                        for runs in members
                    ])),
                    **result,
                    "n_seeds": len(members),
                }  # fmt: skip
                for metric in COUNT_METRICS:
                    for name in (f"{metric}_change", f"scenario_{metric}_change"):
                        row[f"{name}_supported"] = bool(row[f"{name}_ci_low"] > 0 or row[f"{name}_ci_high"] < 0)
                    if not row[f"scenario_{metric}_change_supported"]:
                        for suffix in ("", "_ci_low", "_ci_high"):
                            row[f"{metric}_recovered_share{suffix}"] = float("nan")
                rows.append(row)
    return pd.DataFrame(rows, columns=REMEDY_COLUMNS)
