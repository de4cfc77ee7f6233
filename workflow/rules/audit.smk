# What a clean audit buys: for each bias scenario, the operating threshold re-picked
# with n validation patients relabelled (random draws, and the patients detection
# finds most suspect). No model is retrained.


rule audit:
    input:
        unpack(audit_inputs),
    output:
        table="results/audit/{scenario}.tsv",
    log:
        "logs/audit/{scenario}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        sizes=AUDIT["sizes"],
        draws=AUDIT["draws"],
        target_fpr=config["evaluation"]["target_fpr"],
        attributes=config["evaluation"]["attributes"],
        seed=lambda wildcards: scenario_seed(
            config["seed"], f"audit/{wildcards.scenario}"
        ),
    script:
        "../scripts/audit_thresholds.py"


rule audit_summary:
    input:
        tables=expand("results/audit/{scenario}.tsv", scenario=BIAS_SCENARIOS),
    output:
        summary=report(
            "results/audit/summary.tsv",
            caption="../report/audit_summary.rst",
            category="7. Clean audit",
            labels={"table": "relabelled patients needed"},
        ),
        figure=report(
            "results/figures/audit.png",
            caption="../report/audit_figure.rst",
            category="7. Clean audit",
            labels={"figure": "TPR and FPR against the audit size"},
        ),
    log:
        "logs/audit/summary.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        scenarios=BIAS_SCENARIOS,
        targets={name: scenario_targets()[name] for name in BIAS_SCENARIOS},
        recover_share=AUDIT["recover_share"],
        min_tpr_lost=config["evaluation"]["min_tpr_change"],
    script:
        "../scripts/audit_summary.py"
