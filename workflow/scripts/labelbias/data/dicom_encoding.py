"""DICOM Part 10 files in Explicit VR Little Endian, encoded directly from a list of elements.

Building, validating and writing a pydicom ``Dataset`` was most of the synthetic
default's generation time (it writes 25,000 small files). Its files are simple (a fixed set of plain elements and
native pixel data), so they are encoded here in a few microseconds each, to the same
bytes pydicom writes for the same elements (a test compares the two on every vendor's
files, native and JPEG 2000). Sequences and anything beyond plain elements and
encapsulated pixel data go through pydicom.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

# (tag, VR, value): a value is a str, an int, a float, bytes, or a list of those.
Element = tuple[int, str, object]

# VRs whose length field is 4 bytes after 2 reserved ones (PS3.5 7.1.2).
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_BINARY = {"US": "<H", "UL": "<I", "SS": "<h", "SL": "<i", "FL": "<f", "FD": "<d"}
_TEXT = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})

FILE_META_GROUP_LENGTH = 0x00020000
_SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


class Encapsulated(bytes):
    """Encapsulated pixel data (the offset table item and the fragments, PS3.5 A.4):
    written with undefined length and closed by a sequence delimiter."""


def _text(vr: str, value: object) -> str:
    if vr == "DS":
        # pydicom writes a float's shortest round-trip form (repr): 3.25, 2048.0.
        return repr(float(value)) if not isinstance(value, str) else value
    if vr == "IS":
        return str(int(value)) if not isinstance(value, str) else value
    return str(value)


def encode_value(vr: str, value: object) -> bytes:
    """The value field of one element, padded to an even length as PS3.5 6.2 asks."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if vr in _BINARY:
        encoded = b"".join(struct.pack(_BINARY[vr], v) for v in values)
    elif vr in ("OB", "OW"):
        encoded = bytes(value)  # type: ignore[arg-type]
    elif vr in _TEXT:
        encoded = "\\".join(_text(vr, v) for v in values).encode("ascii")
    else:
        raise ValueError(f"VR {vr} is not supported by the direct encoder")
    if len(encoded) % 2:
        encoded += b"\0" if vr in ("UI", "OB") else b" "
    return encoded


def encode_element(tag: int, vr: str, value: object) -> bytes:
    """One data element in Explicit VR Little Endian."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if isinstance(value, Encapsulated):
        return head + struct.pack("<HI", 0, 0xFFFFFFFF) + encode_value(vr, value) + _SEQUENCE_DELIMITER
    encoded = encode_value(vr, value)
    if vr in _LONG_VRS:
        return head + struct.pack("<HI", 0, len(encoded)) + encoded
    if len(encoded) > 0xFFFF:
        raise ValueError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) of VR {vr} is too long")
    return head + struct.pack("<H", len(encoded)) + encoded


def encode_file(file_meta: Sequence[Element], dataset: Sequence[Element]) -> bytes:
    """A whole file: preamble, ``DICM``, the file meta group with its group length, the dataset.

    Both lists are written in tag order, whatever order they come in; the file meta
    group length (0002,0000) is computed, not taken from ``file_meta``.
    """
    meta = b"".join(encode_element(*e) for e in sorted(file_meta, key=lambda e: e[0]) if e[0] != FILE_META_GROUP_LENGTH)
    body = b"".join(encode_element(*e) for e in sorted(dataset, key=lambda e: e[0]))
    return b"\0" * 128 + b"DICM" + encode_element(FILE_META_GROUP_LENGTH, "UL", len(meta)) + meta + body
