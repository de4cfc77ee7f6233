"""Reading the two EMBED tables with explicit types and row-level error messages.

EMBED ships a metadata table (one row per image) and a clinical table (one row per
exam finding). Both have mixed-type columns, so everything is read as text first
and only the columns the study needs are converted, each failure reported with the
file, the column and the line number a user sees in an editor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputTableError

# Column -> kind. "int" ids must be present on every row; "float" may be empty.
METADATA_COLUMNS: dict[str, str] = {
    "empi_anon": "int",
    "acc_anon": "int",
    "anon_dicom_path": "str",
    "FinalImageType": "str",
    "ImageLateralityFinal": "str",
    "ViewPosition": "str",
    "spot_mag": "float",
    "Manufacturer": "str",
}
CLINICAL_COLUMNS: dict[str, str] = {
    "empi_anon": "int",
    "acc_anon": "int",
    "tissueden": "float",
    "GENDER_DESC": "str",
}
MERGE_KEYS = ["empi_anon", "acc_anon"]


@dataclass(frozen=True)
class EmbedTables:
    metadata: pd.DataFrame
    clinical: pd.DataFrame


def _line_number(row_index: int) -> int:
    # Line 1 of the file is the header; row 0 of the frame is line 2.
    return row_index + 2


def _convert_column(frame: pd.DataFrame, column: str, kind: str, path: Path) -> pd.Series:
    raw = frame[column]
    if kind == "str":
        return raw.fillna("").astype(str)
    stripped = raw.fillna("").astype(str).str.strip()
    numbers = pd.to_numeric(stripped.where(stripped != "", None), errors="coerce")
    not_numeric = (stripped != "") & numbers.isna()
    if kind == "int":
        missing = stripped == ""
        if missing.any():
            first = int(missing.to_numpy().nonzero()[0][0])
            raise InputTableError(
                f"{path}: column '{column}' is empty on line {_line_number(first)} "
                f"({int(missing.sum())} empty value(s) in total); every row needs an integer id"
            )
        fractional = numbers.notna() & (numbers != numbers.round())
        not_numeric = not_numeric | fractional
    if not_numeric.any():
        first = int(not_numeric.to_numpy().nonzero()[0][0])
        raise InputTableError(
            f"{path}: column '{column}' has a non-{'integer' if kind == 'int' else 'numeric'} "
            f"value {stripped.iloc[first]!r} on line {_line_number(first)} "
            f"({int(not_numeric.sum())} bad value(s) in total)"
        )
    if kind == "int":
        return numbers.astype("int64")
    return numbers.astype("float64")


def read_table(path: str | Path, columns: dict[str, str], optional: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a CSV table, check required columns and convert the typed ones.

    Every column is read as text (EMBED's tables mix types within columns, which
    makes pandas guess differently per chunk); unknown columns are kept as text.
    """
    path = Path(path)
    if not path.is_file():
        raise InputTableError(f"{path}: table not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise InputTableError(f"{path}: cannot be parsed as CSV ({error})") from error
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputTableError(
            f"{path}: missing required column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(frame.columns)}"
        )
    if frame.empty:
        raise InputTableError(f"{path}: table has a header but no rows")
    typed = {**columns, **{k: v for k, v in (optional or {}).items() if k in frame.columns}}
    for column, kind in typed.items():
        frame[column] = _convert_column(frame, column, kind, path)
    frame.attrs["source"] = str(path)
    return frame


def read_embed_tables(
    metadata_path: str | Path,
    clinical_path: str | Path,
    image_path_column: str = "anon_dicom_path",
    attribute_columns: list[str] | None = None,
) -> EmbedTables:
    """Read and type-check the EMBED metadata and clinical tables."""
    metadata_columns = dict(METADATA_COLUMNS)
    metadata_columns[image_path_column] = "str"
    metadata = read_table(metadata_path, metadata_columns)
    clinical_columns = dict(CLINICAL_COLUMNS)
    clinical = read_table(clinical_path, clinical_columns, optional={"age_at_study": "float"})
    for column in attribute_columns or []:
        if column not in metadata.columns and column not in clinical.columns:
            raise InputTableError(
                f"{metadata_path} / {clinical_path}: attribute column '{column}' "
                "(config key cohort.attributes) is in neither table"
            )
    return EmbedTables(metadata=metadata, clinical=clinical)
