"""The report's front page: findings, audit, Table 2 and Fig. 1 as reStructuredText."""

from __future__ import annotations

import base64
import re

import pandas as pd
from docutils.core import publish_parts

from labelbias.analysis.frontpage import finding_lines, front_page, remedy_lines

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
) * 400  # a valid header, padded to a realistic length

FINDINGS = pd.DataFrame(
    {
        "finding": ["a", "b", "c"],
        "scenario": ["PS1", "FUJI", "HOLO"],
        "threshold_source": ["clean", "clean", "biased"],
        "expected": ["no subgroup's TPR moves by 0.03 or more", "FUJI's TPR and FPR fall", "every subgroup falls"],
        "observed": ["...", "...", "..."],
        "holds": ["yes", "no", "yes"],
    }
)
TARGETS = {"clean": None, "PS1": ["pseudo_subgroup", "PS1"], "FUJI": ["manufacturer", "FUJI"], "HOLO": ["manufacturer", "HOLO"]}


def table2() -> pd.DataFrame:
    rows = []
    for scenario, source, attribute, subgroup, change in [
        ("PS1", "clean", "pseudo_subgroup", "PS1", -0.007),
        ("FUJI", "clean", "manufacturer", "FUJI", -0.089),
        ("FUJI", "clean", "manufacturer", "GEMS", -0.02),
        ("HOLO", "biased", "manufacturer", "HOLO", -0.373),
    ]:
        rows.append({"scenario": scenario, "threshold_source": source, "attribute": attribute, "subgroup": subgroup,
                     "tpr_change": change, "tpr_change_ci_low": change - 0.03, "tpr_change_ci_high": change + 0.03,
                     "fpr_change": -0.05, "fpr_change_ci_low": -0.07, "fpr_change_ci_high": -0.03})
    return pd.DataFrame(rows)


def test_one_line_per_finding_with_its_verdict_and_the_biased_subgroups_change():
    lines = finding_lines(FINDINGS, table2(), TARGETS)
    assert len(lines) == 3
    assert lines[1] == (
        "\\(b) FUJI bias (separable minority), clean-label threshold: FUJI's TPR and FPR fall, the others' stay: "
        "**does not hold**; FUJI: TPR -0.089 [-0.119, -0.059], FPR -0.050 [-0.070, -0.030]"
    )
    assert "**holds**; HOLO: TPR -0.373" in lines[2] and lines[0].startswith("\\(a) PS1 bias (not separable)")


def test_front_page_renders_with_docutils_and_keeps_the_image_whole():
    audit = pd.DataFrame(
        {
            "scenario": ["FUJI", "FUJI"], "attribute": ["manufacturer"] * 2, "subgroup": ["FUJI"] * 2,
            "biased_subgroup": [True, True], "strategy": ["random", "suspect"], "tpr_biased": [0.69] * 2,
            "tpr_clean": [0.81] * 2, "tpr_lost": [0.118] * 2, "recover_share": [0.9] * 2,
            "n_to_recover": [389.0, 25.0], "n_val_patients": [389] * 2,
        }
    )
    html = "<html><head><style>table.t{color:red}</style></head><body><table class='t'><tr><td>0.898</td></tr></table></body></html>"
    page = front_page("The workflow, described.", FINDINGS, table2(), html, PNG, TARGETS, audit)
    assert page.startswith("{% raw %}") and page.rstrip().endswith("{% endraw %}")
    assert max(len(line) for line in page.splitlines()) < 10_000  # docutils' line-length limit
    assert "- FUJI (TPR lost 0.118): most suspect first: 25 of 389 patients; random: all 389 patients" in page
    # Snakemake renders the page with Jinja (the raw tags go), then with docutils
    body = publish_parts(page.replace("{% raw %}", "").replace("{% endraw %}", ""), writer="html",
                         settings_overrides={"report_level": 5})["html_body"]
    assert "2 of 3 of the study" in body
    assert "<td>0.898</td>" in body and "The workflow, described." in body
    source = re.search(r'src="data:image/png;base64,([^"]*)"', body).group(1)
    assert base64.b64decode("".join(source.split())) == PNG
    assert "<ol" not in body  # "(a)" is not read as an enumerated list


def test_audit_without_a_biased_subgroup_in_the_validation_set_says_so():
    # A tiny run can leave the biased vendor without validation patients: the audit
    # table then has rows for the other subgroups only.
    audit = pd.DataFrame(
        {
            "scenario": ["FUJI", "FUJI"], "attribute": ["manufacturer"] * 2, "subgroup": ["HOLO"] * 2,
            "biased_subgroup": [False, False], "strategy": ["random", "suspect"], "tpr_biased": [0.9] * 2,
            "tpr_clean": [0.9] * 2, "tpr_lost": [0.0] * 2, "recover_share": [0.9] * 2,
            "n_to_recover": [float("nan")] * 2, "n_val_patients": [2] * 2,
        }
    )
    page = front_page("The workflow.", FINDINGS, table2(), "<html><body></body></html>", PNG, TARGETS, audit)
    assert "to recover 90% of the TPR" in page
    assert "- No biased subgroup has validation patients in this run: nothing to audit." in page


def test_remedy_lines_count_what_each_audit_fixed_against_a_random_audit_of_as_many_patients():
    summary = pd.DataFrame(
        [
            {"scenario": "FUJI", "remedy": remedy, "budget": budget, "threshold_source": "biased", "subgroup": "FUJI",
             "biased_subgroup": True, "scenario_tpr_change": -0.2, "tpr_recovered_share": share,
             "tpr_recovered_share_ci_low": share - 0.1, "tpr_recovered_share_ci_high": share + 0.1}
            for remedy, budget, share in [("relabel_suspect", 0.05, 0.8), ("drop_flagged", float("nan"), 0.7)]
        ]
    )
    # Two seeds' runs: the counts are their means; 10 of 200 patients audited fix 5% of the flips at random.
    labels = pd.DataFrame(
        {"run": ["FUJI@relabel_suspect0.05", "FUJI@relabel_suspect0.05@seed1", "FUJI@drop_flagged", "HOLO@relabel_suspect0.05"],
         "remedy": ["relabel_suspect", "relabel_suspect", "drop_flagged", "relabel_suspect"],
         "budget": [0.05, 0.05, float("nan"), 0.05], "n_patients": [200] * 4, "patients_audited": [10] * 4,
         "flips_before": [120, 120, 120, 999], "flips_fixed": [60, 70, 0, 999]}
    )
    (line,) = remedy_lines(summary, labels=labels)
    assert "relabelling the 5% most suspect patients recovers 80% [70%, 90%] (fixing 65 of 120 flipped training and " \
        "validation labels; as many patients at random fix 6 in expectation)" in line
    assert line.endswith("dropping the flagged images recovers 70% [60%, 80%]")
    assert "fixing" not in remedy_lines(summary)[0]
