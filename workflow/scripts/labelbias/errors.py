"""Errors that carry a message a user can act on (file, row, column or config key)."""

from __future__ import annotations


class LabelBiasError(Exception):
    """Base class: the message alone tells the user what to fix."""


class ConfigError(LabelBiasError):
    """A config value is invalid; the message names the key."""


class InputTableError(LabelBiasError):
    """An input table is malformed; the message names the file, column and row."""


class ImageReadError(LabelBiasError):
    """One image could not be read or preprocessed; the message names its path."""


class DataQualityError(LabelBiasError):
    """The data as a whole cannot support the study (too many unreadable images, empty groups)."""


class JobTerminated(LabelBiasError):
    """The scheduler stopped the job (time limit, preemption, node shutdown, scancel)."""
