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
    threads: 2 * config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target={"kind": "attribute", "column": config["backbone"]["target"]},
        train=backbone_settings(config),
        checkpoint="results/backbone/checkpoint.pt",
    script:
        "../scripts/train.py"


# Density models first: with two cores, the two shorter subgroup classifiers then
# fill the gap next to the last density model instead of running after it.
rule train_density:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
        labels="results/labels/{scenario}.tsv",
    output:
        model="results/models/{scenario}/model.pt",
        predictions="results/models/{scenario}/predictions.tsv",
        features="results/models/{scenario}/features.npy",
        features_index="results/models/{scenario}/features.tsv",
        history="results/models/{scenario}/history.tsv",
    log:
        "logs/train/{scenario}.log",
    priority: 10
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target={"kind": "labels", "column": "label_biased"},
        train=train_settings(config),
        checkpoint=lambda wildcards: f"results/models/{wildcards.scenario}/checkpoint.pt",
    script:
        "../scripts/train.py"


rule train_separability:
    input:
        unpack(backbone_weights),
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
    output:
        model="results/separability/{attribute}/model.pt",
        predictions="results/separability/{attribute}/predictions.tsv",
        features="results/separability/{attribute}/features.npy",
        features_index="results/separability/{attribute}/features.tsv",
        history="results/separability/{attribute}/history.tsv",
    log:
        "logs/separability/{attribute}.log",
    conda:
        "../../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **gpu_job(mem_mb=4000, runtime=240),
    params:
        target=lambda wildcards: {"kind": "attribute", "column": wildcards.attribute},
        train=train_settings(config, "separability"),
        checkpoint=lambda wildcards: f"results/separability/{wildcards.attribute}/checkpoint.pt",
    script:
        "../scripts/train.py"


rule separability_table:
    input:
        predictions="results/separability/{attribute}/predictions.tsv",
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
