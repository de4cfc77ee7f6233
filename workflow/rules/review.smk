# Looking at the images: per scenario, a subgroup x density grid of training images
# (flipped ones marked) and the validation images its model disagrees with most.
rule image_review:
    input:
        cache="results/cache/images.npy",
        index="results/cache/index.tsv",
        cohort="results/data/cohort.tsv",
        labels="results/labels/{scenario}.tsv",
        predictions="results/models/{scenario}/predictions.tsv",
    output:
        grid=report(
            "results/figures/images/{scenario}.png",
            caption="../report/image_grid.rst",
            category="8. Images",
            labels={"scenario": "{scenario}", "figure": "subgroup x density grid"},
        ),
        loss=report(
            "results/figures/highest_loss/{scenario}.png",
            caption="../report/highest_loss.rst",
            category="8. Images",
            labels={"scenario": "{scenario}", "figure": "highest-loss images"},
        ),
    log:
        "logs/review/{scenario}.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        **cpu_job(mem_mb=2000, runtime=10),
    params:
        row_attribute=lambda wildcards: review_attribute(wildcards.scenario),
        per_cell=config["image_review"]["per_cell"],
        highest_loss=config["image_review"]["highest_loss"],
        seed=config["seed"],
        classes=CLASSES,
    script:
        "../scripts/image_review.py"
