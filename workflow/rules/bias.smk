rule labels:
    input:
        cohort="results/data/cohort.tsv",
    output:
        labels="results/labels/{run}.tsv",
        summary="results/labels/{run}.summary.tsv",
    log:
        "logs/labels/{run}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        bias=lambda wildcards: scenario_bias(config, wildcards.run),
    script:
        "../scripts/labels.py"
