"""Analysis: thresholds and Table 2, the findings, separability, feature space and figures."""
