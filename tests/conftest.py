"""Shared fixtures: the package on sys.path, the hand-written EMBED fixture with real DICOM files."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import workflow_helpers  # noqa: E402
from dicom_factory import write_mammogram  # noqa: E402
from workflow_helpers import TINY_RUN, run_ok  # noqa: E402

# Fixtures that run the workflow: a test that uses one is a workflow test.
WORKFLOW_FIXTURES = {"tiny_run"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if WORKFLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.workflow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before the test's fixtures are set up, so a session fixture that runs jobs is checked too.
    workflow_helpers.current_test_may_run_jobs = item.get_closest_marker("workflow") is not None

FIXTURE = Path(__file__).resolve().parent / "data" / "embed_small"

# Vendor -> how the fixture writes its DICOMs (photometric, bits stored, JPEG 2000).
FIXTURE_VENDORS = {
    "HOLOGIC, Inc.": ("MONOCHROME2", 12, True),
    "GE MEDICAL SYSTEMS": ("MONOCHROME2", 14, False),
    "FUJIFILM Corporation": ("MONOCHROME1", 12, False),
    "GE HEALTHCARE": ("MONOCHROME2", 12, False),
}
DENSITY_OF_PATIENT = {10000001: 0.35, 10000002: 0.6, 10000003: 0.85, 10000007: 0.1, 10000008: 0.65}


@pytest.fixture
def embed_dir(tmp_path: Path) -> Path:
    """A copy of the hand-written EMBED tables with a real DICOM file for every metadata row."""
    target = tmp_path / "embed"
    (target / "tables").mkdir(parents=True)
    shutil.copy(FIXTURE / "metadata.csv", target / "tables" / "metadata.csv")
    shutil.copy(FIXTURE / "clinical.csv", target / "tables" / "clinical.csv")
    metadata = pd.read_csv(FIXTURE / "metadata.csv", dtype=str).drop_duplicates()
    for row in metadata.itertuples():
        photometric, bits, j2k = FIXTURE_VENDORS[row.Manufacturer]
        write_mammogram(
            target / row.anon_dicom_path,
            rows=int(row.Rows),
            columns=int(row.Columns),
            laterality=row.ImageLateralityFinal,
            manufacturer=row.Manufacturer,
            photometric=photometric,
            bits_stored=bits,
            jpeg2000=j2k,
            dense_fraction=DENSITY_OF_PATIENT.get(int(row.empi_anon), 0.5),
            patient_id=row.empi_anon,
            view=row.ViewPosition,
        )
    return target


@pytest.fixture
def embed_tables_paths(embed_dir: Path) -> tuple[Path, Path]:
    return embed_dir / "tables" / "metadata.csv", embed_dir / "tables" / "clinical.csv"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One real run of the whole workflow on the tiny synthetic config, shared by tests that only read it."""
    return run_ok(tmp_path_factory.mktemp("tiny") / "run", TINY_RUN)
