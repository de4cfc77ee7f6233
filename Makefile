# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-requirements.txt

.PHONY: setup browser run test bench lint clean

setup: $(STAMP)

# Reinstalls only when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --quiet -r requirements.txt
	cp requirements.txt $(STAMP)

run: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@echo "Report: results/report.html"

# The report test opens results/report.html in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "The report test needs Chromium: sudo apt-get install chromium"; exit 1; fi; }

test: setup browser
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python bench/preprocess_throughput.py
	$(BIN)/python bench/train_throughput.py

lint: setup
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean:
	rm -rf results logs .snakemake bench/out
