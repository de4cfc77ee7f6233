rule evaluate:
    input:
        predictions="results/models/{scenario}/predictions.tsv",
        labels="results/labels/{scenario}.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table="results/eval/{scenario}/{threshold_source}.tsv",
    log:
        "logs/eval/{scenario}.{threshold_source}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        target_fpr=config["evaluation"]["target_fpr"],
        attributes=config["evaluation"]["attributes"],
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/evaluate.py"


rule table2:
    input:
        tables=expand(
            "results/eval/{scenario}/{threshold_source}.tsv",
            scenario=SCENARIOS,
            threshold_source=THRESHOLD_SOURCES,
        ),
    output:
        table=report(
            "results/eval/table2.tsv",
            caption="../report/table2_tsv.rst",
            category="3. Table 2",
            labels={"table": "all rows with intervals"},
        ),
        html=report(
            "results/eval/table2.html",
            caption="../report/table2.rst",
            category="3. Table 2",
            labels={"table": "as in the paper"},
        ),
    log:
        "logs/eval/table2.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        baseline=config["baseline_scenario"],
        scenarios=SCENARIOS,
        attributes=config["evaluation"]["attributes"],
        target_fpr=config["evaluation"]["target_fpr"],
    script:
        "../scripts/table2.py"


rule pc1:
    input:
        features="results/models/{scenario}/features.npy",
        features_index="results/models/{scenario}/features.tsv",
        predictions="results/models/{scenario}/predictions.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table="results/features/{scenario}.tsv",
    log:
        "logs/features/{scenario}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        seed=config["seed"],
    script:
        "../scripts/pc1.py"


rule figures:
    input:
        pc1=expand("results/features/{scenario}.tsv", scenario=SCENARIOS),
        predictions=expand(
            "results/models/{scenario}/predictions.tsv", scenario=SCENARIOS
        ),
        labels=expand("results/labels/{scenario}.tsv", scenario=SCENARIOS),
        table2="results/eval/table2.tsv",
    output:
        features=report(
            "results/figures/feature_space.png",
            caption="../report/feature_space.rst",
            category="4. Figures",
            labels={"figure": "Fig. 1 feature space"},
        ),
        thresholds=report(
            "results/figures/thresholds.png",
            caption="../report/thresholds.rst",
            category="4. Figures",
            labels={"figure": "threshold shift"},
        ),
    log:
        "logs/figures.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        scenarios=SCENARIOS,
        baseline=config["baseline_scenario"],
        targets=scenario_targets(),
    script:
        "../scripts/figures.py"


rule provenance:
    output:
        html=report(
            "results/provenance.html",
            caption="../report/provenance.rst",
            category="5. Provenance",
            labels={"item": "config, packages, commit"},
        ),
    log:
        "logs/provenance.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=1000, runtime=5),
    params:
        config=config,
        repo=workflow.basedir,
    script:
        "../scripts/provenance.py"
