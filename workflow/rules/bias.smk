rule labels:
    input:
        cohort="results/data/cohort.tsv",
    output:
        labels="results/labels/{scenario}.tsv",
        summary="results/labels/{scenario}.summary.tsv",
    log:
        "logs/labels/{scenario}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        bias=lambda wildcards: scenario_bias(config, wildcards.scenario),
    script:
        "../scripts/labels.py"
