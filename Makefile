# The two commands the README promises: `make demo` and `make test`. Both set up first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/drchrono-assets

.PHONY: setup demo ui test lint

$(VENV)/.installed: pyproject.toml setup.cfg
	@echo "Setting up $(VENV) with the package and its test tools (the first time: about a minute)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@
	@echo "$(VENV) is ready."

setup: $(VENV)/.installed

# Materialize a week of every asset against the bundled sandbox API (no credentials needed).
demo: setup
	@$(CLI) demo

# The UI on a live sandbox practice: a week of data, every sensor running, until Ctrl-C.
ui: setup
	@$(CLI) ui

test: setup
	bash .ci/system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
