# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-requirements.txt

.PHONY: setup browser run extended test test-slurm bench bench-avx2 bench-full lint clean

setup: $(STAMP)

# Reinstalls only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -r requirements.txt
	cp requirements.txt $(STAMP)

# CONFIG=file: a config of its own instead of config.yaml (a preset in config/presets/).
CONFIG ?=
CONFIG_ARGS := $(if $(CONFIG),--configfile $(CONFIG) --replace-workflow-config,)

run: setup
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS)
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --report results/report.html
	@echo "Report: results/report.html"

# The default plus seeds, bias rates and perturbations as grid axes (config/extended.yaml).
extended: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config/extended.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/extended.yaml --report results/report.html
	@echo "Report: results/report.html"

# The report test opens results/report.html in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The report test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

# As root (CI, or a disposable machine) `make test` also runs the SLURM cluster test,
# beside the main suite (tests/run_suites.sh says why); otherwise it says how to run it.
test: setup browser
	tests/run_suites.sh

# Starts a single-node SLURM cluster from Debian's packages, runs the workflow through
# the slurm/ profile on it, and stops every daemon it started, pass or fail.
test-slurm: setup
	bash -c 'trap "tests/slurm/local_cluster.sh stop" EXIT; trap "exit 143" TERM INT; \
	  tests/slurm/local_cluster.sh start && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q tests/slurm'

bench: setup
	$(BIN)/python bench/preprocess_throughput.py
	$(BIN)/python bench/train_throughput.py

# The same with the CPU kernels of an AVX2-only machine (oneDNN, ATen and MKL limited to
# AVX2): on a machine with AVX-512 it shows which levers matter on the slow machines.
# Its reference figure converts times of runs made with the same three variables.
bench-avx2: setup
	ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 $(BIN)/python bench/train_throughput.py

# Full-size mammograms (4096x3328 and up, uncompressed and JPEG 2000): the reduced
# preprocessing against the full-resolution one. Writes its files once (a few minutes).
bench-full: setup
	$(BIN)/python bench/full_size.py

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean:
	rm -rf results logs .snakemake bench/out
