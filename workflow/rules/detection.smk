# Detecting subgroup label bias: K-fold cross-fitting (folds by patient) per scenario,
# then confident learning per scenario, then how well it found the injected flips.
# A remedied scenario's other replicates are detected too ({detected}: a scenario or
# one of its runs), so each replicate's remedy starts from its own labels' detection.
rule detection_folds:
    input:
        cohort="results/data/cohort.tsv",
    output:
        folds="results/detection/folds.tsv",
    log:
        "logs/detection/folds.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        folds=DETECTION["folds"],
        seed=scenario_seed(config["seed"], "folds"),
        stratify=config["cohort"]["stratify"],
    script:
        "../scripts/detection_folds.py"


rule backbone_features:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
    output:
        features="results/detection/features.npy",
        index="results/detection/features.tsv",
    log:
        "logs/detection/features.log",
    # Starts the cross-fitting chain while the last models train, not after them.
    priority: 5
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=60),
    params:
        init=MODEL_INIT[config["backbone"]["init"]],
        threads=config["train"]["threads"],
        cpu_engine=config["train"]["cpu_engine"],
    script:
        "../scripts/backbone_features.py"


# A linear cross-fit is seconds of work: all folds of a scenario in one job.
rule crossfit:
    input:
        features="results/detection/features.npy",
        features_index="results/detection/features.tsv",
        folds="results/detection/folds.tsv",
        labels="results/labels/{detected}.tsv",
    output:
        probabilities="results/detection/{detected}/crossfit.tsv",
    log:
        "logs/detection/{detected}.crossfit.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        settings=crossfit_settings(config),
    script:
        "../scripts/crossfit.py"


# A fine-tuned cross-fit trains a network per fold: one (GPU) job each.
rule crossfit_fold:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        folds="results/detection/folds.tsv",
        labels="results/labels/{detected}.tsv",
    output:
        probabilities="results/detection/{detected}/fold{fold}.tsv",
    log:
        "logs/detection/{detected}.fold{fold}.log",
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=120),
    params:
        settings=crossfit_settings(config),
    script:
        "../scripts/crossfit_fold.py"


rule detect:
    input:
        folds=crossfit_outputs,
        labels="results/labels/{detected}.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table=report(
            "results/detection/{detected}.tsv",
            caption="../report/detection.rst",
            category="6. Detection",
            labels={
                "scenario": "{detected}",
                "table": "label-error rate per subgroup",
            },
        ),
        images="results/detection/{detected}.images.tsv",
    log:
        "logs/detection/{detected}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        attributes=DETECTION["attributes"],
        class_column=CLASSES["name"],
        filter_by=DETECTION["filter_by"],
        bootstrap=DETECTION["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/detect.py"


rule detection_summary:
    input:
        tables=expand("results/detection/{scenario}.tsv", scenario=SCENARIOS),
        images=expand("results/detection/{scenario}.images.tsv", scenario=SCENARIOS),
    output:
        summary=report(
            "results/detection/summary.tsv",
            caption="../report/detection_summary.rst",
            category="6. Detection",
            labels={"scenario": "all", "table": "detection of the injected flips"},
        ),
        figure=report(
            "results/figures/detection.png",
            caption="../report/detection_figure.rst",
            category="6. Detection",
            labels={"scenario": "all", "table": "figure: ranking"},
        ),
    log:
        "logs/detection/summary.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        scenarios=SCENARIOS,
        targets=scenario_targets(),
    script:
        "../scripts/detection_summary.py"
