# Subgroup label-bias experiments for medical image classification.
# Stages live in workflow/rules (one file each); shared helpers in common.smk.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The report opens on the findings, Table 2 and Fig. 1 of this run once the run has
# written them (rule front_page); before that, on the workflow's description.
FRONT_PAGE = "results/front_page.rst"


report:
    str(Path(FRONT_PAGE).resolve())
    if Path(FRONT_PAGE).exists()
    else "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/bias.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/detection.smk"
include: "workflow/rules/review.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/remedies.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
