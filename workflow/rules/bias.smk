# A second's work that gates a training job: made before any small analysis job.
rule labels:
    input:
        cohort="results/data/cohort.tsv",
    output:
        labels="results/labels/{run}.tsv",
        summary="results/labels/{run}.summary.tsv",
    log:
        "logs/labels/{run}.log",
    wildcard_constraints:
        run=_one_of(LABELLED_RUNS),
    priority: 15
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        bias=lambda wildcards: scenario_bias(config, wildcards.run),
    script:
        "../scripts/labels.py"
