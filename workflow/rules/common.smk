import re
import sys
from pathlib import Path

from snakemake.utils import validate


def workflow_root():
    """The repository holding these rules: the main workflow's folder, or the clone a
    `module` statement names (workflow.basedir is the *using* workflow's folder there).
    """
    rules_folder = workflow.current_basedir.get_path_or_uri(secret_free=True)
    if not Path(rules_folder).is_dir():
        sys.exit(
            f"labelbias: the rules were read from {rules_folder}, not a local folder; the "
            "workflow imports its Python package from its own clone, so use it as a module "
            "from a local clone: point 'snakefile:' at the clone's Snakefile (docs/deploy.md)"
        )
    return Path(rules_folder).parents[1]


WORKFLOW_ROOT = workflow_root()
# The learning code is one importable package next to the scripts.
sys.path.insert(0, str(WORKFLOW_ROOT / "workflow" / "scripts"))

from labelbias.data.bias import scenario_seed  # noqa: E402
from labelbias.config import (  # noqa: E402
    MODEL_INIT,
    apply_source_defaults,
    attribute_names,
    backbone_settings,
    backbone_threads,
    check_config,
    class_params,
    crossfit_settings,
    figure_panels,
    holdout_share,
    perturbation_attributes,
    perturbations,
    remedy_settings,
    scenario_bias,
    separability_runs,
    settings_params,
    train_settings,
    uses_backbone,
)
from labelbias.errors import ConfigError  # noqa: E402
from labelbias.detection.remedy import REMEDIES  # noqa: E402
from labelbias.runs import dose_scenarios, plan_runs  # noqa: E402
from labelbias.schema import check_schema, config_error_text  # noqa: E402

# A bad config stops the run before any job, one line per problem naming the key,
# without Snakemake's traceback or jsonschema's dump of the schema and config.
try:
    check_schema(config, WORKFLOW_ROOT / "workflow" / "schemas" / "config.schema.yaml")
    apply_source_defaults(config)
    validate(config, schema="../schemas/config.schema.yaml", set_default=True)
    check_config(config)
except ConfigError as error:
    sys.exit(config_error_text(error))

SCENARIOS = list(config["scenarios"])
BASELINE = config["baseline_scenario"]
# Every density model: each scenario at its own rate, plus the dose-response rates,
# each once per seed (labelbias.runs). A scenario's own run carries its name.
RUNS = plan_runs(config)
# Runs retrained on remedied labels (labelbias.detection.remedy), and the others.
REMEDY_RUNS = {name: run for name, run in RUNS.items() if run.remedy}
LABELLED_RUNS = [name for name, run in RUNS.items() if not run.remedy]
# Fig. 1's numbers (pc1_shift.tsv) cover the first seed's remedy runs too.
FIRST_REMEDY_RUNS = [name for name, run in REMEDY_RUNS.items() if run.replicate == 0]
# Runs the detection stage reads: every scenario, and the replicates a remedy starts from.
DETECTED = list(
    dict.fromkeys([*SCENARIOS, *(run.source_run for run in REMEDY_RUNS.values())])
)
# Every subgroup classifier: attribute x perturbation x seed.
CLASSIFIERS = separability_runs(config)
SEPARABILITY_ATTRIBUTES = list(
    dict.fromkeys(attribute for attribute, _, _ in CLASSIFIERS.values())
)
THRESHOLD_SOURCES = list(config["evaluation"]["threshold_sources"])
N_SHARDS = int(config["preprocess"]["shards"])
SYNTHETIC = config["data"]["source"] == "synthetic"
TABLE = config["data"]["source"] == "table"
SYNTHETIC_ROOT = "results/synthetic"
CLASSES = class_params(config)
# Table 1's rows: EMBED's vendors, or a table's first attribute.
TABLE1_ATTRIBUTE = (
    "manufacturer"
    if not TABLE
    else ([*config["cohort"]["attributes"], "pseudo_subgroup"][0])
)


CLUSTER = config["cluster"]
DETECTION = config["detection"]
DOSE_RESPONSE = config["dose_response"]["enabled"]
AUDIT = config["audit"]
# Scenarios that bias a subgroup (the clean ones have nothing to audit).
BIAS_SCENARIOS = [
    name for name, spec in config["scenarios"].items() if spec and spec.get("attribute")
]
PERTURBATION = config["perturbation"]["enabled"]


# Small table and plot jobs stay on the submitting host under `--profile slurm`.
localrules:
    all,
    labels,
    detection_folds,
    detect,
    detection_summary,
    image_review,
    separability_table,
    perturbation_table,
    table2,
    findings,
    dose_response,
    audit,
    audit_summary,
    remedy_labels,
    remedy_summary,
    front_page,
    figures,
    provenance,


def _one_of(names):
    # Snakemake reads an empty constraint as none at all, so with no names (remedies off,
    # say) the rule would claim every path; "(?!)" matches nothing.
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    run=_one_of(RUNS),
    scenario=_one_of(SCENARIOS),
    detected=_one_of(DETECTED),
    classifier=_one_of(CLASSIFIERS),
    attribute=_one_of(SEPARABILITY_ATTRIBUTES),
    shard=r"\d+",
    fold=r"\d+",
    threshold_source="clean|biased",


def table2_runs():
    """Runs at their scenario's own rate -> (scenario, replicate): what Table 2 averages."""
    return {
        name: (run.scenario, run.replicate)
        for name, run in RUNS.items()
        if run.base_rate and not run.remedy
    }


def dose_runs():
    """Runs on the dose-response axis -> (scenario, rate, replicate)."""
    dosed = set(dose_scenarios(config))
    return {
        name: (run.scenario, run.rate, run.replicate)
        for name, run in RUNS.items()
        if run.scenario in dosed and not run.remedy
    }


def baseline_runs():
    """Replicate -> the baseline scenario's run of that replicate."""
    return {
        run.replicate: name
        for name, run in RUNS.items()
        if run.scenario == BASELINE and run.base_rate and not run.remedy
    }


def evaluations(runs):
    """Every evaluation table and count file of the given runs."""
    return expand(
        "results/eval/{run}/{threshold_source}{kind}",
        run=runs,
        threshold_source=THRESHOLD_SOURCES,
        kind=[".tsv", ".counts.tsv"],
    )


def classifier_settings(wildcards):
    """What one subgroup classifier depends on: its target, seed and perturbation."""
    attribute, perturbation, replicate = CLASSIFIERS[wildcards.classifier]
    return {
        "target": {"kind": "attribute", "column": attribute},
        "train": train_settings(config, "separability", replicate),
        "perturbation": perturbations(config)[perturbation] if perturbation else None,
    }


def perturbation_classifiers():
    """The first seed's classifiers of the perturbation grid's attributes, unperturbed and perturbed."""
    return {
        name: list(run)
        for name, run in CLASSIFIERS.items()
        if run[0] in perturbation_attributes(config) and run[2] == 0
    }


def classifier_predictions(attribute, perturbation=""):
    """Predictions of every seed's classifier of one attribute (and perturbation)."""
    return [
        f"results/separability/{name}/predictions.tsv"
        for name, run in CLASSIFIERS.items()
        if run[0] == attribute and run[1] == perturbation
    ]


def source_tables(wildcards):
    """The tables the eligible images come from: EMBED's two (generated for the synthetic
    default) or a table source's table and its joins."""
    if TABLE:
        table = config["data"]["table"]
        return {
            "table": table["path"],
            **{f"join{i}": join["path"] for i, join in enumerate(table["join"])},
        }
    if SYNTHETIC:
        return {
            "metadata": f"{SYNTHETIC_ROOT}/tables/EMBED_OpenData_metadata.csv",
            "clinical": f"{SYNTHETIC_ROOT}/tables/EMBED_OpenData_clinical.csv",
        }
    return {
        "metadata": config["data"]["embed"]["metadata"],
        "clinical": config["data"]["embed"]["clinical"],
    }


def image_source():
    """Image root, format and path prefix the preprocessing reads from."""
    if SYNTHETIC:
        return {"root": SYNTHETIC_ROOT, "format": "dicom", "strip_prefix": ""}
    if TABLE:
        table = config["data"]["table"]
        return {
            "root": table["image_root"],
            "format": {"png": "picture", "jpeg": "picture"}.get(
                table["image_format"], table["image_format"]
            ),
            "strip_prefix": table["strip_prefix"],
            "mammogram": table["mammograms"],
        }
    embed = config["data"]["embed"]
    return {
        "root": embed["image_root"],
        "format": embed["image_format"],
        "strip_prefix": embed["strip_prefix"],
    }


def image_column():
    return "png_path" if image_source()["format"] == "png" else "anon_dicom_path"


def table_params():
    """A table source's column mapping (nothing for EMBED, so its jobs never see it)."""
    return config["data"]["table"] if TABLE else {}


def synthetic_images(wildcards):
    """The generated image folder, so preprocessing waits for it (nothing for real EMBED)."""
    return [f"{SYNTHETIC_ROOT}/images"] if SYNTHETIC else []


def holdout_params():
    """Patients held out of the cohort for the backbone (share 0 unless backbone.init is pretrain)."""
    if not uses_backbone(config):
        return {"share": 0.0, "val": 0.0}
    return {"share": holdout_share(config), "val": config["backbone"]["val"]}


def backbone_weights(wildcards):
    """The pretrained backbone every model starts from (nothing for imagenet or scratch)."""
    return {"backbone": "results/backbone/model.pt"} if uses_backbone(config) else {}


def crossfit_outputs(wildcards):
    """A scenario's cross-fitted probabilities: one table (linear) or one per fold (fine-tuned)."""
    if DETECTION["model"] == "linear":
        return [f"results/detection/{wildcards.detected}/crossfit.tsv"]
    return expand(
        "results/detection/{detected}/fold{fold}.tsv",
        detected=wildcards.detected,
        fold=range(DETECTION["folds"]),
    )


def review_attribute(scenario):
    """Rows of a scenario's image grid: the attribute it biases (vendors for a clean scenario)."""
    target = scenario_targets()[scenario]
    return target[0] if target else config["evaluation"]["attributes"][0]


def cohort_attributes():
    return attribute_names(config)


def audit_inputs(wildcards):
    """A scenario's own model and labels; the detection stage's label quality when it runs."""
    inputs = {
        "predictions": f"results/models/{wildcards.scenario}/predictions.tsv",
        "labels": f"results/labels/{wildcards.scenario}.tsv",
        "cohort": "results/data/cohort.tsv",
    }
    if DETECTION["enabled"]:
        inputs["detection"] = f"results/detection/{wildcards.scenario}.images.tsv"
    return inputs


def remedy_label_inputs(wildcards):
    """The labels a remedy starts from, and their detection when the remedy uses it."""
    run = REMEDY_RUNS[wildcards.run]
    inputs = {
        "labels": f"results/labels/{run.source_run}.tsv",
        "cohort": "results/data/cohort.tsv",
    }
    if REMEDIES[run.remedy].uses_detection:
        inputs["detection"] = f"results/detection/{run.source_run}.images.tsv"
    return inputs


def remedy_groups():
    """One entry per scenario x remedy x budget: its runs per replicate, each with the
    scenario's run and the baseline's run of that replicate (what the changes compare).
    """
    baseline = baseline_runs()
    groups = {}
    for name, run in REMEDY_RUNS.items():
        key = (run.scenario, run.remedy, run.budget)
        entry = groups.setdefault(
            key,
            {
                "scenario": run.scenario,
                "remedy": run.remedy,
                "budget": run.budget,
                "runs": [],
            },
        )
        entry["runs"].append([name, run.source_run, baseline[run.replicate]])
    return list(groups.values())


def remedy_evaluations():
    """Evaluations of every remedy run, the scenario runs remedied and their baselines."""
    names = {
        name for group in remedy_groups() for runs in group["runs"] for name in runs
    }
    return evaluations([name for name in RUNS if name in names])


def front_page_inputs(wildcards):
    """What the report's front page shows: findings, Table 2, Fig. 1, and the audit and remedies when on."""
    inputs = {
        "description": str(WORKFLOW_ROOT / "workflow" / "report" / "workflow.rst"),
        "findings": "results/eval/findings.tsv",
        "table2": "results/eval/table2.tsv",
        "table2_html": "results/eval/table2.html",
        "figure": "results/figures/feature_space.png",
    }
    if AUDIT["enabled"] and BIAS_SCENARIOS:
        inputs["audit"] = "results/audit/summary.tsv"
    if REMEDY_RUNS:
        inputs["remedies"] = "results/remedies/summary.tsv"
        inputs["remedy_labels"] = "results/remedies/labels.tsv"
    return inputs


def scenario_targets():
    """Scenario -> [attribute, subgroup] it biases (None for clean ones), for the figures."""
    return {
        name: (
            [spec["attribute"], spec["subgroup"]]
            if spec and spec.get("attribute")
            else None
        )
        for name, spec in config["scenarios"].items()
    }


def final_outputs():
    return [
        "results/data/cohort.tsv",
        "results/data/table1.tsv",
        "results/data/split_summary.tsv",
        "results/cache/images.npy",
        *expand("results/labels/{run}.tsv", run=RUNS),
        *expand("results/models/{run}/predictions.tsv", run=RUNS),
        *expand("results/probe/{scenario}.tsv", scenario=SCENARIOS),
        *expand(
            "results/separability/{attribute}.tsv",
            attribute=config["separability"]["attributes"],
        ),
        "results/eval/table2.tsv",
        "results/eval/findings.tsv",
        "results/figures/feature_space.png",
        "results/provenance.html",
        FRONT_PAGE,
        *(["results/detection/summary.tsv"] if DETECTION["enabled"] else []),
        *(
            expand("results/figures/images/{scenario}.png", scenario=SCENARIOS)
            if config["image_review"]["enabled"]
            else []
        ),
        *(["results/eval/dose_response.tsv"] if DOSE_RESPONSE else []),
        *(["results/audit/summary.tsv"] if AUDIT["enabled"] and BIAS_SCENARIOS else []),
        *(["results/perturbation/separability.tsv"] if PERTURBATION else []),
        *(["results/remedies/summary.tsv"] if REMEDY_RUNS else []),
    ]


def _grows_with_attempt(base):
    """A resource that doubles, triples... on retries: a job SLURM killed for time or memory gets more."""
    return lambda wildcards, attempt: base * attempt


def cpu_job(mem_mb, runtime):
    """Resources of a CPU job; runtime in minutes. Placement comes from config["cluster"]."""
    return {
        "mem_mb": _grows_with_attempt(mem_mb),
        "runtime": _grows_with_attempt(runtime),
        "slurm_account": CLUSTER["account"],
        "slurm_partition": CLUSTER["partition"],
        "slurm_extra": CLUSTER["sbatch_extra"],
    }


def gpu_job(mem_mb, runtime):
    """Resources of a training job: a CPU job plus config["cluster"]["gpus"] GPUs."""
    resources = cpu_job(mem_mb, runtime)
    if CLUSTER["gpus"]:
        resources["gpu"] = CLUSTER["gpus"]
        resources["slurm_partition"] = CLUSTER["gpu_partition"] or CLUSTER["partition"]
        resources["slurm_extra"] = " ".join(
            flag
            for flag in (CLUSTER["sbatch_extra"], CLUSTER["gpu_sbatch_extra"])
            if flag
        )
        if CLUSTER["gpu_model"]:
            resources["gpu_model"] = CLUSTER["gpu_model"]
    return resources
