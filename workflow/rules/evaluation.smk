rule evaluate:
    input:
        predictions="results/models/{run}/predictions.tsv",
        labels="results/labels/{run}.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table="results/eval/{run}/{threshold_source}.tsv",
        counts="results/eval/{run}/{threshold_source}.counts.tsv",
    log:
        "logs/eval/{run}.{threshold_source}.log",
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
        evaluations=evaluations(table2_runs()),
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
        by_seed="results/eval/table2_by_seed.tsv",
    log:
        "logs/eval/table2.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=20),
    params:
        runs={name: list(value) for name, value in table2_runs().items()},
        sources=THRESHOLD_SOURCES,
        baseline=BASELINE,
        scenarios=SCENARIOS,
        attributes=config["evaluation"]["attributes"],
        target_fpr=config["evaluation"]["target_fpr"],
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/table2.py"


rule findings:
    input:
        table2="results/eval/table2.tsv",
        separability=expand(
            "results/separability/{attribute}.tsv",
            attribute=config["separability"]["attributes"],
        ),
        cohort="results/data/cohort.tsv",
    output:
        table=report(
            "results/eval/findings.tsv",
            caption="../report/findings.rst",
            category="3. Table 2",
            labels={"table": "the study's findings, checked"},
        ),
    log:
        "logs/eval/findings.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        attributes=config["separability"]["attributes"],
        targets=scenario_targets(),
        baseline=BASELINE,
        separable_auc=config["evaluation"]["separable_auc"],
        effect_sizes={
            key: config["evaluation"][key]
            for key in (
                "min_tpr_change",
                "min_fpr_change",
                "min_fpr_change_relative",
                "no_change",
            )
        },
    script:
        "../scripts/findings.py"


rule dose_response:
    input:
        evaluations=evaluations([*dose_runs(), *baseline_runs().values()]),
    output:
        table=report(
            "results/eval/dose_response.tsv",
            caption="../report/dose_response.rst",
            category="3. Table 2",
            labels={"table": "dose-response"},
        ),
        figure=report(
            "results/figures/dose_response.png",
            caption="../report/dose_response_figure.rst",
            category="4. Figures",
            labels={"figure": "dose-response"},
        ),
    log:
        "logs/eval/dose_response.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=20),
    params:
        runs={name: list(value) for name, value in dose_runs().items()},
        baseline_runs=baseline_runs(),
        sources=THRESHOLD_SOURCES,
        targets=scenario_targets(),
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/dose_response.py"


rule pc1:
    input:
        features="results/models/{run}/features.npy",
        features_index="results/models/{run}/features.tsv",
        predictions="results/models/{run}/predictions.tsv",
        cohort="results/data/cohort.tsv",
    output:
        table="results/features/{run}.tsv",
    log:
        "logs/features/{run}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        attributes=config["evaluation"]["attributes"],
        class_column=CLASSES["name"],
    script:
        "../scripts/pc1.py"


rule figures:
    input:
        pc1=expand("results/features/{run}.tsv", run=[*SCENARIOS, *FIRST_REMEDY_RUNS]),
        predictions=expand(
            "results/models/{scenario}/predictions.tsv", scenario=SCENARIOS
        ),
        labels=expand("results/labels/{scenario}.tsv", scenario=SCENARIOS),
        thresholds=expand(
            "results/eval/{scenario}/{threshold_source}.tsv",
            scenario=SCENARIOS,
            threshold_source=THRESHOLD_SOURCES,
        ),
        cohort="results/data/cohort.tsv",
    output:
        features=report(
            "results/figures/feature_space.png",
            caption="../report/feature_space.rst",
            category="4. Figures",
            labels={"figure": "Fig. 1 feature space"},
        ),
        pc1_shift=report(
            "results/eval/pc1_shift.tsv",
            caption="../report/pc1_shift.rst",
            category="4. Figures",
            labels={"figure": "Fig. 1 in numbers: class medians moved"},
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
        remedy_runs=FIRST_REMEDY_RUNS,
        baseline=BASELINE,
        targets=scenario_targets(),
        bootstrap=config["evaluation"]["bootstrap"],
        seed=config["seed"],
        panels=figure_panels(config),
        classes=CLASSES,
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
        repo=str(WORKFLOW_ROOT),
    script:
        "../scripts/provenance.py"


rule front_page:
    input:
        unpack(front_page_inputs),
    output:
        page=FRONT_PAGE,
    log:
        "logs/front_page.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=1000, runtime=5),
    params:
        targets=scenario_targets(),
        class_name=CLASSES["name"],
    script:
        "../scripts/front_page.py"
