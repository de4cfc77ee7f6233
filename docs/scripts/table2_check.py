"""Issue 38's checks of one finished run against the study's Table 2: the numbers behind
docs/design.md's "The vendors as EMBED's".

Usage (in a finished run's folder, or give it with --run):
    .venv/bin/python docs/scripts/table2_check.py --run .
    .venv/bin/python docs/scripts/table2_check.py --run RUN1 RUN2 ...   (several data draws)

It reads results/eval/table2.tsv and results/eval/findings.tsv and prints

- the clean model's TPR / FPR per subgroup against the study's clean row (a miss: more than
  0.03 off);
- every change from the clean model that issue 38 names as a key change (a miss: outside a
  factor 2 of the study's), and every change the study has within 0.03 of zero (a miss: 0.03
  or more here);
- how many findings hold, and the number of misses;
- the clean models' per-vendor operating point read as a binormal ROC (equal variances): the
  vendor's separation d' = z(TPR) + z(1 - FPR), and the log likelihood ratio at the operating point,
  d' (z(1 - FPR) - d' / 2), 0 at the vendor's symmetric point (TPR = 1 - FPR), negative where the
  common threshold calls the vendor's images positive more readily; the study's alongside.

Given several runs (data draws of one generator) it prints each run's misses, then the checks judged on
the runs' mean, with the mean's standard error (the runs' spread over the root of their number):
one draw's values miss by sampling noise alone too often to judge a generator by
(docs/scripts/check_noise.py).

The study's values are Table 2 of ../shared/reference/study.md (TPR, FPR per subgroup).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

STUDY: dict[tuple[str, str], dict[str, tuple[float, float]]] = {
    ("clean", "clean"): {
        "PS1": (0.916, 0.106), "PS2": (0.913, 0.104), "PS3": (0.915, 0.104),
        "FUJI": (0.923, 0.069), "GEMS": (0.914, 0.170), "HOLO": (0.915, 0.100),
    },
    ("PS1", "clean"): {"PS1": (0.910, 0.106), "PS2": (0.912, 0.108), "PS3": (0.912, 0.104)},
    ("PS1", "biased"): {"PS1": (0.826, 0.042), "PS2": (0.828, 0.045), "PS3": (0.826, 0.048)},
    ("FUJI", "clean"): {"FUJI": (0.750, 0.013), "GEMS": (0.907, 0.158), "HOLO": (0.914, 0.106)},
    ("GEMS", "clean"): {"FUJI": (0.941, 0.092), "GEMS": (0.780, 0.087), "HOLO": (0.914, 0.103)},
    ("HOLO", "clean"): {"FUJI": (0.938, 0.069), "GEMS": (0.943, 0.228), "HOLO": (0.898, 0.096)},
    ("FUJI", "biased"): {"FUJI": (0.728, 0.013), "GEMS": (0.904, 0.153), "HOLO": (0.910, 0.102)},
    ("GEMS", "biased"): {"FUJI": (0.931, 0.076), "GEMS": (0.726, 0.068), "HOLO": (0.901, 0.089)},
    ("HOLO", "biased"): {"FUJI": (0.844, 0.015), "GEMS": (0.828, 0.080), "HOLO": (0.518, 0.012)},
}
# Issue 38's key changes: (scenario, threshold source, subgroup, rate).
KEY_CHANGES = (
    {("PS1", "biased", group, rate) for group in ("PS1", "PS2", "PS3") for rate in ("tpr", "fpr")}
    | {(v, source, v, rate) for v in ("FUJI", "GEMS") for source in ("clean", "biased") for rate in ("tpr", "fpr")}
    | {("HOLO", "biased", "HOLO", "tpr"), ("HOLO", "biased", "HOLO", "fpr")}
    | {("HOLO", "biased", "FUJI", "tpr"), ("HOLO", "biased", "GEMS", "tpr")}
)
CLEAN_TOLERANCE = 0.03
NEAR_ZERO = 0.03


@dataclass(frozen=True)
class Check:
    """One of issue 38's checks: ``clean`` (the clean model's TPR and FPR of a subgroup both within
    ``CLEAN_TOLERANCE`` of the study's), ``key`` (a change from the clean model within a factor 2 of
    the study's) or ``near0`` (a change the study has within ``NEAR_ZERO`` of zero, here too)."""

    kind: str
    scenario: str
    source: str
    group: str
    columns: tuple[str, ...]  # the Table 2 columns it reads: ("tpr", "fpr") or one "{rate}_change"
    study: tuple[float, ...]

    def passes(self, ours: tuple[np.ndarray | float, ...]) -> np.ndarray | bool:
        """Whether values in ``columns``' order pass (elementwise for arrays of draws)."""
        if self.kind == "clean":
            return np.all([np.abs(o - s) <= CLEAN_TOLERANCE for o, s in zip(ours, self.study, strict=True)], axis=0)
        (value,), (study,) = ours, self.study
        if self.kind == "key":
            return (0.5 <= value / study) & (value / study <= 2.0)
        return np.abs(value) < NEAR_ZERO

    def label(self) -> str:
        return f"{self.kind:5} {self.scenario:5} {self.source:6} {self.group:4} {'/'.join(self.columns)}"


def checks() -> list[Check]:
    """Every check, in the order ``check`` prints them."""
    clean = STUDY[("clean", "clean")]
    found = [Check("clean", "clean", "clean", group, ("tpr", "fpr"), rates) for group, rates in clean.items()]
    for (scenario, source), groups in STUDY.items():
        if scenario == "clean":
            continue
        for group, rates in groups.items():
            for rate, study_rate in zip(("tpr", "fpr"), rates, strict=True):
                study_change = study_rate - clean[group][0 if rate == "tpr" else 1]
                if (scenario, source, group, rate) in KEY_CHANGES:
                    kind = "key"
                elif abs(study_change) < NEAR_ZERO:
                    kind = "near0"
                else:
                    continue
                found.append(Check(kind, scenario, source, group, (f"{rate}_change",), (study_change,)))
    return found


def _row(table: pd.DataFrame, scenario: str, source: str, group: str) -> pd.Series:
    # The pseudo-groups are named ps1..ps3 in the run's tables, the vendors by their short name.
    subgroup = table["subgroup"].astype(str).str.upper()
    rows = table[(table["scenario"] == scenario) & (table["threshold_source"] == source) & (subgroup == group)]
    if rows.empty:
        raise SystemExit(f"table2.tsv: no row for scenario {scenario}, threshold_source {source}, subgroup {group}")
    return rows.iloc[0]


def read_table2(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "results" / "eval" / "table2.tsv", sep="\t")


def check(run: Path, table: pd.DataFrame) -> int:
    """Print the checks of one run (its Table 2 given); return the number of misses."""
    misses = 0
    print(f"checks (ours / study; clean: within {CLEAN_TOLERANCE}, key: within a factor 2, near0: within {NEAR_ZERO})")
    for item in checks():
        row = _row(table, item.scenario, item.source, item.group)
        ours = tuple(float(row[column]) for column in item.columns)
        ok = bool(item.passes(ours))
        misses += not ok
        shown = " / ".join(f"{v:+.3f}" if item.kind != "clean" else f"{v:.3f}" for v in ours)
        study = " / ".join(f"{v:+.3f}" if item.kind != "clean" else f"{v:.3f}" for v in item.study)
        print(f"  {item.label()}: {shown}  study {study}  {'ok' if ok else 'MISS'}")
    findings = pd.read_csv(run / "results" / "eval" / "findings.tsv", sep="\t")
    held = int(findings["holds"].astype(str).isin(["True", "yes"]).sum())
    print(f"findings hold: {held}/{len(findings)}; misses above: {misses}")
    return misses


def binormal_point(tpr: float, fpr: float) -> tuple[float, float]:
    """A vendor's separation d' and the log likelihood ratio at its operating point (equal-variance
    binormal ROC through that point)."""
    from scipy.stats import norm

    from_negatives = float(norm.ppf(1.0 - fpr))
    separation = float(norm.ppf(tpr)) + from_negatives
    return separation, separation * (from_negatives - separation / 2.0)


def binormal(table: pd.DataFrame) -> None:
    """Print each vendor's d' and operating-point log likelihood ratio, ours and the study's."""
    print("clean models, binormal reading: d' and log LR at the operating point (ours / study)")
    for group in ("FUJI", "GEMS", "HOLO"):
        row = _row(table, "clean", "clean", group)
        ours, study = binormal_point(row.tpr, row.fpr), binormal_point(*STUDY[("clean", "clean")][group])
        print(f"  {group}: d' {ours[0]:.2f} / {study[0]:.2f}   log LR {ours[1]:+.2f} / {study[1]:+.2f}")


def pooled(runs: list[Path], tables: list[pd.DataFrame]) -> int:
    """Print every check judged on the runs' mean, with its standard error; return the misses."""
    misses = 0
    print(f"checks on the mean of {len(runs)} runs (mean ± standard error / study)")
    for item in checks():
        values = np.array([[float(_row(t, item.scenario, item.source, item.group)[c]) for c in item.columns] for t in tables])
        mean, error = values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(len(runs))
        ok = bool(item.passes(tuple(mean)))
        misses += not ok
        shown = " / ".join(f"{m:+.3f} ± {e:.3f}" for m, e in zip(mean, error, strict=True))
        study = " / ".join(f"{v:+.3f}" for v in item.study)
        print(f"  {item.label()}: {shown}  study {study}  {'ok' if ok else 'MISS'}")
    print(f"misses on the mean: {misses}")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, nargs="+", default=[Path(".")], help="finished runs' folders")
    runs = parser.parse_args().run
    tables = [read_table2(run) for run in runs]
    if len(runs) == 1:
        check(runs[0], tables[0])
        binormal(tables[0])
        return
    for run, table in zip(runs, tables, strict=True):
        print(f"== {run}")
        check(run, table)
    pooled(runs, tables)


if __name__ == "__main__":
    main()
