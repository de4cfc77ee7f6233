"""Glue for the thin Snakemake scripts: logging to the rule's log and clean failures."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import JobTerminated, LabelBiasError

log = logging.getLogger("labelbias")


def write_tsv(frame: pd.DataFrame, path: str | Path) -> None:
    """Tab-separated, no index, fixed float format: the same data gives the same bytes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False, lineterminator="\n")


def read_tsv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""], **kwargs)


def _terminated(signum: int, frame: Any) -> None:
    raise JobTerminated(
        f"stopped by {signal.Signals(signum).name} before finishing (a SLURM time limit, preemption, "
        "node shutdown or scancel); Snakemake removes this job's outputs, and a retry of a training "
        "job resumes from its last finished epoch"
    )


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
    # SLURM sends SIGTERM before it kills a job: say so in the rule's log and in the
    # SLURM log (stderr), which the executor keeps for failed jobs.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        main(snakemake)
    except LabelBiasError as error:
        log.error("%s", error)
        sys.exit(1)
