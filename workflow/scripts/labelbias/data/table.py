"""Any image dataset described by one table (one row per image): ``data.source: table``.

A config section maps the table's columns to what the workflow needs (image path,
patient, optional exam and view), the *fine class* a scenario flips (a finding's
1/0/-1, a diagnosis code, a BI-RADS letter) with its binary label, and the subgroup
attributes (categorical with a value map, numeric with bins). The result is the same
eligible-image table the EMBED reader produces, so every later stage runs unchanged.

Every cell is read as text. Fine classes are compared in a canonical form, so that
``1``, ``1.0`` and ``"1.0"`` in a table or a config are the same class ``1``.
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pandas as pd

from ..errors import DataQualityError, InputTableError

LINE = "_line"  # the main table's line number, carried through joins for messages


def canonical(value: object) -> str:
    """A class value as text: numbers without a trailing ``.0`` (``1.0`` -> ``1``), text stripped."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else f"{number:g}"


@dataclass(frozen=True)
class ClassSpec:
    """The fine classes a dataset labels images with, and the binary label of each.

    ``name`` is the cohort column that holds them and the word figures use (EMBED:
    ``density``). The order of ``labels`` is the order figures show the classes in.
    """

    name: str
    labels: dict[str, int]

    @property
    def order(self) -> list[str]:
        return list(self.labels)

    @property
    def positive(self) -> list[str]:
        return [value for value, label in self.labels.items() if label == 1]


EMBED_CLASSES = ClassSpec("density", {"A": 0, "B": 0, "C": 1, "D": 1})


def class_spec(params: dict[str, object] | None) -> ClassSpec:
    """A ClassSpec from the ``{"name": ..., "labels": {...}}`` a job gets as params."""
    if not params:
        return EMBED_CLASSES
    labels = {canonical(key): int(value) for key, value in dict(params["labels"]).items()}  # type: ignore[arg-type]
    return ClassSpec(str(params["name"]), labels)


@dataclass(frozen=True)
class TableAttribute:
    """A subgroup attribute from one column: a value map (categorical) or bins (numeric).

    Bins are right-open, ``[edges[i], edges[i+1])``, named by ``labels``. Values the
    map does not name, blank cells and numbers outside the bins become ``other``.
    """

    column: str
    values: dict[str, str] = field(default_factory=dict)
    bins: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    other: str = "Other"


@dataclass(frozen=True)
class Join:
    """A second table joined to the first on shared columns (MIMIC-CXR's labels per study)."""

    path: str
    on: tuple[str, ...]


@dataclass(frozen=True)
class TableSource:
    path: str
    classes: ClassSpec
    class_column: str
    patient_column: str
    image_column: str = ""
    image_template: str = ""
    patient_pattern: str = ""
    exam_column: str = ""
    exam_pattern: str = ""
    view_column: str = ""
    views: tuple[str, ...] = ()
    laterality_column: str = ""
    joins: tuple[Join, ...] = ()
    attributes: dict[str, TableAttribute] = field(default_factory=dict)


def table_source(params: dict[str, object], attributes: dict[str, dict[str, object]]) -> TableSource:
    """The TableSource of a config's ``data.table`` section and ``cohort.attributes``."""
    p = dict(params)
    classes = dict(p["classes"])  # type: ignore[arg-type]
    return TableSource(
        path=str(p["path"]),
        classes=class_spec({"name": classes["name"], "labels": classes["labels"]}),
        class_column=str(classes["column"]),
        patient_column=str(p["patient_column"]),
        image_column=str(p.get("image_column", "")),
        image_template=str(p.get("image_template", "")),
        patient_pattern=str(p.get("patient_pattern", "")),
        exam_column=str(p.get("exam_column", "")),
        exam_pattern=str(p.get("exam_pattern", "")),
        view_column=str(p.get("view_column", "")),
        views=tuple(str(v) for v in p.get("views", []) or []),  # type: ignore[union-attr]
        laterality_column=str(p.get("laterality_column", "")),
        joins=tuple(Join(str(j["path"]), tuple(j["keys"])) for j in p.get("join", []) or []),  # type: ignore[union-attr,index]
        attributes={
            name: TableAttribute(
                column=str(spec["column"]),
                values={str(k): str(v) for k, v in dict(spec.get("values", {}) or {}).items()},  # type: ignore[call-overload]
                bins=tuple(float(b) for b in spec.get("bins", []) or []),  # type: ignore[union-attr]
                labels=tuple(str(b) for b in spec.get("labels", []) or []),  # type: ignore[union-attr]
                other=str(spec.get("other", "Other")),
            )
            for name, spec in attributes.items()
        },
    )


def read_text_table(path: str | Path) -> pd.DataFrame:
    """Every cell as text, blanks as ''; tab-separated for .tsv/.tab/.txt, else comma-separated."""
    path = Path(path)
    if not path.is_file():
        raise InputTableError(f"{path}: table not found")
    suffixes = [s.lower() for s in path.suffixes]
    separator = "\t" if any(s in (".tsv", ".tab", ".txt") for s in suffixes) else ","
    try:
        frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise InputTableError(f"{path}: cannot be parsed as a {'TSV' if separator == chr(9) else 'CSV'} table ({error})") from error
    if frame.empty:
        raise InputTableError(f"{path}: table has a header but no rows")
    return frame


def _require(frame: pd.DataFrame, columns: dict[str, str], source: str) -> None:
    """``columns``: column -> the config key that names it."""
    for column, key in columns.items():
        if column and column not in frame.columns:
            raise InputTableError(
                f"{source}: no column {column!r} (config key {key}); the table has {', '.join(c for c in frame.columns if c != LINE)}"
            )


def template_columns(template: str) -> list[str]:
    return list(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))


def read_source_table(source: TableSource) -> pd.DataFrame:
    """The main table joined with every join table, with each row's line in the main table."""
    frame = read_text_table(source.path)
    frame[LINE] = range(2, len(frame) + 2)
    name = source.path
    steps = [(f"rows of {Path(source.path).name}", len(frame))]
    for position, join in enumerate(source.joins):
        other = read_text_table(join.path)
        key = f"data.table.join[{position}].keys"
        _require(frame, {c: key for c in join.on}, name)
        _require(other, {c: key for c in join.on}, join.path)
        repeated = other.duplicated(list(join.on), keep=False)
        if repeated.any():
            line = int(repeated.to_numpy().nonzero()[0][0]) + 2
            raise InputTableError(
                f"{join.path}: the key ({', '.join(join.on)}) of line {line} appears on several lines; "
                "a joined table needs one row per key"
            )
        shared = [c for c in other.columns if c in frame.columns and c not in join.on]
        frame = frame.merge(other.drop(columns=shared), on=list(join.on), how="inner", validate="many_to_one")
        frame = frame.sort_values(LINE, kind="stable").reset_index(drop=True)
        name = f"{name} joined with {join.path}"
        steps.append((f"joined with {Path(join.path).name} on {', '.join(join.on)}", len(frame)))
    frame.attrs["source"] = name
    frame.attrs["steps"] = steps
    return frame


def _extract(values: pd.Series, pattern: str, frame: pd.DataFrame, source: str, key: str) -> pd.Series:
    if not pattern:
        return values.str.strip()
    compiled = re.compile(pattern)
    found = values.str.extract(compiled if compiled.groups else re.compile(f"({pattern})"), expand=False)
    if isinstance(found, pd.DataFrame):
        found = found.iloc[:, 0]
    missing = found.isna()
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0])
        raise InputTableError(
            f"{source}: line {frame[LINE].iloc[row]}: {values.iloc[row]!r} does not match {key} {pattern!r}"
        )
    return found


def image_paths(frame: pd.DataFrame, source: TableSource, name: str) -> pd.Series:
    if source.image_column:
        return frame[source.image_column].str.strip()
    formatter = string.Formatter()
    records = frame[template_columns(source.image_template)].to_dict("records")
    try:
        return pd.Series([formatter.format(source.image_template, **r) for r in records], index=frame.index)
    except (ValueError, KeyError) as error:
        raise InputTableError(f"{name}: data.table.image_template {source.image_template!r}: {error}") from error


def image_id_from_relative_path(path: str) -> str:
    """The path without its extension: unique per file (CheXpert's file names repeat per study)."""
    relative = path.replace("\\", "/")
    while relative.startswith("./"):
        relative = relative[2:]
    posix = PurePosixPath(relative)
    return str(posix.with_suffix("")) if posix.suffix else relative


def attribute_values(frame: pd.DataFrame, name: str, spec: TableAttribute, source: str) -> pd.Series:
    raw = frame[spec.column].str.strip()
    if not spec.bins:
        return raw.map(spec.values).fillna(spec.other)
    numbers = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
    bad = (raw != "") & numbers.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputTableError(
            f"{source}: column {spec.column!r} (cohort.attributes.{name}) has a non-numeric value "
            f"{raw.iloc[row]!r} on line {frame[LINE].iloc[row]} ({int(bad.sum())} in total)"
        )
    binned = pd.cut(numbers, bins=list(spec.bins), labels=list(spec.labels), right=False)
    return binned.astype(object).where(binned.notna(), spec.other).astype(str)


def nothing_left_error(name: str, log: list[dict[str, object]]) -> DataQualityError:
    """The error for filters that leave no image, with the filter log in it: the job
    stops before the log is written, and the step that emptied the cohort is the clue."""
    steps = "\n  ".join(f"{entry['images']:>8} images, {entry['patients']:>7} patients after {entry['step']}" for entry in log)
    return DataQualityError(f"{name}: no image is left after the filters:\n  {steps}")


def _counts(step: str, frame: pd.DataFrame) -> dict[str, object]:
    return {"step": step, "rows": len(frame), "images": frame["image_path"].nunique(), "patients": frame["patient_id"].nunique()}


def select_table_images(frame: pd.DataFrame, source: TableSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per eligible image (image_id, patient_id, exam_id, view, laterality, the
    class column, label, image_path, attributes) and the filter log, as ``cohort.select_images``."""
    name = frame.attrs.get("source", source.path)
    required = {
        source.class_column: "data.table.classes.column",
        source.patient_column: "data.table.patient_column",
        source.image_column: "data.table.image_column",
        source.exam_column: "data.table.exam_column",
        source.view_column: "data.table.view_column",
        source.laterality_column: "data.table.laterality_column",
    }
    required.update({c: "data.table.image_template" for c in template_columns(source.image_template)})
    required.update({spec.column: f"cohort.attributes.{attr}.column" for attr, spec in source.attributes.items()})
    _require(frame, required, name)

    rows = frame.copy()
    rows["image_path"] = image_paths(rows, source, name)
    rows["patient_id"] = _extract(rows[source.patient_column], source.patient_pattern, rows, name, "data.table.patient_pattern")
    rows["exam_id"] = (
        _extract(rows[source.exam_column], source.exam_pattern, rows, name, "data.table.exam_pattern")
        if source.exam_column else rows["patient_id"]
    )
    rows["view"] = rows[source.view_column].str.strip() if source.view_column else ""
    rows["laterality"] = rows[source.laterality_column].str.strip() if source.laterality_column else ""
    rows["fine_class"] = rows[source.class_column].map(canonical)
    log: list[dict[str, object]] = [
        {"step": step, "rows": count, "images": None, "patients": None} for step, count in frame.attrs.get("steps", [])
    ]
    log.append(_counts("rows", rows))

    known = rows["fine_class"].isin(list(source.classes.labels))
    if not known.any():
        seen = ", ".join(repr(v) for v in rows["fine_class"].value_counts().index[:8])
        raise DataQualityError(
            f"{name}: data.table.classes.labels maps {', '.join(repr(v) for v in source.classes.labels)} "
            f"but column {source.class_column!r} has none of them (it has {seen})"
        )
    dropped = rows.loc[~known, "fine_class"].value_counts().sort_index()
    note = f" (dropped: {', '.join(f'{v!r} {n} rows' for v, n in dropped.items())})" if len(dropped) else ""
    rows = rows.loc[known]
    log.append(_counts(f"{source.class_column} in {', '.join(source.classes.labels)}{note}", rows))
    if source.views:
        rows = rows.loc[rows["view"].isin(source.views)]
        log.append(_counts(f"{source.view_column} in {', '.join(source.views)}", rows))
    rows = rows.loc[(rows["image_path"] != "") & (rows["patient_id"] != "")]
    log.append(_counts("image path and patient present", rows))
    if rows.empty:
        raise nothing_left_error(name, log)

    exact = rows.drop(columns=[LINE]).duplicated(keep="first")
    rows = rows.loc[~exact]
    conflicting = rows["image_path"].duplicated(keep=False)
    if conflicting.any():
        lines = ", ".join(str(v) for v in rows.loc[conflicting, LINE].head(4))
        raise InputTableError(
            f"{name}: image {rows.loc[conflicting, 'image_path'].iloc[0]!r} appears on several lines with "
            f"different values (lines {lines}); each image needs one row"
        )
    log.append(_counts("one row per image", rows))

    images = pd.DataFrame(
        {
            "image_id": rows["image_path"].map(image_id_from_relative_path),
            "patient_id": rows["patient_id"],
            "exam_id": rows["exam_id"],
            "view": rows["view"],
            "laterality": rows["laterality"],
            source.classes.name: rows["fine_class"],
            "label": rows["fine_class"].map(source.classes.labels).astype(int),
            "image_path": rows["image_path"],
        }
    )
    clash = images["image_id"].duplicated(keep=False)
    if clash.any():
        raise InputTableError(
            f"{name}: two images would share the id {images.loc[clash, 'image_id'].iloc[0]!r} "
            f"({', '.join(images.loc[clash, 'image_path'].head(2))}): paths must differ beyond their extension"
        )
    for attribute, spec in source.attributes.items():
        images[attribute] = attribute_values(rows, attribute, spec, name)
        left = images[attribute].unique()
        if len(left) < 2:
            raise DataQualityError(
                f"{name}: cohort.attributes.{attribute}: column {spec.column!r} leaves a single subgroup "
                f"({left[0]!r}) after the filters; a subgroup attribute needs two or more"
            )
    images = images.sort_values(["patient_id", "exam_id", "image_id"], kind="stable").reset_index(drop=True)
    counts = pd.DataFrame(log, columns=["step", "rows", "images", "patients"])
    return images, counts.astype({"rows": "Int64", "images": "Int64", "patients": "Int64"})

