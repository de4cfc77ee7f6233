"""The report's front page: the findings, Table 2 and Fig. 1 before anything else.

Snakemake's report opens on the workflow description (reStructuredText rendered
with Jinja). After a run that description is written from the run's own results,
so a reader sees whether the study's findings held, and by how much, without a
click; every other result stays in its category, linked from here.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd

SOURCE_WORDS = {"clean": "clean-label threshold", "biased": "biased-label threshold"}
# Snakemake's report (9.x) centres its front page vertically in a window-high box and
# keeps it 32rem wide: a page taller than the window would lose its top (the findings)
# and the figure would be a thumbnail. Top-aligned and wider instead.
FRONT_PAGE_STYLE = "div.h-screen.items-center{align-items:flex-start}div.prose.max-w-lg{max-width:60rem}"
# The study's patterns (labelbias.analysis.findings), in a few words each.
KINDS = {"a": "not separable", "b": "separable minority", "c": "separable majority"}
CLAIMS = {
    ("a", "clean"): "no subgroup's TPR moves",
    ("a", "biased"): "every subgroup's TPR and FPR fall",
    ("b", "clean"): "{subgroup}'s TPR and FPR fall, the others' stay",
    ("b", "biased"): "{subgroup}'s TPR and FPR fall, the others' stay",
    ("c", "biased"): "every subgroup's TPR and FPR fall, {subgroup}'s most",
}


def _interval(row: pd.Series, metric: str) -> str:
    return (
        f"{metric.upper()} {row[metric + '_change']:+.3f} "
        f"[{row[metric + '_change_ci_low']:+.3f}, {row[metric + '_change_ci_high']:+.3f}]"
    )


def finding_lines(findings: pd.DataFrame, table2: pd.DataFrame, targets: dict[str, list[str] | None]) -> list[str]:
    """One short line per checked finding: what the study predicts, holds or not, the key change.

    The key change is the biased subgroup's TPR and FPR change with its 95% interval.
    """
    lines = []
    for row in findings.itertuples():
        target = targets.get(str(row.scenario))
        verdict = "**holds**" if row.holds == "yes" else "**does not hold**"
        key = ""
        if target:
            attribute, subgroup = target
            match = table2[
                (table2["scenario"] == row.scenario)
                & (table2["threshold_source"] == row.threshold_source)
                & (table2["attribute"] == attribute)
                & (table2["subgroup"].astype(str) == subgroup)
            ]
            if len(match):
                first = match.iloc[0]
                key = f"; {subgroup}: {_interval(first, 'tpr')}, {_interval(first, 'fpr')}"
        subgroup = target[1] if target else str(row.scenario)
        claim = CLAIMS.get((str(row.finding), str(row.threshold_source)), str(row.expected)).format(subgroup=subgroup)
        kind = KINDS.get(str(row.finding), "")
        # "\(" keeps docutils from reading "(a)" as an enumerated list.
        lines.append(
            f"\\({row.finding}) {row.scenario} bias ({kind}), {SOURCE_WORDS.get(str(row.threshold_source), row.threshold_source)}: "
            f"{claim}: {verdict}{key}"
        )
    return lines


def _raw_html(html: str) -> str:
    """The body of a small HTML page (its style kept), indented for an rst raw block."""
    style = "".join(re.findall(r"<style>[\s\S]*?</style>", html))
    body = re.search(r"<body>([\s\S]*)</body>", html)
    content = style + (body.group(1) if body else html)
    return "\n".join("   " + line for line in content.splitlines())


REMEDY_WORDS = {
    "relabel_suspect": "relabelling the {budget} most suspect patients",
    "relabel_random": "{budget} at random",
    "drop_flagged": "dropping the flagged images",
    "forward_correction": "the loss correction",
}


AUDIT_REMEDIES = ("relabel_suspect", "relabel_random")


def audit_counts(labels: pd.DataFrame, scenario: str, remedy: str, budget: float) -> str:
    """What an audit fixed of a scenario's flipped training and validation labels (mean over its runs),
    next to what auditing as many patients at random fixes in expectation, which needs no model:
    every patient is drawn with probability audited / pool, so a random audit fixes that share of the flips."""
    runs = labels[
        (labels["run"].astype(str).str.split("@").str[0] == scenario)
        & (labels["remedy"] == remedy)
        & np.isclose(labels["budget"].astype(float), budget)
    ]
    if runs.empty:
        return ""
    fixed, flips = runs["flips_fixed"].mean(), runs["flips_before"].mean()
    at_random = (runs["flips_before"] * runs["patients_audited"] / runs["n_patients"]).mean()
    expected = f"; as many patients at random fix {at_random:.0f} in expectation" if remedy == "relabel_suspect" else ""
    return f" (fixing {fixed:.0f} of {flips:.0f} flipped training and validation labels{expected})"


def remedy_lines(remedies: pd.DataFrame, source: str = "biased", labels: pd.DataFrame | None = None) -> list[str]:
    """One line per remedied scenario: what each remedy recovers of the biased subgroup's TPR change,
    and with ``labels`` (results/remedies/labels.tsv) what each audit fixed of the flipped labels."""
    rows = remedies[remedies["biased_subgroup"].astype(str).str.lower().eq("true") & (remedies["threshold_source"] == source)]
    lines = []
    for scenario, part in rows.groupby("scenario", sort=False):
        subgroup, lost = part["subgroup"].iloc[0], float(part["scenario_tpr_change"].iloc[0])
        head = f"{scenario}: {subgroup}'s TPR changes by {lost:+.3f} without a remedy"
        if part["tpr_recovered_share"].isna().all():
            lines.append(f"{head}, within noise: nothing to recover")
            continue
        said = []
        for row in part.itertuples(index=False):
            budget = "" if pd.isna(row.budget) else f"{row.budget:.0%}"
            words = REMEDY_WORDS.get(row.remedy, row.remedy).format(budget=budget)
            counts = (
                audit_counts(labels, str(scenario), row.remedy, float(row.budget))
                if labels is not None and row.remedy in AUDIT_REMEDIES
                else ""
            )
            said.append(
                f"{words} recovers {row.tpr_recovered_share:.0%} "
                f"[{row.tpr_recovered_share_ci_low:.0%}, {row.tpr_recovered_share_ci_high:.0%}]{counts}"
            )
        lines.append(f"{head}; {'; '.join(said)}")
    return lines


def front_page(
    description: str,
    findings: pd.DataFrame,
    table2: pd.DataFrame,
    table2_html: str,
    figure_png: bytes,
    targets: dict[str, list[str] | None],
    audit: pd.DataFrame | None = None,
    class_name: str = "density",
    remedies: pd.DataFrame | None = None,
    remedy_labels: pd.DataFrame | None = None,
) -> str:
    """The report's front page as reStructuredText.

    Snakemake renders the description with Jinja before docutils: the page is wrapped
    in a raw block so nothing in it (CSS braces, a ``{#``) is read as a template.
    """
    held = int((findings["holds"] == "yes").sum())
    parts = [
        "{% raw %}",
        ".. raw:: html",
        "",
        f"   <style>{FRONT_PAGE_STYLE}</style>",
        "",
        "Findings",
        "========",
        "",
        f"{held} of {len(findings)} of the study's findings hold in this run "
        "(a change counts when it is at least ``evaluation.min_tpr_change`` for a TPR, "
        "``min_fpr_change`` or, if smaller, ``min_fpr_change_relative`` of the clean value for an FPR, "
        "and its 95% bootstrap interval (over the test patients, and the seeds when there are several) excludes 0; details: findings.tsv_).",
        "",
        *[f"- {line}" for line in finding_lines(findings, table2, targets)],
        "",
    ]
    if audit is not None and len(audit):
        biased = audit[audit["biased_subgroup"].astype(str).str.lower() == "true"]
        # The share is a config value, the same on every row; a run whose biased
        # subgroups have no validation patients has rows, but none of them biased.
        share = float(audit["recover_share"].iloc[0])
        items = []
        for scenario, rows in biased.groupby("scenario", sort=False):
            by = rows.set_index("strategy")["n_to_recover"]
            lost = float(rows["tpr_lost"].iloc[0])
            n_val = int(rows["n_val_patients"].iloc[0])
            said = [
                f"{'most suspect first' if strategy == 'suspect' else 'random'}: "
                + (
                    "no audit size"
                    if pd.isna(by[strategy])
                    else f"all {n_val} patients" if int(by[strategy]) >= n_val else f"{int(by[strategy])} of {n_val} patients"
                )
                for strategy in ("suspect", "random")
                if strategy in by.index
            ]
            items.append(f"- {scenario} (TPR lost {lost:.3f}): {'; '.join(said)}")
        parts += [
            "What a clean audit buys",
            "=======================",
            "",
            f"Validation patients to relabel before picking the threshold, to recover {share:.0%} of the TPR "
            "the biased-label threshold costs the biased subgroup (audit.png_; the table is in "
            "category 7):",
            "",
            *(items or ["- No biased subgroup has validation patients in this run: nothing to audit."]),
            "",
        ]
    if remedies is not None and len(remedies):
        parts += [
            "What fixing the training labels buys",
            "====================================",
            "",
            "Each remedied scenario's model retrained on remedied labels; the share of the biased "
            "subgroup's TPR change (to the clean model, threshold on the remedied validation labels) "
            "that each remedy recovers (remedies.png_; the table is in category 9):",
            "",
            *[f"- {line}" for line in remedy_lines(remedies, labels=remedy_labels)],
            "",
        ]
    encoded = base64.b64encode(figure_png).decode("ascii")
    parts += [
        "Table 2",
        "=======",
        "",
        ".. raw:: html",
        "",
        _raw_html(table2_html),
        "",
        "Fig. 1",
        "======",
        "",
        f"PC1 of each model's test features per {class_name} class (feature_space.png_; the numbers "
        "per class and subgroup: pc1_shift.tsv_).",
        "",
        # A raw <img> with the data split over lines: docutils refuses lines over 10,000
        # characters, and browsers drop the line breaks from a URL.
        ".. raw:: html",
        "",
        f'   <img alt="Fig. 1: PC1 per {class_name} class" style="width:100%" src="data:image/png;base64,',
        *[f"   {encoded[i:i + 76]}" for i in range(0, len(encoded), 76)],
        '   ">',
        "",
        "About this workflow",
        "===================",
        "",
        description.strip(),
        "",
        "{% endraw %}",
    ]
    return "\n".join(parts)
