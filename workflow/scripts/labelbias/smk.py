"""Glue for the thin Snakemake scripts: logging to the rule's log and clean failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import LabelBiasError

log = logging.getLogger("labelbias")


def write_tsv(frame: pd.DataFrame, path: str | Path) -> None:
    """Tab-separated, no index, fixed float format: the same data gives the same bytes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False, lineterminator="\n")


def read_tsv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""], **kwargs)


def run(main: Callable[[Any], None], snakemake: Any) -> None:
    """Run a script's main with logging to ``snakemake.log[0]``.

    A LabelBiasError is a user-facing problem: its message goes to the log and to
    stderr without a traceback, and the job fails (Snakemake then removes the
    job's outputs, so nothing partial is left behind).
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    # Only this package's logger: libraries (openjpeg, pydicom) keep their own levels.
    log.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        main(snakemake)
    except LabelBiasError as error:
        log.error("%s", error)
        sys.exit(1)
