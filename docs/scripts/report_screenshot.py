"""Screenshot the front page of a finished run's Snakemake report for the README.

Usage: python docs/scripts/report_screenshot.py results/report.html docs/images/report-front-page.png

The report is a page that its own scripts build in the browser, so the picture is taken
by headless Chromium (Debian's package; `make browser` installs it) after the page's
scripts have run. The image is written to a temporary file first and moved into place,
so a failed run leaves the previous picture untouched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The width of a laptop screen; the height shows the findings, the audit line and the
# start of Table 2, which is what a reader sees before scrolling.
WINDOW = (1280, 1100)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A headless browser with nothing of its own to fetch (the report is one self-contained file);
# tests/test_report.py opens the report with the same flags.
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("report_screenshot: headless Chromium is needed: `make browser` (or apt-get install chromium)")
    return path


def screenshot(report: Path, target: Path, window: tuple[int, int] = WINDOW) -> None:
    if not report.is_file():
        sys.exit(f"report_screenshot: {report} does not exist: run `make run` first")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        partial = Path(scratch) / "shot.png"
        command = [
            chromium(),
            *HEADLESS_FLAGS,
            "--hide-scrollbars",
            f"--user-data-dir={Path(scratch) / 'profile'}",
            # Time for the report's scripts to build the page before the picture is taken.
            "--virtual-time-budget=15000",
            f"--window-size={window[0]},{window[1]}",
            f"--screenshot={partial}",
            report.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if not partial.exists() or not partial.read_bytes().startswith(PNG_SIGNATURE):
            sys.exit(f"report_screenshot: Chromium wrote no picture of {report}:\n{result.stderr[-2000:]}")
        tmp_target = target.with_suffix(".partial.png")
        shutil.move(partial, tmp_target)
        os.replace(tmp_target, target)
    print(f"wrote {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    screenshot(args.report, args.target)


if __name__ == "__main__":
    main()
