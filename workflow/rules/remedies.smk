# What fixing the training labels buys: a bias scenario's model retrained on remedied
# labels (labelbias.detection.remedy); rules train_density and evaluate do the rest.


rule remedy_labels:
    input:
        unpack(remedy_label_inputs),
    output:
        labels="results/labels/{run}.tsv",
        summary="results/labels/{run}.summary.tsv",
    log:
        "logs/labels/{run}.log",
    wildcard_constraints:
        run=_one_of(REMEDY_RUNS),
    priority: 15
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        remedy=lambda wildcards: remedy_settings(config, wildcards.run),
    script:
        "../scripts/remedy_labels.py"


rule remedy_summary:
    input:
        evaluations=remedy_evaluations(),
        labels=expand("results/labels/{run}.summary.tsv", run=REMEDY_RUNS),
    output:
        summary=report(
            "results/remedies/summary.tsv",
            caption="../report/remedy_summary.rst",
            category="9. Remedies",
            labels={"table": "change to the clean model after each remedy"},
        ),
        figure=report(
            "results/figures/remedies.png",
            caption="../report/remedy_figure.rst",
            category="9. Remedies",
            labels={"figure": "the biased subgroup's TPR change against the budget"},
        ),
        labels="results/remedies/labels.tsv",
    log:
        "logs/remedies/summary.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=20),
    params:
        groups=remedy_groups(),
        runs=list(REMEDY_RUNS),
        sources=THRESHOLD_SOURCES,
        targets=lambda wildcards: {
            group["scenario"]: scenario_targets()[group["scenario"]]
            for group in remedy_groups()
        },
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/remedy_summary.py"
