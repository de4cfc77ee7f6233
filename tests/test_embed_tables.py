"""Reading the EMBED tables: explicit types and errors that name file, column and line."""

from __future__ import annotations

import pandas as pd
import pytest

from labelbias.data.embed import read_embed_tables
from labelbias.errors import InputTableError


def test_reads_the_hand_written_fixture_with_typed_ids(embed_tables_paths):
    metadata_path, clinical_path = embed_tables_paths
    tables = read_embed_tables(metadata_path, clinical_path)
    assert tables.metadata["empi_anon"].dtype == "int64"
    assert tables.metadata["acc_anon"].iloc[0] == 1000000000000011  # 16 digits survive as int64
    assert tables.clinical["tissueden"].dtype == "float64"
    assert tables.metadata["spot_mag"].isna().sum() == len(tables.metadata) - 1
    # EMBED's two-space race string is kept verbatim.
    assert "African American  or Black" in set(tables.clinical["RACE_DESC"])


def test_missing_column_names_file_and_column(embed_tables_paths, tmp_path):
    metadata_path, clinical_path = embed_tables_paths
    broken = tmp_path / "metadata_no_view.csv"
    pd.read_csv(metadata_path, dtype=str).drop(columns="ViewPosition").to_csv(broken, index=False)
    with pytest.raises(InputTableError, match=r"metadata_no_view\.csv: missing required column\(s\) 'ViewPosition'"):
        read_embed_tables(broken, clinical_path)


def test_wrong_dtype_names_file_column_value_and_line(embed_tables_paths, tmp_path):
    metadata_path, clinical_path = embed_tables_paths
    frame = pd.read_csv(clinical_path, dtype=str)
    frame.loc[3, "tissueden"] = "dense"
    broken = tmp_path / "clinical_bad.csv"
    frame.to_csv(broken, index=False)
    with pytest.raises(InputTableError, match=r"clinical_bad\.csv: column 'tissueden' has a non-numeric value 'dense' on line 5"):
        read_embed_tables(metadata_path, broken)


def test_fractional_or_missing_patient_id_is_refused(embed_tables_paths, tmp_path):
    metadata_path, clinical_path = embed_tables_paths
    frame = pd.read_csv(metadata_path, dtype=str)
    frame.loc[0, "empi_anon"] = "10000001.5"
    broken = tmp_path / "m.csv"
    frame.to_csv(broken, index=False)
    with pytest.raises(InputTableError, match=r"column 'empi_anon' has a non-integer value '10000001.5' on line 2"):
        read_embed_tables(broken, clinical_path)
    frame.loc[0, "empi_anon"] = ""
    frame.to_csv(broken, index=False)
    with pytest.raises(InputTableError, match=r"column 'empi_anon' is empty on line 2"):
        read_embed_tables(broken, clinical_path)


def test_missing_or_empty_table(embed_tables_paths, tmp_path):
    metadata_path, clinical_path = embed_tables_paths
    with pytest.raises(InputTableError, match="nope.csv: table not found"):
        read_embed_tables(tmp_path / "nope.csv", clinical_path)
    empty = tmp_path / "empty.csv"
    empty.write_text(open(clinical_path).readline())
    with pytest.raises(InputTableError, match="empty.csv: table has a header but no rows"):
        read_embed_tables(metadata_path, empty)


def test_attribute_column_must_exist(embed_tables_paths):
    metadata_path, clinical_path = embed_tables_paths
    with pytest.raises(InputTableError, match="attribute column 'ETHNICITY'"):
        read_embed_tables(metadata_path, clinical_path, attribute_columns=["ETHNICITY"])
