# make demo: venv, install, sandbox, all reports.   make test: venv, install, lint, pytest.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check evilent_nb tests benchmarks tools

test: lint
	MPLBACKEND=agg $(BIN)/python -m pytest -q

demo: $(STAMP)
	MPLBACKEND=agg $(BIN)/evilent-nb demo --output-dir reports/demo

clean:
	rm -rf $(VENV) reports .pytest_cache .ruff_cache build *.egg-info
