"""Data: reading EMBED and the synthetic dataset, the cohort, label bias, images and their cache."""
