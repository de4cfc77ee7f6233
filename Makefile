# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-requirements.txt

.PHONY: help setup browser run extended test test-slurm bench bench-avx2 bench-full lint docs docs-images clean

help: ## list the targets
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv from requirements.txt (reinstalls only when it changes)
# Reinstalls only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -r requirements.txt
	cp requirements.txt $(STAMP)

# CONFIG=file: a config of its own instead of config.yaml (a preset in config/presets/).
CONFIG ?=
CONFIG_ARGS := $(if $(CONFIG),--configfile $(CONFIG) --replace-workflow-config,)

run: setup ## the whole workflow on the synthetic default (CONFIG=file for another), then the report
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS)
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --report results/report.html
	@echo "Report: results/report.html"

# The default plus seeds, bias rates and perturbations as grid axes (config/extended.yaml).
extended: setup ## the default plus seeds, bias rates and perturbations (config/extended.yaml)
	$(BIN)/snakemake --cores $(CORES) --configfile config/extended.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/extended.yaml --report results/report.html
	@echo "Report: results/report.html"

# The report test opens results/report.html in headless Chromium (Debian's package).
browser: ## install Debian's Chromium for the report test (as root), or say how
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The report test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

# As root (CI, or a disposable machine) `make test` also runs the SLURM cluster test,
# beside the main suite (tests/run_suites.sh says why); otherwise it says how to run it.
test: setup browser ## every test; as root also the real SLURM cluster test beside the main suite
	tests/run_suites.sh

# Starts a single-node SLURM cluster from Debian's packages, runs the workflow through
# the slurm/ profile on it, and stops every daemon it started, pass or fail.
test-slurm: setup ## start a single-node SLURM cluster, run the profile test on it, stop it
	bash -c 'trap "tests/slurm/local_cluster.sh stop" EXIT; trap "exit 143" TERM INT; \
	  tests/slurm/local_cluster.sh start && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests/slurm'

bench: setup ## preprocessing and training throughput on this machine (prints its numbers)
	$(BIN)/python bench/preprocess_throughput.py
	$(BIN)/python bench/train_throughput.py

# The same with the CPU kernels of an AVX2-only machine (oneDNN, ATen and MKL limited to
# AVX2): on a machine with AVX-512 it shows which levers matter on the slow machines.
# Its reference figure converts times of runs made with the same three variables.
bench-avx2: setup ## make bench with the kernels of an AVX2-only CPU
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(BIN)/python bench/train_throughput.py

# Full-size mammograms (4096x3328 and up, uncompressed and JPEG 2000): the reduced
# preprocessing against the full-resolution one. Writes its files once (a few minutes).
bench-full: setup ## full-size mammograms: reduced against full-resolution preprocessing
	$(BIN)/python bench/full_size.py

lint: setup ## snakemake --lint and snakefmt --check
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

# docs/configuration.md is generated from workflow/schemas/config.schema.yaml.
docs: setup ## regenerate docs/configuration.md from the config schema
	$(BIN)/python docs/scripts/config_reference.py

# The README's picture of the report's front page, from a finished run's results/report.html.
docs-images: setup browser ## screenshot the report's front page into docs/images/ (after make run)
	$(BIN)/python docs/scripts/report_screenshot.py results/report.html docs/images/report-front-page.png

clean: ## remove results/, logs/, .snakemake/ and bench/out
	rm -rf results logs .snakemake bench/out
