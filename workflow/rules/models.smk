# ImageNet's role, offline: one ResNet-18 trained on patients held out of the
# cohort; every density model and subgroup classifier fine-tunes a copy of it.
rule pretrain_backbone:
    input:
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/held_out.tsv",
    output:
        model="results/backbone/model.pt",
        predictions="results/backbone/predictions.tsv",
        features="results/backbone/features.npy",
        features_index="results/backbone/features.tsv",
        history="results/backbone/history.tsv",
    log:
        "logs/backbone.log",
    priority: 20
    conda:
        "../../envs/train.yaml"
    # Nothing else can run while it trains: it takes both cores.
    threads: backbone_threads(config)
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target={"kind": "attribute", "column": config["backbone"]["target"]},
        train=backbone_settings(config),
        perturbation=None,
        checkpoint="results/backbone/checkpoint.pt",
    script:
        "../scripts/train.py"


# Training jobs before the small analysis jobs: those parallelise at the end, a
# training job left to run alone does not.
rule train_density:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
        labels="results/labels/{run}.tsv",
    output:
        model="results/models/{run}/model.pt",
        predictions="results/models/{run}/predictions.tsv",
        features="results/models/{run}/features.npy",
        features_index="results/models/{run}/features.tsv",
        history="results/models/{run}/history.tsv",
    log:
        "logs/train/{run}.log",
    priority: 10
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target={"kind": "labels", "column": "label_biased"},
        train=lambda wildcards: train_settings(
            config, "density", RUNS[wildcards.run].replicate
        ),
        perturbation=None,
        checkpoint=lambda wildcards: f"results/models/{wildcards.run}/checkpoint.pt",
    script:
        "../scripts/train.py"


rule train_separability:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
    output:
        model="results/separability/{classifier}/model.pt",
        predictions="results/separability/{classifier}/predictions.tsv",
        features="results/separability/{classifier}/features.npy",
        features_index="results/separability/{classifier}/features.tsv",
        history="results/separability/{classifier}/history.tsv",
    log:
        "logs/separability/{classifier}.log",
    priority: 10
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target=lambda wildcards: classifier_settings(wildcards)["target"],
        train=lambda wildcards: classifier_settings(wildcards)["train"],
        perturbation=lambda wildcards: classifier_settings(wildcards)["perturbation"],
        checkpoint=lambda wildcards: f"results/separability/{wildcards.classifier}/checkpoint.pt",
    script:
        "../scripts/train.py"


rule separability_table:
    input:
        predictions=lambda wildcards: classifier_predictions(wildcards.attribute),
        cohort="results/data/cohort.tsv",
    output:
        table=report(
            "results/separability/{attribute}.tsv",
            caption="../report/separability.rst",
            category="2. Separability",
            labels={"attribute": "{attribute}"},
        ),
    log:
        "logs/separability/{attribute}.table.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        bootstrap=config["separability"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/separability_table.py"


rule perturbation_table:
    input:
        predictions=[
            f"results/separability/{name}/predictions.tsv"
            for name in perturbation_classifiers()
        ],
        cohort="results/data/cohort.tsv",
    output:
        table=report(
            "results/perturbation/separability.tsv",
            caption="../report/perturbation_table.rst",
            category="2. Separability",
            labels={"attribute": "all", "table": "under perturbation"},
        ),
        figure=report(
            "results/figures/perturbation.png",
            caption="../report/perturbation_figure.rst",
            category="2. Separability",
            labels={"attribute": "all", "table": "figure: under perturbation"},
        ),
    log:
        "logs/separability/perturbation.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=20),
    params:
        classifiers=perturbation_classifiers(),
        perturbations=perturbations(config),
        bootstrap=config["separability"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/perturbation_table.py"


rule probe:
    input:
        features="results/models/{scenario}/features.npy",
        features_index="results/models/{scenario}/features.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table=report(
            "results/probe/{scenario}.tsv",
            caption="../report/probe.rst",
            category="2. Separability",
            labels={"scenario": "{scenario}", "table": "linear probe"},
        ),
    log:
        "logs/probe/{scenario}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=20),
    params:
        attributes=config["probe"]["attributes"],
        seed=config["seed"],
    script:
        "../scripts/probe.py"
