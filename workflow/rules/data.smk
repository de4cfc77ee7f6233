rule synthetic_embed:
    output:
        metadata=f"{SYNTHETIC_ROOT}/tables/EMBED_OpenData_metadata.csv",
        clinical=f"{SYNTHETIC_ROOT}/tables/EMBED_OpenData_clinical.csv",
        images=directory(f"{SYNTHETIC_ROOT}/images"),
        summary=report(
            f"{SYNTHETIC_ROOT}/summary.tsv",
            caption="../report/synthetic_summary.rst",
            category="1. Data",
            labels={"table": "synthetic data check"},
        ),
    log:
        "logs/synthetic_embed.log",
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        **cpu_job(mem_mb=2000, runtime=60),
    params:
        settings=settings_params(config["data"]["synthetic"]),
    script:
        "../scripts/synthetic_embed.py"


rule select_images:
    input:
        unpack(source_tables),
    output:
        images="results/data/images.tsv",
        filters=report(
            "results/data/filter_log.tsv",
            caption="../report/filter_log.rst",
            category="1. Data",
            labels={"table": "cohort filters"},
        ),
    log:
        "logs/select_images.log",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=8000, runtime=30),
    params:
        source=config["data"]["source"],
        vendors=config["cohort"]["vendors"],
        views=config["cohort"]["views"],
        attributes=config["cohort"]["attributes"],
        image_column=image_column(),
        table=table_params(),
    script:
        "../scripts/select_images.py"


rule cohort:
    input:
        images="results/data/images.tsv",
        qc="results/data/qc.tsv",
    output:
        cohort="results/data/cohort.tsv",
        held_out="results/data/held_out.tsv",
        table1=report(
            "results/data/table1.tsv",
            caption="../report/table1.rst",
            category="1. Data",
            labels={"table": "Table 1"},
        ),
        split_summary=report(
            "results/data/split_summary.tsv",
            caption="../report/split_summary.rst",
            category="1. Data",
            labels={"table": "split sizes"},
        ),
    log:
        "logs/cohort.log",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=4000, runtime=20),
    params:
        seed=config["seed"],
        split=config["cohort"]["split"],
        stratify=config["cohort"]["stratify"],
        pseudo_groups=config["cohort"]["pseudo_groups"],
        balance=config["cohort"]["balance"],
        attributes=cohort_attributes(),
        holdout=holdout_params(),
        classes=class_params(config),
        table1_attribute=TABLE1_ATTRIBUTE,
    script:
        "../scripts/cohort.py"
