# Two entry points for newcomers: `make test` and `make demo`. Each creates (or refreshes) the local
# virtualenv in .venv and installs the project into it before doing its job.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test test-all demo lint docs bench clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -c constraints.txt -e '.[dev,export,docs]'
	touch $(STAMP)

## Run the default test suite (fast; tests marked slow are skipped).
test: $(STAMP)
	$(PY) -m pytest -q

## Run every test, the slow ones included.
test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

## The main job end to end: data, fine-tuning from a shipped ViT, evaluation, export, results table.
demo: $(STAMP)
	$(PY) -m vitzoo.cli.main demo $(ARGS)

## Style (ruff) and the layer order of docs/architecture.md (import-linter's contract in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check vitzoo tests benchmarks
	$(VENV)/bin/lint-imports

## Build the documentation site into site/ (mkdocs.yml; broken links and missing references fail).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) -m vitzoo.cli.main bench $(ARGS)

clean-venv:
	rm -rf $(VENV)
