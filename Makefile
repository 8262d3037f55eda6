# `make demo` and `make test` work on a fresh clone: each creates .venv if it is
# missing and installs the project (editable) with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kafkaproof demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=25

bench: $(STAMP)
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/sim.py
	$(BIN)/python benchmarks/checkers.py
	$(BIN)/python benchmarks/explore.py
	$(BIN)/python benchmarks/rebalance.py
	$(BIN)/python benchmarks/txn.py
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/hunt.py --starts 5
	$(BIN)/python benchmarks/broker.py
	$(BIN)/python benchmarks/serve_startup.py
	$(BIN)/python benchmarks/campaign.py
	$(BIN)/python benchmarks/scale_model.py
	$(BIN)/python benchmarks/diagram.py
	$(BIN)/python benchmarks/security.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
