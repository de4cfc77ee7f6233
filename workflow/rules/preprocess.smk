rule preprocess_shard:
    input:
        images="results/data/images.tsv",
        source=synthetic_images,
    output:
        array=temp("results/cache/shards/{shard}.npy"),
        qc="results/cache/shards/{shard}.qc.tsv",
    log:
        "logs/preprocess/{shard}.log",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=4000, runtime=120),
    params:
        source=image_source(),
        shards=N_SHARDS,
        height=config["preprocess"]["height"],
        width=config["preprocess"]["width"],
        channels=config["preprocess"]["channels"],
        mask_threshold=config["preprocess"]["mask_threshold"],
        working_scale=config["preprocess"]["working_scale"],
    script:
        "../scripts/preprocess_shard.py"


rule merge_cache:
    input:
        images="results/data/images.tsv",
        arrays=expand("results/cache/shards/{shard}.npy", shard=range(N_SHARDS)),
        qc=expand("results/cache/shards/{shard}.qc.tsv", shard=range(N_SHARDS)),
    output:
        array="results/cache/images.npy",
        index="results/cache/index.tsv",
        qc="results/data/qc.tsv",
    log:
        main="logs/merge_cache.log",
        # Every unreadable image, kept when too many of them stop the run.
        unreadable="logs/unreadable_images.tsv",
    conda:
        "../../envs/data.yaml"
    resources:
        **cpu_job(mem_mb=4000, runtime=60),
    params:
        max_unreadable_fraction=config["preprocess"]["max_unreadable_fraction"],
    script:
        "../scripts/merge_cache.py"
