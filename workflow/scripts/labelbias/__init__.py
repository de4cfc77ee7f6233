"""Subgroup label-bias experiments for medical image classification.

Pure, typed functions used by the Snakemake scripts in ``workflow/scripts``.
Nothing in this package reads ``snakemake`` objects, so every function can be
called from a test without a workflow run.
"""
