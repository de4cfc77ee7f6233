"""The Snakemake report of a real run, opened in a real (headless) browser."""

from __future__ import annotations

import base64
import importlib.util
import re
import shutil
import subprocess

import pandas as pd
import pytest

from workflow_helpers import ROOT, snakemake

pytestmark = pytest.mark.workflow  # every test here runs Snakemake jobs

# The README's picture of the report is taken with the same browser flags.
_screenshot_spec = importlib.util.spec_from_file_location("report_screenshot", ROOT / "docs/scripts/report_screenshot.py")
report_screenshot = importlib.util.module_from_spec(_screenshot_spec)
_screenshot_spec.loader.exec_module(report_screenshot)
CHROMIUM_FLAGS = report_screenshot.HEADLESS_FLAGS


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed for this test: `make test` installs it (apt-get install chromium)"
    return path


def test_report_shows_tables_and_figures_in_chromium(tiny_run, tmp_path):
    result = snakemake(tiny_run, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    report = tiny_run / "results/report.html"
    browser = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run(
        [*browser, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180
    ).stdout
    # The report is built by scripts from data embedded in the file: outside the
    # <script> elements, the categories exist only once the browser has run them.
    rendered = re.sub(r"<script[\s\S]*?</script>", "", dom)
    raw = re.sub(r"<script[\s\S]*?</script>", "", report.read_text())
    for text in ["1. Data", "2. Separability", "3. Table 2", "4. Figures", "5. Provenance", "6. Detection", "7. Clean audit",
                 "8. Images"]:
        assert text in rendered, f"{text!r} missing from the rendered report"
        assert text not in raw
    # and the results each category shows are embedded in the page
    page = report.read_text()
    for name in ["table1.tsv", "manufacturer.tsv", "pseudo_subgroup.tsv", "table2.tsv", "table2.html",
                 "feature_space.png", "thresholds.png", "provenance.html", "summary.tsv", "detection.png",
                 "HOLO.png", "audit.png"]:
        assert name in page, f"{name} is not in the report"
    # The front page answers first: the findings, then the audit, Table 2 and Fig. 1
    front = rendered[: rendered.find("About this workflow")]
    assert "Findings" in front and "of the study's findings hold in this run" in front.replace("&#x27;", "'")
    findings = pd.read_csv(tiny_run / "results/eval/findings.tsv", sep="\t")
    for row in findings.itertuples():
        assert f"({row.finding}) {row.scenario} bias" in front
    sections = [front.find(f'id="{name}"') for name in ("findings", "what-a-clean-audit-buys", "table-2", "fig-1")]
    assert -1 not in sections and sections == sorted(sections), sections
    # every figure loads: the front page's Fig. 1 is the run's figure, byte for byte, and
    # every PNG the report embeds decodes to a whole PNG file
    image = re.search(r'<img[^>]+src="data:image/png;base64,([^"]+)"', front)
    assert image and base64.b64decode("".join(image.group(1).split())) == (
        tiny_run / "results/figures/feature_space.png"
    ).read_bytes()
    embedded = re.findall(r'"data_uri": "data:image/png;[^"]*?filename=([^;"]+);base64,([^"]+)"', page)
    assert {name for name, _ in embedded} >= {"feature_space.png", "audit.png", "thresholds.png", "detection.png"}
    for name, data in embedded:
        files = {path.read_bytes() for path in (tiny_run / "results").rglob(name)}
        assert base64.b64decode(data) in files, name
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [*browser, "--window-size=1400,900", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True, timeout=180,
    )
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
