rule labels:
    input:
        cohort="results/data/cohort.tsv",
    output:
        labels="results/labels/{scenario}.tsv",
        summary="results/labels/{scenario}.summary.tsv",
    params:
        bias=lambda wildcards: scenario_bias(config, wildcards.scenario),
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/labels/{scenario}.log",
    conda:
        "../../envs/workflow.yaml"
    script:
        "../scripts/labels.py"
