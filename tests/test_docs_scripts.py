"""The docs' own readers of a run: docs/scripts/table2_check.py scores a run against the study."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from workflow_helpers import ROOT

_spec = importlib.util.spec_from_file_location("table2_check", ROOT / "docs" / "scripts" / "table2_check.py")
table2_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table2_check)


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
