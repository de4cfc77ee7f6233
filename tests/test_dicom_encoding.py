"""The direct DICOM encoder: element layout, padding, and files pydicom reads back."""

from __future__ import annotations

import struct

import pydicom
import pytest

from labelbias.data.dicom_encoding import Encapsulated, encode_element, encode_file, encode_value


def test_values_are_padded_to_even_length_the_way_the_standard_says():
    assert encode_value("UI", "1.2.3") == b"1.2.3\0"  # UIDs pad with NUL
    assert encode_value("CS", "MLO") == b"MLO "  # text pads with a space
    assert encode_value("OB", b"\0\1\2") == b"\0\1\2\0"
    assert encode_value("DS", [3.25, 2048.0]) == b"3.25\\2048.0 "  # multiple values, backslash
    assert encode_value("IS", 7) == b"7 "
    assert encode_value("US", [1, 16]) == struct.pack("<HH", 1, 16)


def test_short_and_long_length_fields():
    short = encode_element(0x00280010, "US", 82)
    assert short == struct.pack("<HH", 0x0028, 0x0010) + b"US" + struct.pack("<H", 2) + struct.pack("<H", 82)
    long = encode_element(0x7FE00010, "OW", b"\1\0\2\0")
    assert long == struct.pack("<HH", 0x7FE0, 0x0010) + b"OW\0\0" + struct.pack("<I", 4) + b"\1\0\2\0"
    undefined = encode_element(0x7FE00010, "OB", Encapsulated(b"\xfe\xff\x00\xe0\0\0\0\0"))
    assert undefined[8:12] == b"\xff\xff\xff\xff" and undefined.endswith(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))


def test_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="VR SQ"):
        encode_value("SQ", [])
    with pytest.raises(ValueError, match="too long"):
        encode_element(0x00100020, "LO", "x" * 70000)


def test_a_file_in_any_element_order_reads_back_in_pydicom(tmp_path):
    meta = [
        (0x00020010, "UI", "1.2.840.10008.1.2.1"),
        (0x00020001, "OB", b"\0\1"),
        (0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.1.2"),
        (0x00020003, "UI", "1.2.3.4"),
    ]
    dataset = [(0x00100020, "LO", "12345"), (0x00080060, "CS", "MG"), (0x00281050, "DS", 1977.78)]
    path = tmp_path / "x.dcm"
    path.write_bytes(encode_file(meta, dataset))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.FileMetaInformationGroupLength == len(encode_file(meta, dataset)) - 144 - len(
        b"".join(encode_element(*e) for e in dataset)
    )
    assert ds.PatientID == "12345" and ds.Modality == "MG" and float(ds.WindowCenter) == 1977.78
    assert [e.tag for e in ds] == sorted(e.tag for e in ds)
